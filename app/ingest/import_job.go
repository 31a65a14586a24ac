package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"oneid/app/binding"
	"oneid/app/jobs"
	"oneid/models"
)

// ImportKind is the job kind of large CSV imports.
const ImportKind = "import"

// Import sizes: up to importInlineRows rows are written during the upload,
// in one transaction; larger files are queued as a job that writes
// importChunkRows rows per transaction, each with its checkpoint.
const (
	importInlineRows = 5000
	importChunkRows  = 5000
)

// Importer writes validated CSV imports, inline or as jobs.
type Importer struct {
	db  *gorm.DB
	log *slog.Logger
	now func() time.Time
	// InlineRows overrides importInlineRows (tests).
	inlineRows int
}

// ImporterConfig is what an Importer is built from.
type ImporterConfig struct {
	DB  *gorm.DB
	Log *slog.Logger
	Now func() time.Time
	// InlineRows is the largest file written during the upload; larger ones
	// become jobs. Default 5,000.
	InlineRows int
}

// NewImporter builds an Importer.
func NewImporter(cfg ImporterConfig) *Importer {
	im := &Importer{db: cfg.DB, log: cfg.Log, now: cfg.Now, inlineRows: cfg.InlineRows}
	if im.log == nil {
		im.log = slog.New(slog.DiscardHandler)
	}
	if im.now == nil {
		im.now = func() time.Time { return time.Now().UTC() }
	}
	if im.inlineRows <= 0 {
		im.inlineRows = importInlineRows
	}
	return im
}

// Kind is the import as a kind of job, for jobs.Runner.Register.
func (im *Importer) Kind() jobs.Kind {
	return jobs.Kind{Name: ImportKind, Run: im.run, Ended: im.ended}
}

// ImportActor is who imports, as the audit log records it: the same who as
// binding's.
type ImportActor = binding.Actor

// ImportResult counts what an import did (the job's Result, JSON).
type ImportResult struct {
	File      string `json:"file"`
	Lines     int    `json:"lines"`     // data rows in the file
	Rows      int    `json:"rows"`      // distinct (appid, openid) rows
	Created   int    `json:"created"`   // new identities
	Linked    int    `json:"linked"`    // identities moved to their UnionID's customer
	Updated   int    `json:"updated"`   // identities whose state changed
	Unchanged int    `json:"unchanged"` // known already, nothing new
	Done      int    `json:"done"`      // rows written so far
	Chunk     int    `json:"chunk"`     // the next chunk to write (jobs)
}

func (r *ImportResult) add(res models.ResolveResult) {
	r.Created += res.Counts[models.Created]
	r.Linked += res.Counts[models.Linked]
	r.Updated += res.Counts[models.Updated]
	r.Unchanged += res.Counts[models.Unchanged]
	r.Done += len(res.Outcomes)
}

// ParseImportResult reads a job's result or checkpoint; zero when none.
func ParseImportResult(s string) ImportResult {
	var r ImportResult
	_ = json.Unmarshal([]byte(s), &r)
	return r
}

// Imported is what Import did with a file that passed its checks: written
// (Result) or queued (Job).
type Imported struct {
	Result *ImportResult
	Job    *models.Job
}

// ErrImportRunning: the same file is being imported already.
var ErrImportRunning = errors.New("ingest: this file is being imported already")

// Import checks a file and, when it has no problem, writes it: at once in one
// transaction when small, else as a job. Either way the import is audited; a
// refused file too (with how many problems), having written nothing.
func (im *Importer) Import(ctx context.Context, tenantID int64, who ImportActor, fileName string, data []byte) (*Imported, []ImportProblem, error) {
	db := im.db.WithContext(ctx)
	apps, err := models.ListApps(db, tenantID)
	if err != nil {
		return nil, nil, err
	}
	file, problems := ParseImport(data, apps)
	fileName = clipName(fileName)
	if len(problems) > 0 {
		detail := fmt.Sprintf("%d problems; nothing written", len(problems))
		if len(problems) >= maxImportProblems {
			detail = fmt.Sprintf("%d or more problems; nothing written", len(problems))
		}
		return nil, problems, im.audit(db, tenantID, who, models.AuditImportRejected, fileName, detail)
	}
	res := &ImportResult{File: fileName, Lines: file.Lines, Rows: len(file.Rows)}
	if len(file.Rows) <= im.inlineRows {
		obs := importObservations(file.Rows, im.now())
		err := models.RetryTx(ctx, db, func(tx *gorm.DB) error {
			*res = ImportResult{File: fileName, Lines: file.Lines, Rows: len(file.Rows)}
			r, err := models.Resolve(tx, tenantID, obs)
			if err != nil {
				return err
			}
			if err := firstRejection(r); err != nil {
				return err
			}
			res.add(r)
			return im.audit(tx, tenantID, who, models.AuditImportDone, fileName, res.summary())
		}, readCommitted(db)...)
		if err != nil {
			return nil, nil, err
		}
		return &Imported{Result: res}, nil, nil
	}

	sum := sha256.Sum256(data)
	params, _ := json.Marshal(importParams{File: fileName, Lines: file.Lines, Rows: len(file.Rows),
		IP: who.IP, RequestID: who.RequestID})
	var chunks [][]byte
	var counts []int
	for start := 0; start < len(file.Rows); start += importChunkRows {
		part := file.Rows[start:min(start+importChunkRows, len(file.Rows))]
		chunks = append(chunks, encodeImportRows(part))
		counts = append(counts, len(part))
	}
	var job *models.Job
	err = models.RetryTx(ctx, db, func(tx *gorm.DB) error {
		j, err := models.EnqueueJob(tx, tenantID, models.NewJob{Kind: ImportKind, Subject: "file:" + hex.EncodeToString(sum[:12]),
			Params: string(params), CreatedBy: who.UserID, Actor: who.Email}, im.now())
		if err != nil {
			return err
		}
		job = j
		return models.SaveImportChunks(tx, tenantID, j.ID, chunks, counts, im.now())
	})
	if errors.Is(err, models.ErrJobActive) {
		return nil, nil, ErrImportRunning
	}
	if err != nil {
		return nil, nil, err
	}
	return &Imported{Job: job}, nil, nil
}

type importParams struct {
	File      string `json:"file"`
	Lines     int    `json:"lines"`
	Rows      int    `json:"rows"`
	IP        string `json:"ip"`
	RequestID string `json:"request_id"`
}

func (r *ImportResult) summary() string {
	return fmt.Sprintf("%d rows (%d distinct): %d new, %d linked, %d updated, %d unchanged",
		r.Lines, r.Rows, r.Created, r.Linked, r.Updated, r.Unchanged)
}

func firstRejection(r models.ResolveResult) error {
	for _, o := range r.Outcomes {
		if o.Err != nil {
			return fmt.Errorf("ingest: import refused by resolution: %w", o.Err)
		}
	}
	return nil
}

func (im *Importer) audit(db *gorm.DB, tenantID int64, who ImportActor, action, target, detail string) error {
	return models.RecordAudit(db, tenantID, who.Event(action, target, detail, im.now()))
}

func clipName(s string) string {
	if s == "" {
		return "import.csv"
	}
	r := []rune(s)
	if len(r) > 120 {
		r = r[:120]
	}
	return string(r)
}

// run writes a queued import chunk by chunk, each chunk's rows with the
// checkpoint (the next chunk and the counts so far) in one transaction, so a
// job resumed after a crash or a restart neither skips nor repeats a chunk.
func (im *Importer) run(ctx context.Context, j *jobs.Job) error {
	var p importParams
	_ = json.Unmarshal([]byte(j.Params), &p)
	j.SetTotal(int64(p.Rows))
	cp := ParseImportResult(j.Checkpoint)
	cp.File, cp.Lines, cp.Rows = p.File, p.Lines, p.Rows
	db := im.db.WithContext(ctx)
	for seq := cp.Chunk; ; seq++ {
		chunk, err := models.LoadImportChunk(db, j.TenantID, j.ID, seq)
		if errors.Is(err, models.ErrNotFound) {
			break
		}
		if err != nil {
			return err
		}
		rows, err := decodeImportRows(chunk.Data)
		if err != nil {
			return jobs.Fail(models.JobErrorInternal, 0, err)
		}
		obs := importObservations(rows, im.now())
		next := cp
		err = models.RetryTx(ctx, db, func(tx *gorm.DB) error {
			next = cp
			r, err := models.Resolve(tx, j.TenantID, obs)
			if err != nil {
				return err
			}
			if err := firstRejection(r); err != nil {
				return jobs.Fail(models.JobErrorInternal, 0, err)
			}
			next.add(r)
			next.Chunk = seq + 1
			raw, _ := json.Marshal(next)
			return j.Commit(tx, string(raw), int64(len(rows)))
		}, readCommitted(db)...)
		if err != nil {
			return err
		}
		cp = next
	}
	raw, _ := json.Marshal(cp)
	j.SetResult(string(raw))
	return nil
}

// ended audits the import once, whatever the ending, and drops its chunks.
func (im *Importer) ended(tx *gorm.DB, j *jobs.Job, end models.JobEnd) error {
	var p importParams
	_ = json.Unmarshal([]byte(j.Params), &p)
	res := ParseImportResult(end.Result)
	if end.Result == "" {
		// Failed or cancelled: the rows done are in the last committed
		// checkpoint, not in the one the job was claimed with.
		row, err := models.FindJob(tx, j.TenantID, j.ID)
		if err != nil {
			return err
		}
		res = ParseImportResult(row.Checkpoint)
	}
	res.File, res.Lines, res.Rows = p.File, p.Lines, p.Rows
	detail := res.summary()
	switch end.State {
	case models.JobFailed:
		detail = fmt.Sprintf("failed after %d of %d rows: %s", res.Done, res.Rows, end.Error)
	case models.JobCancelled:
		detail = fmt.Sprintf("cancelled after %d of %d rows", res.Done, res.Rows)
	}
	who := ImportActor{UserID: j.CreatedBy, Email: j.Actor, IP: p.IP, RequestID: p.RequestID}
	if err := im.audit(tx, j.TenantID, who, models.AuditImportDone, p.File, detail); err != nil {
		return err
	}
	return models.DeleteImportChunks(tx, j.TenantID, j.ID)
}
