package models

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Background jobs (follower syncs, CSV imports, exports). A job is a row: the
// portal enqueues it, a runner in any instance claims it by taking its lease
// (lease_owner, lease_until) with a compare-and-set, renews the lease while it
// works, and ends it. Rules kept here:
//
//   - One live job per (tenant, kind, subject): active_key is set while the
//     job is queued or running and cleared when it ends, under a unique index.
//   - One runner per job: every write of a running job names its lease owner,
//     so a runner that lost its lease (it stalled and another instance took
//     over) has its writes refused with ErrLeaseLost, transaction and all.
//   - Resumable: a job keeps its checkpoint in the row and writes it in the
//     same transaction as the work it describes (SaveJobCheckpoint); a job
//     whose runner died is claimed again once its lease runs out.

// Job states.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// Why a job failed (Job.ErrorKind), for the message its page shows.
const (
	JobErrorQuota    = "quota"    // an API quota is used up (WeChat 45009/45011)
	JobErrorConfig   = "config"   // the setup is wrong (credentials, IP whitelist…); an admin must act
	JobErrorInternal = "internal" // anything else, after the retries
	JobErrorGaveUp   = "gave_up"  // claimed too many times without ending (its runner kept dying)
)

// Job is one run of a background job.
type Job struct {
	ID       int64 `gorm:"primaryKey"`
	TenantID int64
	Kind     string
	Subject  string // what the job is about, e.g. "app:42"; one live job per subject
	// ActiveKey is "tenant:kind:subject" while the job is live, nil after.
	ActiveKey *string
	State     string
	Params    string // set at enqueue, read by the job (JSON by convention)
	// Checkpoint is where the job resumes; it writes it with its work.
	Checkpoint      string
	Processed       int64 // items done, moved with the checkpoint
	Total           int64 // items expected; 0 while unknown
	Rate            float64
	CancelRequested bool
	CancelledBy     string // who asked for the cancellation (for the audit log)
	LeaseOwner      string
	LeaseUntil      *time.Time
	Attempts        int       // claims so far
	RunAfter        time.Time // not claimed before (retry backoff)
	ErrorKind       string    // JobError*; the last error while retrying, the cause once failed
	ErrorCode       int       // e.g. WeChat's errcode
	Error           string
	Result          string // what the job reports when it ends (JSON by convention)
	CreatedBy       int64  // user who started it; 0 for schedules and the tenant's systems
	Actor           string // who started it, as the audit log shows it
	CreatedAt       time.Time
	StartedAt       *time.Time // first claim
	HeartbeatAt     *time.Time
	FinishedAt      *time.Time
	UpdatedAt       time.Time
}

// Live reports a job that is queued or running.
func (j *Job) Live() bool { return j.State == JobQueued || j.State == JobRunning }

// Remaining estimates the time left from the rate; ok is false while there is
// nothing to go on.
func (j *Job) Remaining() (d time.Duration, ok bool) {
	if j.Rate <= 0 || j.Total <= 0 || j.State != JobRunning {
		return 0, false
	}
	left := j.Total - j.Processed
	if left < 0 {
		left = 0
	}
	return time.Duration(float64(left) / j.Rate * float64(time.Second)), true
}

// NewJob is a job to enqueue.
type NewJob struct {
	Kind      string
	Subject   string
	Params    string
	CreatedBy int64
	Actor     string
}

// JobEnd is how a job ended.
type JobEnd struct {
	State     string // JobSucceeded, JobFailed or JobCancelled
	ErrorKind string
	ErrorCode int
	Error     string
	Result    string
}

var (
	// ErrJobActive refuses a second live job for a subject; EnqueueJob returns
	// the live one with it.
	ErrJobActive = errors.New("models: a job for this subject is already queued or running")
	// ErrLeaseLost refuses a write by a runner that no longer holds the job.
	ErrLeaseLost = errors.New("models: the job is no longer leased to this runner")
	// ErrJobNotLive refuses to cancel a job that has ended, or to retry one
	// that has not failed.
	ErrJobNotLive = errors.New("models: the job has ended")
)

func jobActiveKey(tenantID int64, kind, subject string) string {
	return strconv.FormatInt(tenantID, 10) + ":" + kind + ":" + subject
}

// EnqueueJob adds a queued job. When the subject has a live job already it
// returns that one with ErrJobActive.
func EnqueueJob(db *gorm.DB, tenantID int64, nj NewJob, now time.Time) (*Job, error) {
	if nj.Kind == "" || nj.Subject == "" || len(nj.Kind) > 32 || len(nj.Subject) > 64 {
		return nil, fmt.Errorf("models: enqueue job: kind %q and subject %q must be 1–32 and 1–64 bytes", nj.Kind, nj.Subject)
	}
	now = dbTime(now)
	key := jobActiveKey(tenantID, nj.Kind, nj.Subject)
	j := &Job{TenantID: tenantID, Kind: nj.Kind, Subject: nj.Subject, ActiveKey: &key, State: JobQueued,
		Params: nj.Params, CreatedBy: nj.CreatedBy, Actor: clipString(nj.Actor, 254), RunAfter: now,
		CreatedAt: now, UpdatedAt: now}
	err := db.Create(j).Error
	if err == nil {
		return j, nil
	}
	if !isDuplicateKey(err) {
		return nil, fmt.Errorf("models: enqueue %s job: %w", nj.Kind, err)
	}
	live, ferr := LiveJob(db, tenantID, nj.Kind, nj.Subject)
	if ferr != nil {
		return nil, fmt.Errorf("models: enqueue %s job: %w (and the live one: %v)", nj.Kind, ErrJobActive, ferr)
	}
	return live, ErrJobActive
}

// FindJob loads one of the tenant's jobs.
func FindJob(db *gorm.DB, tenantID, id int64) (*Job, error) {
	var j Job
	if err := db.Scopes(ForTenant(tenantID)).Where("id = ?", id).Take(&j).Error; err != nil {
		return nil, notFound(err)
	}
	return &j, nil
}

// LiveJob is the subject's queued or running job, or ErrNotFound.
func LiveJob(db *gorm.DB, tenantID int64, kind, subject string) (*Job, error) {
	var j Job
	err := db.Scopes(ForTenant(tenantID)).Where("active_key = ?", jobActiveKey(tenantID, kind, subject)).Take(&j).Error
	if err != nil {
		return nil, notFound(err)
	}
	return &j, nil
}

// LatestJobs returns the newest job of each subject that has one.
func LatestJobs(db *gorm.DB, tenantID int64, kind string, subjects []string) (map[string]Job, error) {
	out := map[string]Job{}
	if len(subjects) == 0 {
		return out, nil
	}
	newest := db.Model(&Job{}).Scopes(ForTenant(tenantID)).Select("MAX(id)").
		Where("kind = ? AND subject IN ?", kind, subjects).Group("subject")
	var rows []Job
	if err := db.Scopes(ForTenant(tenantID)).Where("id IN (?)", newest).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("models: latest %s jobs: %w", kind, err)
	}
	for _, j := range rows {
		out[j.Subject] = j
	}
	return out, nil
}

// RecentJobs lists a tenant's jobs of a kind, newest first: a subject's only
// when subject is not "".
func RecentJobs(db *gorm.DB, tenantID int64, kind, subject string, limit int) ([]Job, error) {
	var rows []Job
	q := db.Scopes(ForTenant(tenantID)).Where("kind = ?", kind)
	if subject != "" {
		q = q.Where("subject = ?", subject)
	}
	err := q.Order("id DESC").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: recent %s jobs: %w", kind, err)
	}
	return rows, nil
}

// RequestJobCancel cancels a queued job at once (immediate is true: it never
// ran, and nothing else will report it) or asks the runner of a running one to
// stop, which it notices at its next heartbeat. by is who asked, for the audit
// log. A job that has ended answers ErrJobNotLive.
func RequestJobCancel(db *gorm.DB, tenantID, id int64, by string, now time.Time) (immediate bool, err error) {
	now = dbTime(now)
	by = clipString(by, 254)
	res := db.Model(&Job{}).Scopes(ForTenant(tenantID)).Where("id = ? AND state = ?", id, JobQueued).
		Updates(map[string]any{"state": JobCancelled, "active_key": nil, "cancel_requested": true, "cancelled_by": by,
			"finished_at": now, "updated_at": now})
	if res.Error != nil {
		return false, fmt.Errorf("models: cancel job %d: %w", id, res.Error)
	}
	if res.RowsAffected == 1 {
		return true, nil
	}
	res = db.Model(&Job{}).Scopes(ForTenant(tenantID)).Where("id = ? AND state = ?", id, JobRunning).
		Updates(map[string]any{"cancel_requested": true, "cancelled_by": by, "updated_at": now})
	if res.Error != nil {
		return false, fmt.Errorf("models: cancel job %d: %w", id, res.Error)
	}
	if res.RowsAffected == 1 {
		return false, nil
	}
	if _, err := FindJob(db, tenantID, id); err != nil {
		return false, err
	}
	return false, ErrJobNotLive
}

// RetryJob queues a failed job again, from its checkpoint: a sync stopped by
// WeChat's daily quota goes on where it stopped. It answers ErrJobActive when
// another job of the subject is live, ErrJobNotLive when the job did not fail.
func RetryJob(db *gorm.DB, tenantID, id int64, actor string, now time.Time) error {
	j, err := FindJob(db, tenantID, id)
	if err != nil {
		return err
	}
	if j.State != JobFailed {
		return ErrJobNotLive
	}
	now = dbTime(now)
	key := jobActiveKey(tenantID, j.Kind, j.Subject)
	res := db.Model(&Job{}).Scopes(ForTenant(tenantID)).Where("id = ? AND state = ?", id, JobFailed).
		Updates(map[string]any{"state": JobQueued, "active_key": key, "attempts": 0, "run_after": now,
			"error_kind": "", "error_code": 0, "error": "", "cancel_requested": false, "cancelled_by": "",
			"finished_at": nil, "actor": clipString(actor, 254), "updated_at": now})
	if res.Error != nil {
		if isDuplicateKey(res.Error) {
			return ErrJobActive
		}
		return fmt.Errorf("models: retry job %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrJobNotLive
	}
	return nil
}

// The runner's side. Runners poll across tenants; everything after the poll
// is scoped to the job's tenant.

// DueJobs lists live jobs of the given kinds that a runner may claim now:
// queued and due, or running under a lease that ran out (its runner died).
func DueJobs(db *gorm.DB, kinds []string, now time.Time, limit int) ([]Job, error) {
	if len(kinds) == 0 {
		return nil, nil
	}
	now = dbTime(now)
	var rows []Job
	err := CrossTenant(db, "job runners poll every tenant's due jobs").
		Select("id", "tenant_id", "kind", "state", "run_after", "lease_until").
		Where("state IN ? AND run_after <= ? AND kind IN ?", []string{JobQueued, JobRunning}, now, kinds).
		Where("lease_until IS NULL OR lease_until < ?", now).
		Order("run_after, id").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: due jobs: %w", err)
	}
	return rows, nil
}

// ClaimJob takes a due job's lease for owner until leaseUntil, counting the
// attempt. ok is false when another runner was quicker (or the job is no
// longer due); the job as claimed is returned otherwise.
func ClaimJob(db *gorm.DB, tenantID, id int64, owner string, now, leaseUntil time.Time) (*Job, bool, error) {
	now, leaseUntil = dbTime(now), dbTime(leaseUntil)
	res := db.Model(&Job{}).Scopes(ForTenant(tenantID)).
		Where("id = ? AND state IN ? AND run_after <= ?", id, []string{JobQueued, JobRunning}, now).
		Where("lease_until IS NULL OR lease_until < ?", now).
		Updates(map[string]any{"state": JobRunning, "lease_owner": owner, "lease_until": leaseUntil,
			"attempts": gorm.Expr("attempts + 1"), "started_at": gorm.Expr("COALESCE(started_at, ?)", now),
			"heartbeat_at": now, "updated_at": now})
	if res.Error != nil {
		return nil, false, fmt.Errorf("models: claim job %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, false, nil
	}
	j, err := FindJob(db, tenantID, id)
	if err != nil {
		return nil, false, err
	}
	if j.LeaseOwner != owner {
		return nil, false, nil // claimed and lost in between: not ours
	}
	return j, true, nil
}

// JobBeat is what a runner's heartbeat writes besides the lease.
type JobBeat struct {
	Total int64
	Rate  float64
}

// RenewJobLease extends owner's lease and records progress figures; it reports
// whether someone asked to cancel the job. ErrLeaseLost when owner no longer
// holds the job.
func RenewJobLease(db *gorm.DB, tenantID, id int64, owner string, now, leaseUntil time.Time, beat JobBeat) (cancelRequested bool, err error) {
	now, leaseUntil = dbTime(now), dbTime(leaseUntil)
	set := map[string]any{"lease_until": leaseUntil, "heartbeat_at": now, "rate": beat.Rate}
	if beat.Total > 0 {
		set["total"] = beat.Total
	}
	res := db.Model(&Job{}).Scopes(ForTenant(tenantID)).
		Where("id = ? AND state = ? AND lease_owner = ?", id, JobRunning, owner).Updates(set)
	if res.Error != nil {
		return false, fmt.Errorf("models: renew lease of job %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return false, ErrLeaseLost
	}
	var flag []bool
	if err := db.Model(&Job{}).Scopes(ForTenant(tenantID)).Where("id = ?", id).Pluck("cancel_requested", &flag).Error; err != nil {
		return false, fmt.Errorf("models: read job %d: %w", id, err)
	}
	return len(flag) == 1 && flag[0], nil
}

// LockJobCheckpoint reads the checkpoint of owner's running job and locks the
// row until tx ends, for a job whose parallel writers each update it (read,
// change, SaveJobCheckpoint). ErrLeaseLost when owner no longer holds it.
func LockJobCheckpoint(tx *gorm.DB, tenantID, id int64, owner string) (string, error) {
	var rows []Job
	err := tx.Scopes(ForTenant(tenantID)).Clauses(clause.Locking{Strength: "UPDATE"}).Select("id", "checkpoint").
		Where("id = ? AND state = ? AND lease_owner = ?", id, JobRunning, owner).Find(&rows).Error
	if err != nil {
		return "", fmt.Errorf("models: lock checkpoint of job %d: %w", id, err)
	}
	if len(rows) == 0 {
		return "", ErrLeaseLost
	}
	return rows[0].Checkpoint, nil
}

// SaveJobCheckpoint records, in the caller's transaction, where owner's job
// would resume and how many more items it has done. Written with the work it
// describes, it commits or rolls back with it; ErrLeaseLost (the whole
// transaction must roll back) when owner no longer holds the job.
func SaveJobCheckpoint(tx *gorm.DB, tenantID, id int64, owner, checkpoint string, processed int64, now time.Time) error {
	res := tx.Model(&Job{}).Scopes(ForTenant(tenantID)).
		Where("id = ? AND state = ? AND lease_owner = ?", id, JobRunning, owner).
		Updates(map[string]any{"checkpoint": checkpoint, "processed": gorm.Expr("processed + ?", processed),
			"updated_at": dbTime(now)})
	if res.Error != nil {
		return fmt.Errorf("models: save checkpoint of job %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrLeaseLost
	}
	return nil
}

// EndJob records how owner's job ended and frees its subject for the next job.
func EndJob(db *gorm.DB, tenantID, id int64, owner string, end JobEnd, now time.Time) error {
	switch end.State {
	case JobSucceeded, JobFailed, JobCancelled:
	default:
		return fmt.Errorf("models: end job %d: %q is not an end state", id, end.State)
	}
	now = dbTime(now)
	res := db.Model(&Job{}).Scopes(ForTenant(tenantID)).
		Where("id = ? AND state = ? AND lease_owner = ?", id, JobRunning, owner).
		Updates(map[string]any{"state": end.State, "active_key": nil, "lease_owner": "", "lease_until": nil,
			"error_kind": end.ErrorKind, "error_code": end.ErrorCode, "error": clipString(end.Error, 500),
			"result": end.Result, "rate": 0, "finished_at": now, "updated_at": now})
	if res.Error != nil {
		return fmt.Errorf("models: end job %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrLeaseLost
	}
	return nil
}

// RequeueJob gives owner's job back to the queue, due at runAfter: after a
// transient error (recorded as the last error) or when the runner shuts down
// (no error; another instance may take it at once). The checkpoint stays.
func RequeueJob(db *gorm.DB, tenantID, id int64, owner string, runAfter time.Time, last JobEnd, now time.Time) error {
	now = dbTime(now)
	res := db.Model(&Job{}).Scopes(ForTenant(tenantID)).
		Where("id = ? AND state = ? AND lease_owner = ?", id, JobRunning, owner).
		Updates(map[string]any{"state": JobQueued, "lease_owner": "", "lease_until": nil, "run_after": dbTime(runAfter),
			"error_kind": last.ErrorKind, "error_code": last.ErrorCode, "error": clipString(last.Error, 500),
			"rate": 0, "updated_at": now})
	if res.Error != nil {
		return fmt.Errorf("models: requeue job %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrLeaseLost
	}
	return nil
}
