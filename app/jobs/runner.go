// Package jobs runs OneID's background jobs — follower syncs, CSV imports,
// exports — in whichever instance claims them first. The job rows and their
// rules are in models (models/jobs.go): a live job per subject, a lease per
// job, a checkpoint written with the work. This package is the loop around
// them: poll, claim, heartbeat, run the job's code, and record how it ended.
//
// A kind of job is a Run function, and optionally an Ended hook:
//
//	r := jobs.New(jobs.Config{DB: db, Log: log})
//	r.Register(jobs.Kind{Name: "import", Run: importer.Run, Ended: importer.Ended})
//	go r.Run(ctx) // until ctx ends; jobs in flight are handed back to the queue
//
// and anything enqueues one with models.EnqueueJob. Run gets a context that is
// cancelled when an admin cancels the job (context.Cause is ErrCancelled),
// when the runner loses the lease (ErrLeaseLost) or shuts down; it resumes
// from j.Checkpoint, writes checkpoints with j.Commit inside its own
// transactions, reports j.SetTotal, and returns nil when done, an error from
// Fail for a failure not worth retrying, or any other error to be retried
// with backoff.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"gorm.io/gorm"

	"oneid/models"
)

// Handler does one job. It must be safe to run again from the last checkpoint
// it committed: after a crash, a lost lease or a shutdown it is.
type Handler func(ctx context.Context, j *Job) error

// Kind is how the runner runs one kind of job.
type Kind struct {
	Name string
	Run  Handler
	// Ended, if set, runs in the transaction that records how the job ended
	// (succeeded, failed or cancelled): the place for audit lines and for
	// what a finished job leaves behind, so they happen exactly once.
	Ended func(tx *gorm.DB, j *Job, end models.JobEnd) error
}

// Config is what a Runner is built from. Zero fields take the defaults.
type Config struct {
	DB  *gorm.DB
	Log *slog.Logger
	// Owner names this runner in leases; default host-pid-random.
	Owner string
	// Lease is how long a claim lasts without renewal (default 30 s): a job
	// whose runner died is picked up again this long after its last heartbeat.
	Lease time.Duration
	// Heartbeat is how often the lease is renewed, progress written and a
	// cancellation noticed (default 2 s, at most Lease/3).
	Heartbeat time.Duration
	// Poll is how often the queue is read (default 1 s).
	Poll time.Duration
	// Slots is how many jobs this runner works on at once (default 2).
	Slots int
	// MaxAttempts bounds the claims of one job (default 10): retries after
	// errors and resumptions after crashes together.
	MaxAttempts int
	// Backoff is the wait before attempt n+1 after a retryable error
	// (default 5 s·2ⁿ⁻¹, at most 10 min).
	Backoff func(attempt int) time.Duration
	Now     func() time.Time
}

// Runner claims and runs jobs. Register every kind before Run.
type Runner struct {
	cfg   Config
	db    *gorm.DB
	log   *slog.Logger
	kinds map[string]Kind
	wake  chan struct{}

	mu      sync.Mutex
	running map[int64]*Job
}

// New builds a Runner.
func New(cfg Config) *Runner {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Owner == "" {
		cfg.Owner = defaultOwner()
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 2 * time.Second
	}
	if cfg.Heartbeat > cfg.Lease/3 {
		cfg.Heartbeat = cfg.Lease / 3
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Slots <= 0 {
		cfg.Slots = 2
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Backoff == nil {
		cfg.Backoff = func(n int) time.Duration {
			d := 5 * time.Second << max(n-1, 0)
			if d > 10*time.Minute || d <= 0 {
				d = 10 * time.Minute
			}
			return d
		}
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Now().UTC() }
	}
	return &Runner{cfg: cfg, db: cfg.DB, log: cfg.Log, kinds: map[string]Kind{}, wake: make(chan struct{}, 1),
		running: map[int64]*Job{}}
}

func defaultOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	owner := fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	if len(owner) > 64 {
		owner = owner[len(owner)-64:]
	}
	return owner
}

// Register adds a kind of job. It panics on a kind without a name or Run, or
// registered twice: that is a programming error.
func (r *Runner) Register(k Kind) {
	if k.Name == "" || k.Run == nil {
		panic("jobs: a kind needs a name and a Run function")
	}
	if _, dup := r.kinds[k.Name]; dup {
		panic("jobs: kind " + k.Name + " registered twice")
	}
	r.kinds[k.Name] = k
}

// Wake makes Run poll now rather than at its next tick (after an enqueue in
// this instance, say). It never blocks.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run polls for due jobs and runs up to Slots at once until ctx ends. Jobs in
// flight are then stopped and handed back to the queue (their checkpoints
// stay), and Run returns when they have.
func (r *Runner) Run(ctx context.Context) error {
	slots := make(chan struct{}, r.cfg.Slots)
	var wg sync.WaitGroup
	defer wg.Wait()
	failures := 0
	for {
		if r.claimInto(ctx, slots, &wg) {
			failures = 0
		} else {
			failures++
		}
		// The queue could not be read (the database is down): poll less
		// often while it stays so, up to maxPollBackoff, and at the usual
		// pace again as soon as it answers.
		t := time.NewTimer(PollWait(r.cfg.Poll, failures))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-r.wake:
			t.Stop()
		}
	}
}

// maxPollBackoff bounds the wait between polls of a queue that cannot be read.
const maxPollBackoff = 10 * time.Second

// PollWait is the wait before the next poll after failures failed ones in a
// row: poll itself, then doubling up to maxPollBackoff (never below poll).
// The callback worker backs off the same way.
func PollWait(poll time.Duration, failures int) time.Duration {
	if failures <= 0 {
		return poll
	}
	d := poll << min(failures, 10)
	if d > maxPollBackoff || d <= 0 {
		d = max(maxPollBackoff, poll)
	}
	return d
}

// Drain runs due jobs, one slot after another, until none is due; tests and
// one-shot commands use it. It returns the first error of the queue itself.
func (r *Runner) Drain(ctx context.Context) error {
	for ctx.Err() == nil {
		due, err := models.DueJobs(r.db.WithContext(ctx), r.kindNames(), r.cfg.Now(), 1)
		if err != nil {
			return err
		}
		if len(due) == 0 {
			return nil
		}
		j, ok, err := r.claim(ctx, due[0])
		if err != nil {
			return err
		}
		if ok {
			r.run(ctx, j)
		}
	}
	return ctx.Err()
}

func (r *Runner) kindNames() []string {
	names := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// claimInto claims due jobs into the free slots; false when the queue could
// not be read.
func (r *Runner) claimInto(ctx context.Context, slots chan struct{}, wg *sync.WaitGroup) bool {
	free := cap(slots) - len(slots)
	if free == 0 || ctx.Err() != nil {
		return true
	}
	due, err := models.DueJobs(r.db.WithContext(ctx), r.kindNames(), r.cfg.Now(), free*2)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("jobs: poll", "err", err)
		}
		return false
	}
	for _, d := range due {
		if len(slots) == cap(slots) {
			return true
		}
		j, ok, err := r.claim(ctx, d)
		if err != nil {
			r.log.Warn("jobs: claim", "job", d.ID, "err", err)
			continue
		}
		if !ok {
			continue
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			r.run(ctx, j)
		}()
	}
	return true
}

func (r *Runner) claim(ctx context.Context, d models.Job) (*Job, bool, error) {
	now := r.cfg.Now()
	row, ok, err := models.ClaimJob(r.db.WithContext(ctx), d.TenantID, d.ID, r.cfg.Owner, now, now.Add(r.cfg.Lease))
	if err != nil || !ok {
		return nil, false, err
	}
	j := &Job{Job: *row, runner: r}
	j.total.Store(row.Total)
	j.processed.Store(row.Processed)
	return j, true, nil
}

// run works on one claimed job until it ends, is handed back or is lost.
func (r *Runner) run(ctx context.Context, j *Job) {
	log := r.log.With("job", j.ID, "kind", j.Kind, "tenant", j.TenantID, "attempt", j.Attempts)
	kind := r.kinds[j.Kind]
	switch {
	case j.CancelRequested:
		r.end(ctx, j, kind, models.JobEnd{State: models.JobCancelled}, log)
		return
	case j.Attempts > r.cfg.MaxAttempts:
		r.end(ctx, j, kind, models.JobEnd{State: models.JobFailed, ErrorKind: models.JobErrorGaveUp,
			Error: fmt.Sprintf("claimed %d times without ending; last error: %s", j.Attempts-1, j.Error)}, log)
		return
	}
	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.track(j, true)
	defer r.track(j, false)

	beatDone := make(chan struct{})
	beatStopped := make(chan struct{})
	go func() {
		defer close(beatStopped)
		r.heartbeat(ctx, j, cancel, beatDone, log)
	}()
	log.Info("jobs: start", "checkpoint_bytes", len(j.Checkpoint), "processed", j.processed.Load())
	err := safeRun(jctx, kind.Run, j)
	close(beatDone)
	<-beatStopped

	cause := context.Cause(jctx)
	switch {
	case errors.Is(cause, ErrLeaseLost):
		log.Warn("jobs: lost the lease; another runner has the job", "err", err)
	case err == nil:
		r.end(ctx, j, kind, models.JobEnd{State: models.JobSucceeded, Result: j.result}, log)
	case errors.Is(cause, ErrCancelled):
		r.end(ctx, j, kind, models.JobEnd{State: models.JobCancelled, Result: j.result}, log)
	case ctx.Err() != nil:
		// Shutting down: hand the job back at once for any instance to resume.
		if err := models.RequeueJob(r.db.WithContext(context.WithoutCancel(ctx)), j.TenantID, j.ID, r.cfg.Owner,
			r.cfg.Now(), models.JobEnd{}, r.cfg.Now()); err != nil {
			log.Warn("jobs: hand back at shutdown", "err", err)
		} else {
			log.Info("jobs: handed back at shutdown")
		}
	default:
		var f *Failure
		if errors.As(err, &f) {
			r.end(ctx, j, kind, models.JobEnd{State: models.JobFailed, ErrorKind: f.Kind, ErrorCode: f.Code,
				Error: f.Err.Error(), Result: j.result}, log)
			return
		}
		if j.Attempts >= r.cfg.MaxAttempts {
			r.end(ctx, j, kind, models.JobEnd{State: models.JobFailed, ErrorKind: models.JobErrorInternal,
				Error: err.Error(), Result: j.result}, log)
			return
		}
		wait := r.cfg.Backoff(j.Attempts)
		log.Warn("jobs: failed; will retry", "err", err, "in", wait)
		now := r.cfg.Now()
		if rerr := models.RequeueJob(r.db.WithContext(context.WithoutCancel(ctx)), j.TenantID, j.ID, r.cfg.Owner, now.Add(wait),
			models.JobEnd{ErrorKind: models.JobErrorInternal, Error: err.Error()}, now); rerr != nil {
			log.Warn("jobs: requeue", "err", rerr)
		}
	}
}

// safeRun turns a panic in a job into an error, so one bad job does not take
// the instance down with every other job in it.
func safeRun(ctx context.Context, h Handler, j *Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("jobs: job panicked: %v", p)
		}
	}()
	return h(ctx, j)
}

// end records how a job ended, with the kind's Ended hook in the same transaction.
func (r *Runner) end(ctx context.Context, j *Job, kind Kind, end models.JobEnd, log *slog.Logger) {
	db := r.db.WithContext(context.WithoutCancel(ctx))
	err := models.RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		if err := models.EndJob(tx, j.TenantID, j.ID, r.cfg.Owner, end, r.cfg.Now()); err != nil {
			return err
		}
		if kind.Ended != nil {
			return kind.Ended(tx, j, end)
		}
		return nil
	})
	if err != nil {
		log.Warn("jobs: record the end", "state", end.State, "err", err)
		return
	}
	log.Info("jobs: ended", "state", end.State, "error_kind", end.ErrorKind, "error", end.Error, "processed", j.processed.Load())
}

// heartbeat renews the lease, writes the total and rate, and cancels the job
// when an admin asked to or the lease is gone.
func (r *Runner) heartbeat(ctx context.Context, j *Job, cancel context.CancelCauseFunc, done <-chan struct{}, log *slog.Logger) {
	t := time.NewTicker(r.cfg.Heartbeat)
	defer t.Stop()
	renewed := r.cfg.Now()
	var meter rateMeter
	meter.add(renewed, j.processed.Load())
	db := r.db.WithContext(context.WithoutCancel(ctx))
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		now := r.cfg.Now()
		meter.add(now, j.processed.Load())
		cancelled, err := models.RenewJobLease(db, j.TenantID, j.ID, r.cfg.Owner, now, now.Add(r.cfg.Lease),
			models.JobBeat{Total: j.total.Load(), Rate: meter.rate()})
		switch {
		case errors.Is(err, models.ErrLeaseLost):
			cancel(ErrLeaseLost)
			return
		case err != nil:
			log.Warn("jobs: heartbeat", "err", err)
			if now.Sub(renewed) > r.cfg.Lease-r.cfg.Heartbeat {
				// Another runner may take the job any moment now: stop first.
				cancel(ErrLeaseLost)
				return
			}
		default:
			renewed = now
			if cancelled {
				cancel(ErrCancelled)
			}
		}
	}
}

func (r *Runner) track(j *Job, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.running[j.ID] = j
	} else {
		delete(r.running, j.ID)
	}
}

// Running lists the ids of the jobs this runner works on now.
func (r *Runner) Running() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]int64, 0, len(r.running))
	for id := range r.running {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	return ids
}

// rateMeter is items per second over the last rateWindow of samples.
type rateMeter struct {
	samples []sample
}

type sample struct {
	at   time.Time
	done int64
}

const rateWindow = 20 * time.Second

func (m *rateMeter) add(at time.Time, done int64) {
	m.samples = append(m.samples, sample{at, done})
	cut := 0
	for cut < len(m.samples)-2 && at.Sub(m.samples[cut+1].at) >= rateWindow {
		cut++
	}
	m.samples = m.samples[cut:]
}

func (m *rateMeter) rate() float64 {
	if len(m.samples) < 2 {
		return 0
	}
	first, last := m.samples[0], m.samples[len(m.samples)-1]
	secs := last.at.Sub(first.at).Seconds()
	if secs < 1 || last.done <= first.done {
		return 0
	}
	return float64(last.done-first.done) / secs
}
