package models

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"
)

// Export records (migration 0040): every CSV export of customers, what it was
// of, who took it and how many rows left. A small export streams straight to
// the browser; a large one is a background job (kind ExportJobKind) whose file
// is kept in export_chunks until it expires.

// Audit actions of exports.
const (
	AuditExportStreamed   = "export_streamed"   // a small export went straight to the browser
	AuditExportStarted    = "export_started"    // a background export was queued
	AuditExportReady      = "export_ready"      // its file is ready, with the rows it holds
	AuditExportFailed     = "export_failed"     // it stopped on an error
	AuditExportCancelled  = "export_cancelled"  // someone stopped it
	AuditExportDownloaded = "export_downloaded" // its file was downloaded
)

// How an export is delivered.
const (
	DeliveryStream = "stream" // straight to the browser, nothing kept
	DeliveryJob    = "job"    // a background job; the file is kept until it expires
)

// Export states. A streamed export is streaming, then done or failed; a job's
// export follows its job (queued, running, then ready, failed or cancelled)
// and is expired once the sweeper deleted its file.
const (
	ExportStreaming = "streaming"
	ExportDone      = "done"
	ExportQueued    = "queued"
	ExportRunning   = "running"
	ExportReady     = "ready"
	ExportFailed    = "failed"
	ExportCancelled = "cancelled"
	ExportExpired   = "expired"
)

// ExportJobKind is the job kind of background exports. Their subjects are
// slots, "slot:1" to "slot:<n>": the job table's one live job per subject is
// what caps a tenant's running exports, across every instance.
const ExportJobKind = "export"

// Export is one export of customers.
type Export struct {
	ID            int64 `gorm:"primaryKey"`
	TenantID      int64
	Shape         string // ExportProfiles or ExportIdentities
	Filter        string // the customer list's filter as URL query (CustomerFilter.Values)
	BOM           bool   `gorm:"column:bom"`
	MachineNames  bool
	Locale        string // the language of the headers
	Delivery      string
	State         string
	JobID         *int64
	ExpectedRows  int64 // the count shown before exporting
	RowCount      int64 // rows written
	CustomerCount int64
	Bytes         int64 // size of the file (CSV, before compression)
	Error         string
	CreatedBy     int64
	Actor         string
	CreatedAt     time.Time
	FinishedAt    *time.Time
	ExpiresAt     *time.Time // a kept file is deleted after this
	UpdatedAt     time.Time
}

// Downloadable reports a kept file that can be downloaded now.
func (e *Export) Downloadable(now time.Time) bool {
	return e.State == ExportReady && e.ExpiresAt != nil && now.Before(*e.ExpiresAt)
}

// ExportChunk is a piece of a kept export file, deflated.
type ExportChunk struct {
	ID       int64 `gorm:"primaryKey"`
	TenantID int64
	ExportID int64
	Seq      int
	Data     []byte
}

// NewExport is an export to record.
type NewExport struct {
	Shape        string
	Filter       CustomerFilter
	BOM          bool
	MachineNames bool
	Locale       string
	ExpectedRows int64
	Actor        AuditEvent // who asks: ActorUserID, Actor, IP, RequestID
}

// ErrExportsBusy refuses a background export while the tenant's slots are
// all taken by running ones.
var ErrExportsBusy = errors.New("models: the workspace's background exports are all busy")

func (n NewExport) row(tenantID int64, delivery, state string, now time.Time) *Export {
	return &Export{TenantID: tenantID, Shape: n.Shape, Filter: clipString(n.Filter.FirstPage().Values().Encode(), 1024),
		BOM: n.BOM, MachineNames: n.MachineNames, Locale: clipString(n.Locale, 8), Delivery: delivery, State: state,
		ExpectedRows: n.ExpectedRows, CreatedBy: n.Actor.ActorUserID, Actor: clipString(n.Actor.Actor, 254),
		CreatedAt: now, UpdatedAt: now}
}

// exportAudit is the audit line of an export: the filter as target, the
// shape, rows and how it left as detail.
func exportAudit(e *Export, action, detail string, who AuditEvent, now time.Time) AuditEvent {
	target := e.Filter
	if target == "" {
		target = "all"
	}
	who.Action, who.Target, who.CreatedAt = action, target, now
	who.Detail = fmt.Sprintf("export %d: %s, %s", e.ID, e.Shape, detail)
	return who
}

// StartStreamedExport records an export about to stream to the browser, with
// its audit line, before any row leaves.
func StartStreamedExport(db *gorm.DB, tenantID int64, n NewExport, now time.Time) (*Export, error) {
	now = dbTime(now)
	e := n.row(tenantID, DeliveryStream, ExportStreaming, now)
	err := RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		e.ID = 0
		if err := tx.Create(e).Error; err != nil {
			return fmt.Errorf("models: record export: %w", err)
		}
		return RecordAudit(tx, tenantID, exportAudit(e, AuditExportStreamed, strconv.FormatInt(n.ExpectedRows, 10)+" rows", n.Actor, now))
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// FinishStreamedExport records how a streamed export ended: the rows and
// bytes that left, or, when it stopped half-way (the browser went away, the
// database failed), that it did and after how many rows, in the audit log too.
func FinishStreamedExport(db *gorm.DB, tenantID int64, e *Export, st ExportStats, bytes int64, failure error, who AuditEvent, now time.Time) error {
	now = dbTime(now)
	set := map[string]any{"state": ExportDone, "row_count": st.Rows, "customer_count": st.Customers, "bytes": bytes,
		"finished_at": now, "updated_at": now}
	if failure != nil {
		set["state"], set["error"] = ExportFailed, clipString(failure.Error(), 500)
	}
	return RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		if err := tx.Model(&Export{}).Scopes(ForTenant(tenantID)).Where("id = ?", e.ID).Updates(set).Error; err != nil {
			return fmt.Errorf("models: finish export %d: %w", e.ID, err)
		}
		if failure == nil {
			return nil
		}
		return RecordAudit(tx, tenantID, exportAudit(e, AuditExportFailed, fmt.Sprintf("stopped after %d rows", st.Rows), who, now))
	})
}

// StartExportJob records a background export and queues its job in the first
// free slot of the tenant's slots (ErrExportsBusy when none is), with its
// audit line, in one transaction.
func StartExportJob(db *gorm.DB, tenantID int64, n NewExport, slots int, now time.Time) (*Export, error) {
	now = dbTime(now)
	slots = max(slots, 1)
	e := n.row(tenantID, DeliveryJob, ExportQueued, now)
	err := RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		e.ID, e.JobID = 0, nil
		if err := tx.Create(e).Error; err != nil {
			return fmt.Errorf("models: record export: %w", err)
		}
		params := `{"export_id":` + strconv.FormatInt(e.ID, 10) + `}`
		for slot := 1; slot <= slots && e.JobID == nil; slot++ {
			j, err := EnqueueJob(tx, tenantID, NewJob{Kind: ExportJobKind, Subject: "slot:" + strconv.Itoa(slot),
				Params: params, CreatedBy: n.Actor.ActorUserID, Actor: n.Actor.Actor}, now)
			switch {
			case errors.Is(err, ErrJobActive):
				continue
			case err != nil:
				return err
			}
			e.JobID = &j.ID
		}
		if e.JobID == nil {
			return ErrExportsBusy
		}
		if err := tx.Model(&Export{}).Scopes(ForTenant(tenantID)).Where("id = ?", e.ID).Update("job_id", *e.JobID).Error; err != nil {
			return fmt.Errorf("models: record export job: %w", err)
		}
		return RecordAudit(tx, tenantID, exportAudit(e, AuditExportStarted,
			fmt.Sprintf("%d rows, background job %d", n.ExpectedRows, *e.JobID), n.Actor, now))
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// FindExport loads one of the tenant's exports; another tenant's is
// ErrNotFound.
func FindExport(db *gorm.DB, tenantID, id int64) (*Export, error) {
	var e Export
	if err := db.Scopes(ForTenant(tenantID)).Where("id = ?", id).Take(&e).Error; err != nil {
		return nil, notFound(err)
	}
	return &e, nil
}

// ExportWithJob is an export with its job, if it has one (for progress).
type ExportWithJob struct {
	Export
	Job *Job
}

// ExportPage is one page of the Exports page, newest first; Before is the id
// to pass for the next (older) page, zero when there is none.
type ExportPage struct {
	Exports []ExportWithJob
	Before  int64
}

// ListExports returns up to limit of the tenant's exports older than beforeID
// (all when zero), newest first, with their jobs.
func ListExports(db *gorm.DB, tenantID, beforeID int64, limit int) (ExportPage, error) {
	q := db.Scopes(ForTenant(tenantID)).Order("id DESC").Limit(limit + 1)
	if beforeID > 0 {
		q = q.Where("id < ?", beforeID)
	}
	var rows []Export
	if err := q.Find(&rows).Error; err != nil {
		return ExportPage{}, fmt.Errorf("models: list exports: %w", err)
	}
	page := ExportPage{}
	if len(rows) > limit {
		rows = rows[:limit]
		page.Before = rows[limit-1].ID
	}
	var jobIDs []int64
	for _, r := range rows {
		if r.JobID != nil {
			jobIDs = append(jobIDs, *r.JobID)
		}
	}
	jobs := map[int64]*Job{}
	if len(jobIDs) > 0 {
		var js []Job
		if err := db.Scopes(ForTenant(tenantID)).Where("id IN ?", jobIDs).Find(&js).Error; err != nil {
			return page, fmt.Errorf("models: list export jobs: %w", err)
		}
		for i := range js {
			jobs[js[i].ID] = &js[i]
		}
	}
	for _, r := range rows {
		ew := ExportWithJob{Export: r}
		if r.JobID != nil {
			ew.Job = jobs[*r.JobID]
		}
		page.Exports = append(page.Exports, ew)
	}
	return page, nil
}

// ExportOfJob finds the export a job writes.
func ExportOfJob(db *gorm.DB, tenantID, jobID int64) (*Export, error) {
	var e Export
	if err := db.Scopes(ForTenant(tenantID)).Where("job_id = ?", jobID).Take(&e).Error; err != nil {
		return nil, notFound(err)
	}
	return &e, nil
}

// MarkExportRunning notes that the export's job has started (or resumed).
func MarkExportRunning(db *gorm.DB, tenantID, id int64, now time.Time) error {
	now = dbTime(now)
	err := db.Model(&Export{}).Scopes(ForTenant(tenantID)).Where("id = ? AND state IN ?", id, []string{ExportQueued, ExportRunning}).
		Updates(map[string]any{"state": ExportRunning, "updated_at": now}).Error
	if err != nil {
		return fmt.Errorf("models: export %d running: %w", id, err)
	}
	return nil
}

// ExportEnd is how a background export ended.
type ExportEnd struct {
	State     string // ExportReady, ExportFailed or ExportCancelled
	Stats     ExportStats
	Bytes     int64
	Error     string
	KeepUntil time.Time // when a ready file expires
}

// EndExportJob records how the export's job ended, in the job's ending
// transaction: a ready file gets its expiry; the chunks of anything else are
// deleted. Its audit line says so.
func EndExportJob(tx *gorm.DB, tenantID, id int64, end ExportEnd, who AuditEvent, now time.Time) error {
	now = dbTime(now)
	e, err := FindExport(tx, tenantID, id)
	if err != nil {
		return err
	}
	set := map[string]any{"state": end.State, "row_count": end.Stats.Rows, "customer_count": end.Stats.Customers,
		"bytes": end.Bytes, "error": clipString(end.Error, 500), "finished_at": now, "updated_at": now}
	action, detail := AuditExportReady, fmt.Sprintf("%d rows, %d customers", end.Stats.Rows, end.Stats.Customers)
	switch end.State {
	case ExportReady:
		set["expires_at"] = dbTime(end.KeepUntil)
	case ExportFailed, ExportCancelled:
		if err := deleteExportChunks(tx, tenantID, id); err != nil {
			return err
		}
		action, detail = AuditExportFailed, fmt.Sprintf("stopped after %d rows: %s", end.Stats.Rows, end.Error)
		if end.State == ExportCancelled {
			action, detail = AuditExportCancelled, fmt.Sprintf("stopped after %d rows", end.Stats.Rows)
		}
	default:
		return fmt.Errorf("models: end export %d: %q is not an end state", id, end.State)
	}
	if err := tx.Model(&Export{}).Scopes(ForTenant(tenantID)).Where("id = ?", id).Updates(set).Error; err != nil {
		return fmt.Errorf("models: end export %d: %w", id, err)
	}
	return RecordAudit(tx, tenantID, exportAudit(e, action, detail, who, now))
}

// CancelExport stops a background export: a queued one at once (recorded
// here, since no runner will), a running one at its runner's next heartbeat.
// An export that is not live is ErrJobNotLive.
func CancelExport(db *gorm.DB, tenantID, id int64, who AuditEvent, now time.Time) error {
	return RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		e, err := FindExport(tx, tenantID, id)
		if err != nil {
			return err
		}
		if e.JobID == nil || (e.State != ExportQueued && e.State != ExportRunning) {
			return ErrJobNotLive
		}
		immediate, err := RequestJobCancel(tx, tenantID, *e.JobID, who.Actor, now)
		if err != nil || !immediate {
			return err
		}
		return EndExportJob(tx, tenantID, id, ExportEnd{State: ExportCancelled}, who, now)
	})
}

// AppendExportChunk stores the next piece of a kept file. Call it in the
// transaction that saves the job's checkpoint, so a resumed job neither loses
// nor repeats a piece.
func AppendExportChunk(tx *gorm.DB, tenantID, exportID int64, seq int, data []byte) error {
	c := ExportChunk{TenantID: tenantID, ExportID: exportID, Seq: seq, Data: data}
	if err := tx.Create(&c).Error; err != nil {
		return fmt.Errorf("models: store chunk %d of export %d: %w", seq, exportID, err)
	}
	return nil
}

// EachExportChunk calls fn with the kept file's chunks in order, one read at
// a time, so a download holds one chunk in memory.
func EachExportChunk(db *gorm.DB, tenantID, exportID int64, fn func(data []byte) error) error {
	next := -1
	for {
		var c []ExportChunk
		err := db.Scopes(ForTenant(tenantID)).Where("export_id = ? AND seq > ?", exportID, next).
			Order("seq").Limit(1).Find(&c).Error
		if err != nil {
			return fmt.Errorf("models: read export %d: %w", exportID, err)
		}
		if len(c) == 0 {
			return nil
		}
		if err := fn(c[0].Data); err != nil {
			return err
		}
		next = c[0].Seq
	}
}

func deleteExportChunks(tx *gorm.DB, tenantID, exportID int64) error {
	if err := tx.Scopes(ForTenant(tenantID)).Where("export_id = ?", exportID).Delete(&ExportChunk{}).Error; err != nil {
		return fmt.Errorf("models: delete the file of export %d: %w", exportID, err)
	}
	return nil
}

// RecordExportDownload writes the audit line of a kept file's download.
func RecordExportDownload(db *gorm.DB, tenantID int64, e *Export, who AuditEvent, now time.Time) error {
	return RecordAudit(db, tenantID, exportAudit(e, AuditExportDownloaded, fmt.Sprintf("%d rows", e.RowCount), who, dbTime(now)))
}

// SweepExpiredExports deletes the files of exports past their expiry, in
// every tenant, a few at a time, and marks them expired. It returns how many
// it swept. Instances sweeping at once each delete what is left.
func SweepExpiredExports(db *gorm.DB, now time.Time) (int, error) {
	now = dbTime(now)
	var due []Export
	err := CrossTenant(db, "the export sweeper deletes expired files of every tenant").Select("id", "tenant_id").
		Where("expires_at < ? AND state = ?", now, ExportReady).Order("expires_at").Limit(100).Find(&due).Error
	if err != nil {
		return 0, fmt.Errorf("models: expired exports: %w", err)
	}
	for _, e := range due {
		err := RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
			if err := deleteExportChunks(tx, e.TenantID, e.ID); err != nil {
				return err
			}
			return tx.Model(&Export{}).Scopes(ForTenant(e.TenantID)).Where("id = ? AND state = ?", e.ID, ExportReady).
				Updates(map[string]any{"state": ExportExpired, "updated_at": now}).Error
		})
		if err != nil {
			return 0, fmt.Errorf("models: sweep export %d: %w", e.ID, err)
		}
	}
	return len(due), nil
}
