// Package export writes CSV exports of customers (issue 7): straight to a
// writer (the browser, for small exports), or as a background job whose file
// is kept in the database for any instance to serve (large ones), and sweeps
// kept files once they expire. What is read is models.ExportCustomers (the
// customer list's own filter and order); how it is written is views'
// encoders; this package joins the two and keeps the job's books.
package export

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"time"

	"gorm.io/gorm"

	"oneid/app/jobs"
	"oneid/models"
	"oneid/views"
)

// Write streams an export to enc: each batch as models.ExportCustomers reads
// it, then enc.Flush and flush (which pushes the bytes on to the network),
// so the first rows leave while later ones are still being read and memory
// holds a batch or two whatever the size. It closes enc when the export is
// complete.
func Write(ctx context.Context, db *gorm.DB, tenantID int64, apps []models.BrowseApp, req models.ExportRequest,
	enc views.ExportEncoder, flush func() error) (models.ExportStats, error) {
	st, err := models.ExportCustomers(ctx, db, tenantID, apps, req, func(b *models.ExportBatch) error {
		enc.EncodeBatch(b)
		if err := enc.Flush(); err != nil {
			return err
		}
		if flush != nil {
			return flush()
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	if err := enc.Close(); err != nil {
		return st, err
	}
	if flush != nil {
		return st, flush()
	}
	return st, nil
}

// Format is the file format an export asked for.
func Format(e *models.Export) views.ExportFormat {
	return views.ExportFormat{BOM: e.BOM, MachineNames: e.MachineNames}
}

// FileName is what the download is called: the workspace, the shape and the
// time, e.g. acme-customers-20250301-1630.csv.
func FileName(slug, shape string, at time.Time) string {
	what := "customers"
	if shape == models.ExportIdentities {
		what = "identities"
	}
	return slug + "-" + what + "-" + at.In(models.BrowseZone).Format("20060102-1504") + ".csv"
}

// Config is what an Exporter is built from. Zero fields take the defaults.
type Config struct {
	DB  *gorm.DB
	Log *slog.Logger
	Now func() time.Time
	// Keep is how long a background export's file is kept (default 7 days).
	Keep time.Duration
	// BatchSize overrides the customers read per query (tests).
	BatchSize int
	// Stored, if set, is told each chunk a job has committed; tests use it
	// to stop or cancel a run half-way.
	Stored func(exportID int64, seq int)
}

// Exporter runs background exports as jobs and sweeps their expired files.
type Exporter struct {
	db  *gorm.DB
	log *slog.Logger
	cfg Config
}

// DefaultKeep is how long a kept file lasts by default.
const DefaultKeep = 7 * 24 * time.Hour

// New builds an Exporter.
func New(cfg Config) *Exporter {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Now().UTC() }
	}
	if cfg.Keep <= 0 {
		cfg.Keep = DefaultKeep
	}
	return &Exporter{db: cfg.DB, log: cfg.Log, cfg: cfg}
}

// Kind is the background export as a kind of job, for jobs.Runner.Register.
func (x *Exporter) Kind() jobs.Kind {
	return jobs.Kind{Name: models.ExportJobKind, Run: x.run, Ended: x.ended}
}

// checkpoint is where a background export resumes: after the customer
// AfterID, with chunk Seq next, and the figures so far.
type checkpoint struct {
	AfterID   int64 `json:"after_id"`
	Seq       int   `json:"seq"`
	Rows      int64 `json:"rows"`
	Customers int64 `json:"customers"`
	Bytes     int64 `json:"bytes"`
}

func parseCheckpoint(s string) (checkpoint, error) {
	var cp checkpoint
	if s == "" {
		return cp, nil
	}
	if err := json.Unmarshal([]byte(s), &cp); err != nil {
		return cp, fmt.Errorf("export: checkpoint %q: %w", s, err)
	}
	return cp, nil
}

func (cp checkpoint) String() string {
	b, _ := json.Marshal(cp)
	return string(b)
}

type jobParams struct {
	ExportID int64 `json:"export_id"`
}

// counter counts the bytes of CSV on their way to the compressor.
type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// run writes the export's file, a chunk per batch, each chunk in the
// transaction that moves the checkpoint past it.
func (x *Exporter) run(ctx context.Context, j *jobs.Job) error {
	var p jobParams
	if err := json.Unmarshal([]byte(j.Params), &p); err != nil || p.ExportID <= 0 {
		return jobs.Fail(models.JobErrorInternal, 0, fmt.Errorf("export: job %d: params %q name no export", j.ID, j.Params))
	}
	db := x.db.WithContext(ctx)
	e, err := models.FindExport(db, j.TenantID, p.ExportID)
	if errors.Is(err, models.ErrNotFound) {
		return jobs.Fail(models.JobErrorInternal, 0, fmt.Errorf("export: job %d: export %d is gone", j.ID, p.ExportID))
	}
	if err != nil {
		return err
	}
	raw, err := url.ParseQuery(e.Filter)
	if err != nil {
		return jobs.Fail(models.JobErrorInternal, 0, fmt.Errorf("export %d: filter %q: %w", e.ID, e.Filter, err))
	}
	f, problems := models.ParseCustomerFilter(raw)
	if len(problems) > 0 {
		return jobs.Fail(models.JobErrorInternal, 0, fmt.Errorf("export %d: filter %q: %v", e.ID, e.Filter, problems))
	}
	cp, err := parseCheckpoint(j.Checkpoint)
	if err != nil {
		return jobs.Fail(models.JobErrorInternal, 0, err)
	}
	req := models.ExportRequest{Shape: e.Shape, Filter: f, AfterID: cp.AfterID, BatchSize: x.cfg.BatchSize}
	apps, err := models.BrowseApps(db, j.TenantID)
	if err != nil {
		return err
	}
	switch {
	case j.Total > 0:
	case e.ExpectedRows > 0:
		j.SetTotal(e.ExpectedRows)
	default:
		n, err := models.CountExport(ctx, db, j.TenantID, apps, e.Shape, f, 0)
		if err != nil {
			return err
		}
		j.SetTotal(max(n.Rows, 1))
	}
	if err := models.MarkExportRunning(db, j.TenantID, e.ID, x.cfg.Now()); err != nil {
		return err
	}

	var buf bytes.Buffer
	zw, _ := flate.NewWriter(&buf, flate.BestSpeed)
	csv := &counter{w: zw}
	lctx := views.WithLocale(ctx, views.Locale(e.Locale))
	enc := views.NewExportEncoder(lctx, csv, e.Shape, apps, Format(e))
	if cp.Seq > 0 {
		enc.Resume() // the header is in chunk 0 already
	}
	// store commits what the encoder has written as the next chunk, with the
	// checkpoint that follows it.
	store := func(next checkpoint, rows int64) error {
		if err := zw.Close(); err != nil {
			return err
		}
		next.Seq, next.Bytes = cp.Seq+1, cp.Bytes+csv.n
		err := x.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := models.AppendExportChunk(tx, j.TenantID, e.ID, cp.Seq, buf.Bytes()); err != nil {
				return err
			}
			return j.Commit(tx, next.String(), rows)
		})
		if err != nil {
			return err
		}
		if x.cfg.Stored != nil {
			x.cfg.Stored(e.ID, cp.Seq)
		}
		cp, csv.n = next, 0
		buf.Reset()
		zw.Reset(&buf)
		return nil
	}
	_, err = models.ExportCustomers(ctx, db, j.TenantID, apps, req, func(b *models.ExportBatch) error {
		enc.EncodeBatch(b)
		if err := enc.Flush(); err != nil {
			return err
		}
		return store(checkpoint{AfterID: b.LastID, Rows: cp.Rows + int64(b.Rows()), Customers: cp.Customers + int64(b.Customers)},
			int64(b.Rows()))
	})
	if err != nil {
		return err
	}
	if cp.Seq == 0 {
		// Nothing matched: the file is its header.
		if err := enc.Close(); err != nil {
			return err
		}
		if err := store(checkpoint{}, 0); err != nil {
			return err
		}
	}
	j.SetResult(cp.String())
	return nil
}

// ended records the export's end with the job's, in the same transaction:
// its figures (from the last checkpoint), the expiry of a ready file, the
// audit line.
func (x *Exporter) ended(tx *gorm.DB, j *jobs.Job, end models.JobEnd) error {
	e, err := models.ExportOfJob(tx, j.TenantID, j.ID)
	if errors.Is(err, models.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	row, err := models.FindJob(tx, j.TenantID, j.ID)
	if err != nil {
		return err
	}
	cp, _ := parseCheckpoint(row.Checkpoint)
	now := x.cfg.Now()
	ee := models.ExportEnd{Stats: models.ExportStats{Rows: cp.Rows, Customers: cp.Customers}, Bytes: cp.Bytes,
		Error: end.Error, KeepUntil: now.Add(x.cfg.Keep)}
	who := models.AuditEvent{ActorUserID: j.CreatedBy, Actor: j.Actor}
	switch end.State {
	case models.JobSucceeded:
		ee.State = models.ExportReady
	case models.JobCancelled:
		ee.State = models.ExportCancelled
		who = models.AuditEvent{Actor: row.CancelledBy}
	default:
		ee.State = models.ExportFailed
	}
	return models.EndExportJob(tx, j.TenantID, e.ID, ee, who, now)
}

// Deflate compresses p as one stored chunk: the format Download reads.
func Deflate(w io.Writer, p []byte) error {
	zw, err := flate.NewWriter(w, flate.BestSpeed)
	if err != nil {
		return err
	}
	if _, err := zw.Write(p); err != nil {
		return err
	}
	return zw.Close()
}

// Download writes a kept file to w, inflating its chunks one at a time.
func Download(ctx context.Context, db *gorm.DB, tenantID int64, e *models.Export, w io.Writer) error {
	zr := flate.NewReader(bytes.NewReader(nil))
	defer zr.Close()
	return models.EachExportChunk(db.WithContext(ctx), tenantID, e.ID, func(data []byte) error {
		if err := zr.(flate.Resetter).Reset(bytes.NewReader(data), nil); err != nil {
			return err
		}
		_, err := io.Copy(w, zr)
		return err
	})
}

// Sweep deletes expired files every interval until ctx ends.
func (x *Exporter) Sweep(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 10 * time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := models.SweepExpiredExports(x.db.WithContext(ctx), x.cfg.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			x.log.Warn("export: sweep expired files", "err", err)
		case n > 0:
			x.log.Info("export: swept expired files", "exports", n)
		}
		if err == nil && n > 0 {
			continue // there may be more
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
