package models_test

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

// exported is what an export read, batch by batch.
type exported struct {
	customers []int64
	openIDs   map[int64]map[int]string // customer → app index → OpenID(s)
	unionIDs  map[int64]string
	nicknames map[int64]string
	ids       []identityLine
	batches   int
	stats     models.ExportStats
}

type identityLine struct {
	customer int64
	app      int
	openID   string
	source   string
	sub      bool
}

func runExport(t *testing.T, db *gorm.DB, tenant int64, apps []models.BrowseApp, req models.ExportRequest) exported {
	t.Helper()
	ex := exported{openIDs: map[int64]map[int]string{}, unionIDs: map[int64]string{}, nicknames: map[int64]string{}}
	st, err := models.ExportCustomers(context.Background(), db, tenant, apps, req, func(b *models.ExportBatch) error {
		ex.batches++
		if req.Shape == models.ExportProfiles {
			if b.Customers != len(b.Profiles) || b.Rows() != len(b.Profiles) {
				t.Errorf("batch of %d customers with %d profiles", b.Customers, len(b.Profiles))
			}
			for _, p := range b.Profiles {
				ex.customers = append(ex.customers, p.ID)
				ex.unionIDs[p.ID], ex.nicknames[p.ID] = string(p.UnionID), string(p.Nickname)
				ex.openIDs[p.ID] = map[int]string{}
				if len(p.OpenIDs) != len(apps) {
					t.Fatalf("%d OpenID columns for %d apps", len(p.OpenIDs), len(apps))
				}
				for i, o := range p.OpenIDs {
					if o != nil {
						ex.openIDs[p.ID][i] = string(o)
					}
				}
			}
		} else {
			for _, i := range b.Identities {
				ex.ids = append(ex.ids, identityLine{customer: i.CustomerID, app: i.App, openID: string(i.OpenID),
					source: string(i.Source), sub: i.Subscribed})
				ex.unionIDs[i.CustomerID] = string(i.UnionID)
				if n := len(ex.customers); n == 0 || ex.customers[n-1] != i.CustomerID {
					ex.customers = append(ex.customers, i.CustomerID)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ex.stats = st
	return ex
}

// TestExportReadsWhatTheListShows: for each filter, both shapes hold the
// customers the list shows (in id order), each once, with every identity
// once and exactly as in the tables, and nothing of another tenant; the
// count says so beforehand.
func TestExportReadsWhatTheListShows(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		tenant, apps := seededTenant(t, db, "export-walk", 300)
		other, _ := seededTenant(t, db, "export-other", 50)
		all := loadTruth(t, db, tenant)
		theirs := loadTruth(t, db, other)
		var identities []models.Identity
		if err := db.Scopes(models.ForTenant(tenant)).Find(&identities).Error; err != nil {
			t.Fatal(err)
		}
		appIndex := map[int64]int{}
		for i, a := range apps {
			appIndex[a.ID] = i
		}
		var someUnionID string
		for _, tr := range all {
			if tr.unionID != "" && len(tr.openIDs) > 1 {
				someUnionID = tr.unionID
				break
			}
		}
		filters := map[string]models.CustomerFilter{
			"everyone":            {},
			"oldest first":        {Sort: models.SortLastSeenAsc},
			"by first seen":       {Sort: models.SortFirstSeen},
			"one app":             {AppID: apps[1].ID},
			"mini-programs":       {Kind: models.KindMiniProgram},
			"following":           {Subscribed: "yes"},
			"unlinked":            {Linked: "no"},
			"by oauth":            {Source: models.SourceOAuth},
			"first seen in range": {FirstFrom: day(t, "2025-12-01"), FirstTo: day(t, "2026-02-15")},
			"unionid":             {Query: someUnionID},
			"nobody":              {Query: "zzzz-nobody"},
			// The list's position is not the export's: it starts at the top.
			"positioned": {After: &models.Cursor{At: time.Now(), ID: 1}},
		}
		for name, f := range filters {
			t.Run(name, func(t *testing.T) {
				want := expectedOrder(all, f.FirstPage(), apps)
				slices.Sort(want)
				prof := runExport(t, db, tenant, apps, models.ExportRequest{Shape: models.ExportProfiles, Filter: f, BatchSize: 37})
				if !slices.Equal(prof.customers, want) {
					t.Fatalf("profiles: %d customers %v…, want %d %v…", len(prof.customers), head(prof.customers), len(want), head(want))
				}
				if prof.batches != (len(want)+36)/37 {
					t.Errorf("%d batches for %d customers", prof.batches, len(want))
				}
				for _, id := range want {
					tr := all[id]
					if prof.unionIDs[id] != tr.unionID || prof.nicknames[id] != tr.nickname {
						t.Errorf("customer %d: %q %q, want %q %q", id, prof.unionIDs[id], prof.nicknames[id], tr.unionID, tr.nickname)
					}
				}
				wantOpen := map[int64]map[int]string{}
				var wantIDs []identityLine
				in := map[int64]bool{}
				for _, id := range want {
					in[id], wantOpen[id] = true, map[int]string{}
				}
				for _, i := range identities {
					if in[i.CustomerID] {
						wantOpen[i.CustomerID][appIndex[i.AppID]] = i.OpenID
						wantIDs = append(wantIDs, identityLine{customer: i.CustomerID, app: appIndex[i.AppID], openID: i.OpenID, source: i.Source, sub: i.Subscribed})
					}
				}
				for _, id := range want {
					if !mapsEqual(prof.openIDs[id], wantOpen[id]) {
						t.Errorf("customer %d: OpenIDs %v, want %v", id, prof.openIDs[id], wantOpen[id])
					}
				}
				if prof.stats != (models.ExportStats{Customers: int64(len(want)), Rows: int64(len(want))}) {
					t.Errorf("profile stats %+v for %d customers", prof.stats, len(want))
				}

				ids := runExport(t, db, tenant, apps, models.ExportRequest{Shape: models.ExportIdentities, Filter: f, BatchSize: 41})
				// Identities come customer by customer in the list's order, then by app.
				var order []int64
				for _, id := range want {
					if len(wantOpen[id]) > 0 {
						order = append(order, id)
					}
				}
				if !slices.Equal(ids.customers, order) {
					t.Fatalf("identities: customers %v…, want %v…", head(ids.customers), head(order))
				}
				for k := 1; k < len(ids.ids); k++ {
					if a, b := ids.ids[k-1], ids.ids[k]; a.customer == b.customer && a.app > b.app {
						t.Fatalf("identities of customer %d not in app order", a.customer)
					}
				}
				sortLines(ids.ids)
				sortLines(wantIDs)
				if !slices.Equal(ids.ids, wantIDs) {
					t.Fatalf("identities: %d lines, want %d", len(ids.ids), len(wantIDs))
				}
				for _, line := range ids.ids {
					if ids.unionIDs[line.customer] != all[line.customer].unionID {
						t.Errorf("identity of %d: UnionID %q", line.customer, ids.unionIDs[line.customer])
					}
				}
				for id := range theirs {
					if in[id] || prof.openIDs[id] != nil {
						t.Fatalf("another tenant's customer %d was exported", id)
					}
				}

				for shape, rows := range map[string]int{models.ExportProfiles: len(want), models.ExportIdentities: len(wantIDs)} {
					n, err := models.CountExport(context.Background(), db, tenant, apps, shape, f, 0)
					if err != nil {
						t.Fatal(err)
					}
					if n.Rows != int64(rows) || n.Customers != int64(len(want)) || n.Capped {
						t.Errorf("count of %s: %+v, want %d rows of %d customers", shape, n, rows, len(want))
					}
					capped, err := models.CountExport(context.Background(), db, tenant, apps, shape, f, 10)
					if err != nil {
						t.Fatal(err)
					}
					if capped.Capped != (rows > 10) {
						t.Errorf("count of %s capped at 10: %+v for %d rows", shape, capped, rows)
					}
				}
			})
		}
	})
}

// A tenant whose customers are interleaved with another's, added to during
// the walk: the export switches between reading along the table and through
// the tenant's index, and holds every customer once, those added too.
func TestExportWalksInterleavedTenants(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		tenant, _ := seededTenant(t, db, "export-mixed", 90)
		other, _ := seededTenant(t, db, "export-between", 40)
		if _, err := models.Seed(context.Background(), db, tenant, models.SeedOptions{Customers: 70, Seed: 9}); err != nil {
			t.Fatal(err)
		}
		apps, err := models.BrowseApps(db, tenant)
		if err != nil {
			t.Fatal(err)
		}
		all := loadTruth(t, db, tenant)
		batches := 0
		var got []int64
		_, err = models.ExportCustomers(context.Background(), db, tenant, apps, models.ExportRequest{Shape: models.ExportProfiles, BatchSize: 20},
			func(b *models.ExportBatch) error {
				batches++
				for _, p := range b.Profiles {
					got = append(got, p.ID)
				}
				if batches == 2 {
					// Customers arrive while the export runs.
					if _, err := models.Seed(context.Background(), db, tenant, models.SeedOptions{Customers: 15, Seed: 11}); err != nil {
						return err
					}
					if _, err := models.Seed(context.Background(), db, other, models.SeedOptions{Customers: 5, Seed: 12}); err != nil {
						return err
					}
				}
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(all)+15 || !slices.IsSorted(got) {
			t.Fatalf("%d customers (sorted %v), the tenant had %d and gained 15", len(got), slices.IsSorted(got), len(all))
		}
		theirs := loadTruth(t, db, other)
		for _, id := range got {
			if theirs[id] != nil {
				t.Fatalf("the other tenant's customer %d was exported", id)
			}
		}
	})
}

// An export resumes after a cursor with the rest, and stops on the writer's
// error without reading further.
func TestExportResumesAndStops(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		tenant, apps := seededTenant(t, db, "export-resume", 120)
		whole := runExport(t, db, tenant, apps, models.ExportRequest{Shape: models.ExportProfiles, BatchSize: 25})
		var last int64
		batches := 0
		stop := errors.New("stop")
		_, err := models.ExportCustomers(context.Background(), db, tenant, apps, models.ExportRequest{Shape: models.ExportProfiles, BatchSize: 25},
			func(b *models.ExportBatch) error {
				batches++
				if batches == 2 {
					last = b.LastID
					return stop
				}
				return nil
			})
		if !errors.Is(err, stop) || batches != 2 {
			t.Fatalf("stopped with %v after %d batches", err, batches)
		}
		rest := runExport(t, db, tenant, apps, models.ExportRequest{Shape: models.ExportProfiles, BatchSize: 25, AfterID: last})
		if !slices.Equal(rest.customers, whole.customers[50:]) {
			t.Fatalf("resumed with %v…, want %v…", head(rest.customers), head(whole.customers[50:]))
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := models.ExportCustomers(ctx, db, tenant, apps, models.ExportRequest{Shape: models.ExportProfiles}, func(*models.ExportBatch) error { return nil }); err == nil {
			t.Fatal("a cancelled export succeeded")
		}
	})
}

// Background exports: a tenant's slots cap its live exports; the end records
// the figures and the expiry; another tenant sees none of it; the sweeper
// deletes expired files.
func TestExportJobsAndTheirFiles(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := insertTenant(t, db, "export-jobs-a")
		b := insertTenant(t, db, "export-jobs-b")
		now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
		ne := models.NewExport{Shape: models.ExportProfiles, Filter: models.CustomerFilter{Subscribed: "yes"}, BOM: true, Locale: "zh-CN",
			ExpectedRows: 500000, Actor: models.AuditEvent{ActorUserID: 1, Actor: "mia@example.com"}}
		first, err := models.StartExportJob(db, a, ne, 2, now)
		if err != nil {
			t.Fatal(err)
		}
		second, err := models.StartExportJob(db, a, ne, 2, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := models.StartExportJob(db, a, ne, 2, now); !errors.Is(err, models.ErrExportsBusy) {
			t.Fatalf("a third live export: %v", err)
		}
		if _, err := models.StartExportJob(db, b, ne, 2, now); err != nil {
			t.Fatalf("another tenant's slots are its own: %v", err)
		}
		if first.Filter != "sub=yes" || *first.JobID == *second.JobID {
			t.Fatalf("recorded %+v and %+v", first, second)
		}
		if _, err := models.FindExport(db, b, first.ID); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("tenant b found a's export: %v", err)
		}
		// The queued one cancelled: its slot is free again.
		if err := models.CancelExport(db, a, second.ID, models.AuditEvent{Actor: "mia@example.com"}, now); err != nil {
			t.Fatal(err)
		}
		if e, _ := models.FindExport(db, a, second.ID); e.State != models.ExportCancelled {
			t.Fatalf("cancelled export is %s", e.State)
		}
		if err := models.CancelExport(db, a, second.ID, models.AuditEvent{}, now); !errors.Is(err, models.ErrJobNotLive) {
			t.Fatalf("cancelled twice: %v", err)
		}
		if _, err := models.StartExportJob(db, a, ne, 2, now); err != nil {
			t.Fatalf("a freed slot: %v", err)
		}

		// The file, stored in chunks, read back in order; only by its tenant.
		err = db.Transaction(func(tx *gorm.DB) error {
			for seq, part := range []string{"one,", "two,", "three"} {
				if err := models.AppendExportChunk(tx, a, first.ID, seq, []byte(part)); err != nil {
					return err
				}
			}
			return models.EndExportJob(tx, a, first.ID, models.ExportEnd{State: models.ExportReady,
				Stats: models.ExportStats{Rows: 3, Customers: 3}, Bytes: 13, KeepUntil: now.Add(7 * 24 * time.Hour)},
				models.AuditEvent{Actor: "mia@example.com"}, now)
		})
		if err != nil {
			t.Fatal(err)
		}
		read := func(tenant int64) string {
			var sb strings.Builder
			if err := models.EachExportChunk(db, tenant, first.ID, func(p []byte) error { sb.Write(p); return nil }); err != nil {
				t.Fatal(err)
			}
			return sb.String()
		}
		if got := read(a); got != "one,two,three" {
			t.Fatalf("file %q", got)
		}
		if got := read(b); got != "" {
			t.Fatalf("tenant b read %q", got)
		}
		e, _ := models.FindExport(db, a, first.ID)
		if !e.Downloadable(now) || e.RowCount != 3 || e.Downloadable(now.Add(8*24*time.Hour)) {
			t.Fatalf("ended export %+v", e)
		}
		page, err := models.ListExports(db, a, 0, 10)
		if err != nil || len(page.Exports) != 3 || page.Exports[0].Job == nil {
			t.Fatalf("list: %+v %v", page, err)
		}
		audit, _ := models.ListAudit(db, a, 0, 50)
		actions := map[string]int{}
		for _, ev := range audit.Events {
			actions[ev.Action]++
			if ev.Action == models.AuditExportStarted && (ev.Target != "sub=yes" || !strings.Contains(ev.Detail, "profiles, 500000 rows")) {
				t.Errorf("audit of the start: %+v", ev)
			}
		}
		if actions[models.AuditExportStarted] != 3 || actions[models.AuditExportReady] != 1 || actions[models.AuditExportCancelled] != 1 {
			t.Errorf("audit actions %v", actions)
		}

		if n, err := models.SweepExpiredExports(db, now.Add(24*time.Hour)); err != nil || n != 0 {
			t.Fatalf("swept %d (%v) before the expiry", n, err)
		}
		if n, err := models.SweepExpiredExports(db, now.Add(8*24*time.Hour)); err != nil || n != 1 {
			t.Fatalf("swept %d (%v) after the expiry", n, err)
		}
		if got := read(a); got != "" {
			t.Fatalf("the expired file is still there: %q", got)
		}
		if e, _ := models.FindExport(db, a, first.ID); e.State != models.ExportExpired {
			t.Fatalf("swept export is %s", e.State)
		}
	})
}

func head(ids []int64) []int64 { return ids[:min(len(ids), 5)] }

func mapsEqual(a, b map[int]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func sortLines(l []identityLine) {
	sort.Slice(l, func(i, j int) bool {
		if l[i].customer != l[j].customer {
			return l[i].customer < l[j].customer
		}
		return l[i].app < l[j].app
	})
}

// A streamed export is audited before a row leaves; one cut short says so,
// with the rows that left.
func TestStreamedExportRecords(t *testing.T) {
	db := dbtest.SQLite(t)
	tenant := insertTenant(t, db, "export-stream")
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	who := models.AuditEvent{ActorUserID: 3, Actor: "mia@example.com", IP: "10.0.0.1"}
	ne := models.NewExport{Shape: models.ExportIdentities, Filter: models.CustomerFilter{Linked: "no"}, ExpectedRows: 1200, Actor: who}
	done, err := models.StartStreamedExport(db, tenant, ne, now)
	if err != nil {
		t.Fatal(err)
	}
	cut, err := models.StartStreamedExport(db, tenant, ne, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := models.FinishStreamedExport(db, tenant, done, models.ExportStats{Rows: 1200, Customers: 800}, 90000, nil, who, now); err != nil {
		t.Fatal(err)
	}
	if err := models.FinishStreamedExport(db, tenant, cut, models.ExportStats{Rows: 300}, 20000, errors.New("broken pipe"), who, now); err != nil {
		t.Fatal(err)
	}
	a, _ := models.FindExport(db, tenant, done.ID)
	b, _ := models.FindExport(db, tenant, cut.ID)
	if a.State != models.ExportDone || a.RowCount != 1200 || b.State != models.ExportFailed || b.RowCount != 300 || a.Downloadable(now) {
		t.Fatalf("recorded %+v and %+v", a, b)
	}
	page, _ := models.ListAudit(db, tenant, 0, 10)
	var lines []string
	for _, e := range page.Events {
		lines = append(lines, e.Action+" "+e.Target+" "+e.Detail+" "+e.IP)
	}
	want := []string{
		"export_failed linked=no export 2: identities, stopped after 300 rows 10.0.0.1",
		"export_streamed linked=no export 2: identities, 1200 rows 10.0.0.1",
		"export_streamed linked=no export 1: identities, 1200 rows 10.0.0.1",
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("audit:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
