package ingest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"oneid/app/jobs"
	"oneid/app/wechat"
	"oneid/models"
)

// The follower sync of an official account (PRODUCT.md "Ways identities
// arrive"): a job per app that pages cgi-bin/user/get, fetches every listed
// follower through user/info/batchget, and resolves them (models.Resolve,
// source sync, the job's id as the sync pass). Each page of the list is one
// transaction together with the checkpoint that says it is done, so a sync
// that dies resumes without losing or repeating a page; at the end of a full
// pass, followers the pass did not list are marked unsubscribed.
//
// The stages run at once, so WeChat's latency and the database's writes
// overlap: one lister pages user/get a few pages ahead, fetchers call
// batchget in bounded parallel, and writers resolve whole pages, each in its
// own transaction (see syncCheckpoint for how pages committed out of order
// still resume exactly).

// SyncKind is the job kind of follower syncs.
const SyncKind = "sync"

// SyncSubject is the job subject of an app's sync: one live sync per app.
func SyncSubject(appID int64) string { return "app:" + strconv.FormatInt(appID, 10) }

func syncAppID(subject string) (int64, bool) {
	id, err := strconv.ParseInt(strings.TrimPrefix(subject, "app:"), 10, 64)
	return id, err == nil && strings.HasPrefix(subject, "app:") && id > 0
}

// SyncConfig is what a Syncer is built from. Zero fields take the defaults.
type SyncConfig struct {
	DB     *gorm.DB
	WeChat *wechat.Client
	Sealer *models.Sealer
	Log    *slog.Logger
	Now    func() time.Time
	// Fetchers is how many batchget calls are in flight at once (default
	// 16: at WeChat's tens of milliseconds a call, enough to keep ahead of
	// the writers).
	Fetchers int
	// Writers is how many pages are resolved at once, each in its own
	// transaction (default 2).
	Writers int
	// PagesAhead bounds the pages listed but not yet written (default
	// Writers+2): what bounds the memory of a sync of any size.
	PagesAhead int
}

// Syncer runs follower syncs as jobs.
type Syncer struct {
	db     *gorm.DB
	wx     *wechat.Client
	sealer *models.Sealer
	log    *slog.Logger
	now    func() time.Time
	cfg    SyncConfig
}

// NewSyncer builds a Syncer.
func NewSyncer(cfg SyncConfig) *Syncer {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Now().UTC() }
	}
	if cfg.Fetchers <= 0 {
		cfg.Fetchers = 16
	}
	if cfg.Writers <= 0 {
		cfg.Writers = 2
	}
	if cfg.PagesAhead <= 0 {
		cfg.PagesAhead = cfg.Writers + 2
	}
	return &Syncer{db: cfg.DB, wx: cfg.WeChat, sealer: cfg.Sealer, log: cfg.Log, now: cfg.Now, cfg: cfg}
}

// Kind is the sync as a kind of job, for jobs.Runner.Register.
func (s *Syncer) Kind() jobs.Kind {
	return jobs.Kind{Name: SyncKind, Run: s.run, Ended: s.ended}
}

// SyncResult is what a sync reports when it ends (models.Job.Result).
type SyncResult struct {
	Listed       int64 `json:"listed"`       // openids user/get listed and were resolved
	Subscribed   int64 `json:"subscribed"`   // of them, following when batchget was asked
	Rejected     int64 `json:"rejected"`     // refused by resolution (invalid ids)
	Unsubscribed int64 `json:"unsubscribed"` // followers the full pass did not list, marked unsubscribed
	Complete     bool  `json:"complete"`     // the whole list was resolved
}

// ParseSyncResult reads a job's result; zero for a job that reported none.
func ParseSyncResult(s string) SyncResult {
	var r SyncResult
	_ = json.Unmarshal([]byte(s), &r)
	return r
}

func (s *Syncer) run(ctx context.Context, j *jobs.Job) error {
	appID, ok := syncAppID(j.Subject)
	if !ok {
		return jobs.Fail(models.JobErrorInternal, 0, fmt.Errorf("ingest: sync subject %q names no app", j.Subject))
	}
	db := s.db.WithContext(ctx)
	app, err := models.FindApp(db, j.TenantID, appID)
	if errors.Is(err, models.ErrNotFound) {
		return jobs.Fail(models.JobErrorConfig, 0, fmt.Errorf("ingest: app %d no longer exists", appID))
	}
	if err != nil {
		return err
	}
	if err := syncable(app); err != nil {
		return jobs.Fail(models.JobErrorConfig, 0, err)
	}
	if s.wx == nil {
		return jobs.Fail(models.JobErrorConfig, 0, errors.New("ingest: no WeChat client configured"))
	}
	creds, err := CredentialsOf(s.sealer, app)
	if err != nil {
		return jobs.Fail(models.JobErrorConfig, 0, err)
	}
	cp, err := parseSyncCheckpoint(j.Checkpoint)
	if err != nil {
		return jobs.Fail(models.JobErrorInternal, 0, err)
	}
	if !cp.Complete {
		p := &syncPass{s: s, j: j, app: app, creds: creds, pass: j.ID, log: s.log.With("job", j.ID, "appid", app.AppID)}
		if err := p.run(ctx, cp); err != nil {
			return err
		}
		if cp, err = s.committedCheckpoint(ctx, j); err != nil {
			return err
		}
		if !cp.Complete {
			return fmt.Errorf("ingest: sync of %s listed every page but %d pages are not committed", app.AppID, len(cp.Done))
		}
	}
	res := SyncResult{Listed: cp.Listed, Subscribed: cp.Subscribed, Rejected: cp.Rejected, Complete: true}
	started := s.now()
	if j.StartedAt != nil {
		started = *j.StartedAt
	}
	gone, err := models.MarkUnsubscribedExcept(db, j.TenantID, app.ID, j.ID, started)
	if err != nil {
		return err
	}
	res.Unsubscribed = gone
	b, _ := json.Marshal(res)
	j.SetResult(string(b))
	return nil
}

// committedCheckpoint reads the checkpoint as the writers left it.
func (s *Syncer) committedCheckpoint(ctx context.Context, j *jobs.Job) (*syncCheckpoint, error) {
	row, err := models.FindJob(s.db.WithContext(ctx), j.TenantID, j.ID)
	if err != nil {
		return nil, err
	}
	return parseSyncCheckpoint(row.Checkpoint)
}

// syncable refuses apps a follower sync cannot run for.
func syncable(a *models.App) error {
	switch {
	case !a.IsBound():
		return fmt.Errorf("ingest: app %s is unbound", a.AppID)
	case !a.IsOfficialAccount():
		return fmt.Errorf("ingest: app %s is a %s; only official accounts have followers", a.AppID, a.Kind)
	}
	return nil
}

// ended writes what a sync leaves behind, in the transaction that ends it:
// the app's follower count and sync time after a full pass, and the audit line.
func (s *Syncer) ended(tx *gorm.DB, j *jobs.Job, end models.JobEnd) error {
	appID, _ := syncAppID(j.Subject)
	res := ParseSyncResult(end.Result)
	target := ""
	if app, err := models.FindApp(tx, j.TenantID, appID); err == nil {
		target = app.AppID
	}
	e := models.AuditEvent{ActorUserID: j.CreatedBy, Actor: j.Actor, Target: target, CreatedAt: s.now()}
	switch end.State {
	case models.JobSucceeded:
		if err := models.RecordAppSync(tx, j.TenantID, appID, res.Subscribed, s.now()); err != nil && !errors.Is(err, models.ErrNotFound) {
			return err
		}
		e.Action = models.AuditSyncFinished
		e.Detail = fmt.Sprintf("job %d: %d listed, %d following, %d marked unsubscribed", j.ID, res.Listed, res.Subscribed, res.Unsubscribed)
		if res.Rejected > 0 {
			e.Detail += fmt.Sprintf(", %d refused", res.Rejected)
		}
	case models.JobCancelled:
		row, err := models.FindJob(tx, j.TenantID, j.ID)
		if err != nil {
			return err
		}
		e.Action, e.ActorUserID, e.Actor = models.AuditSyncCancelled, 0, row.CancelledBy
		e.Detail = fmt.Sprintf("job %d: stopped after %d of %d", j.ID, row.Processed, row.Total)
	default:
		e.Action = models.AuditSyncFailed
		e.Detail = fmt.Sprintf("job %d: %s", j.ID, end.ErrorKind)
		if end.ErrorCode != 0 {
			e.Detail += fmt.Sprintf(" (errcode %d)", end.ErrorCode)
		}
	}
	return models.RecordAudit(tx, j.TenantID, e)
}

// readCommitted is the isolation of a page's transaction on MySQL, as
// models.Resolve asks for its own: fewer gap locks between parallel writers.
func readCommitted(db *gorm.DB) []*sql.TxOptions {
	if models.Dialect(db) != models.DialectMySQL {
		return nil
	}
	return []*sql.TxOptions{{Isolation: sql.LevelReadCommitted}}
}

// wechatJobError sorts a WeChat failure: quota and configuration errors fail
// the job at once (retrying would only burn quota), and are counted on the
// app's health; anything else is retried by the runner.
func (s *Syncer) wechatJobError(ctx context.Context, appID string, err error) error {
	var we *wechat.Error
	if !errors.As(err, &we) {
		return err
	}
	kind := ""
	switch {
	case wechat.IsQuota(err):
		kind = models.JobErrorQuota
	case wechat.IsConfig(err), wechat.IsTokenInvalid(err), we.Code == wechat.CodeUnauthorized:
		kind = models.JobErrorConfig
	default:
		return err
	}
	// A refused token refresh is counted by the token store already.
	if strings.HasPrefix(we.Endpoint, "cgi-bin/user/") {
		if nerr := models.NoteWechatError(s.db.WithContext(context.WithoutCancel(ctx)), appID, we.Code, s.now()); nerr != nil {
			s.log.Warn("ingest: count wechat error", "appid", appID, "err", nerr)
		}
	}
	return jobs.Fail(kind, we.Code, err)
}
