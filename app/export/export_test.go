package export_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/app/export"
	"oneid/app/jobs"
	"oneid/migrations/dbtest"
	"oneid/models"
	"oneid/views"
)

// fixture is a tenant with generated customers and a background export of
// them queued.
type fixture struct {
	db     *gorm.DB
	tenant int64
	export *models.Export
}

func newFixture(t *testing.T, db *gorm.DB, customers int) *fixture {
	t.Helper()
	now := time.Now().UTC()
	if err := db.Exec("INSERT INTO tenants (slug, name, principal_name, status, created_at, updated_at) VALUES ('export-job', 'Export Job', '导出科技（深圳）有限公司', 'active', ?, ?)", now, now).Error; err != nil {
		t.Fatal(err)
	}
	var tenant int64
	db.Raw("SELECT id FROM tenants WHERE slug = 'export-job'").Scan(&tenant)
	if _, err := models.Seed(context.Background(), db, tenant, models.SeedOptions{Customers: customers, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	e, err := models.StartExportJob(db, tenant, models.NewExport{Shape: models.ExportIdentities, BOM: true, Locale: "zh-CN",
		Actor: models.AuditEvent{ActorUserID: 7, Actor: "mia@example.com"}}, 2, now)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, tenant: tenant, export: e}
}

// direct is the same export written straight to a buffer, as a small one is
// streamed to the browser.
func (f *fixture) direct(t *testing.T) []byte {
	t.Helper()
	apps, err := models.BrowseApps(f.db, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	ctx := views.WithLocale(context.Background(), views.ZhCN)
	enc := views.NewExportEncoder(ctx, &buf, f.export.Shape, apps, export.Format(f.export))
	if _, err := export.Write(ctx, f.db, f.tenant, apps, models.ExportRequest{Shape: f.export.Shape}, enc, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (f *fixture) kept(t *testing.T) []byte {
	t.Helper()
	e, err := models.FindExport(f.db, f.tenant, f.export.ID)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := export.Download(context.Background(), f.db, f.tenant, e, &buf); err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) != e.Bytes {
		t.Errorf("the file has %d bytes, its record says %d", buf.Len(), e.Bytes)
	}
	return buf.Bytes()
}

// A runner that stops half-way (an instance shutting down) hands the export
// back; another resumes it from its checkpoint, and the kept file is exactly
// what a direct export writes: no chunk lost or repeated.
func TestExportJobResumes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, 150)
		ctx, stop := context.WithCancel(context.Background())
		first := jobs.New(jobs.Config{DB: db, Poll: 10 * time.Millisecond})
		first.Register(export.New(export.Config{DB: db, BatchSize: 13, Stored: func(_ int64, seq int) {
			if seq == 3 {
				stop()
			}
		}}).Kind())
		if err := first.Run(ctx); err != nil {
			t.Fatal(err)
		}
		job, err := models.FindJob(db, f.tenant, *f.export.JobID)
		if err != nil {
			t.Fatal(err)
		}
		e, _ := models.FindExport(db, f.tenant, f.export.ID)
		if job.State != models.JobQueued || job.Checkpoint == "" || job.Processed == 0 || e.State != models.ExportRunning {
			t.Fatalf("after the first runner: job %s at %q (%d done), export %s", job.State, job.Checkpoint, job.Processed, e.State)
		}
		second := jobs.New(jobs.Config{DB: db})
		second.Register(export.New(export.Config{DB: db, BatchSize: 13}).Kind())
		if err := second.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		e, _ = models.FindExport(db, f.tenant, f.export.ID)
		job, _ = models.FindJob(db, f.tenant, *f.export.JobID)
		identities := int64(0)
		db.Table("identities").Scopes(models.ForTenant(f.tenant)).Count(&identities)
		if e.State != models.ExportReady || e.RowCount != identities || job.State != models.JobSucceeded || job.Processed != identities {
			t.Fatalf("after resuming: export %s with %d rows, job %s with %d; %d identities", e.State, e.RowCount, job.State, job.Processed, identities)
		}
		if kept, direct := f.kept(t), f.direct(t); !bytes.Equal(kept, direct) {
			t.Fatalf("the kept file (%d bytes) differs from a direct export (%d bytes)", len(kept), len(direct))
		}
	})
}

// Cancelling a running export stops it at the next heartbeat; its chunks go.
func TestExportJobCancels(t *testing.T) {
	db := dbtest.SQLite(t)
	f := newFixture(t, db, 120)
	var asked atomic.Bool
	r := jobs.New(jobs.Config{DB: db, Heartbeat: 20 * time.Millisecond, Lease: time.Second})
	r.Register(export.New(export.Config{DB: db, BatchSize: 10, Stored: func(id int64, seq int) {
		if seq == 1 && asked.CompareAndSwap(false, true) {
			if err := models.CancelExport(db, f.tenant, id, models.AuditEvent{Actor: "lee@example.com"}, time.Now()); err != nil {
				t.Error(err)
			}
		}
		time.Sleep(30 * time.Millisecond) // a heartbeat comes round
	}}).Kind())
	if err := r.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	e, _ := models.FindExport(db, f.tenant, f.export.ID)
	var chunks int64
	db.Table("export_chunks").Scopes(models.ForTenant(f.tenant)).Count(&chunks)
	if e.State != models.ExportCancelled || chunks != 0 {
		t.Fatalf("export %s with %d chunks left", e.State, chunks)
	}
	page, _ := models.ListAudit(db, f.tenant, 0, 10)
	found := false
	for _, ev := range page.Events {
		found = found || (ev.Action == models.AuditExportCancelled && ev.Actor == "lee@example.com")
	}
	if !found {
		t.Fatal("the cancellation is not in the audit log, by who asked")
	}
}
