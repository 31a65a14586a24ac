package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"gorm.io/gorm"

	"oneid/models"
)

// Job is a claimed job as its Handler sees it: the row as claimed (Checkpoint
// is where to resume, Params what it was asked, Attempts how many claims so
// far) and the calls that report progress.
type Job struct {
	models.Job
	runner    *Runner
	total     atomic.Int64
	processed atomic.Int64
	result    string
}

// ErrCancelled is the cause of a job's context when an admin cancelled it.
var ErrCancelled = errors.New("jobs: cancelled")

// ErrLeaseLost is the cause of a job's context when another runner took the
// job over (this one stalled past its lease); the job's writes are refused.
var ErrLeaseLost = models.ErrLeaseLost

// Cancelled reports whether ctx is a job's context cancelled by an admin.
func Cancelled(ctx context.Context) bool { return errors.Is(context.Cause(ctx), ErrCancelled) }

// SetTotal reports how many items the job expects; the heartbeat writes it.
func (j *Job) SetTotal(n int64) { j.total.Store(n) }

// SetResult sets what the job reports when it ends (Job.Result; JSON by
// convention). The Ended hook sees it.
func (j *Job) SetResult(s string) { j.result = s }

// Commit records, inside the caller's transaction tx, the checkpoint to
// resume from and the items this piece of work did. Commit it in the
// transaction of the work itself: both land, or neither. It fails with
// ErrLeaseLost (roll back) when another runner holds the job now.
func (j *Job) Commit(tx *gorm.DB, checkpoint string, processed int64) error {
	if err := models.SaveJobCheckpoint(tx, j.TenantID, j.ID, j.runner.cfg.Owner, checkpoint, processed, j.runner.cfg.Now()); err != nil {
		return err
	}
	j.processed.Add(processed)
	return nil
}

// CommitWith is Commit for a job whose parallel writers share the checkpoint:
// it locks the row, passes the checkpoint as committed so far to next, and
// saves what next returns. Call it last in the transaction: the row stays
// locked until the commit.
func (j *Job) CommitWith(tx *gorm.DB, next func(cur string) (checkpoint string, processed int64, err error)) error {
	cur, err := models.LockJobCheckpoint(tx, j.TenantID, j.ID, j.runner.cfg.Owner)
	if err != nil {
		return err
	}
	cp, n, err := next(cur)
	if err != nil {
		return err
	}
	return j.Commit(tx, cp, n)
}

// Failure is an error not worth retrying (a used-up quota, wrong
// credentials): the job fails at once, and its page shows Kind and Code.
type Failure struct {
	Kind string // models.JobError*
	Code int    // e.g. WeChat's errcode; 0 when none
	Err  error
}

func (f *Failure) Error() string { return fmt.Sprintf("jobs: %s failure: %v", f.Kind, f.Err) }
func (f *Failure) Unwrap() error { return f.Err }

// Fail wraps err as a Failure of the given kind.
func Fail(kind string, code int, err error) error { return &Failure{Kind: kind, Code: code, Err: err} }
