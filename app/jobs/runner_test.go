package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/app/jobs"
	"oneid/migrations/dbtest"
	"oneid/models"
)

func makeTenant(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	now := time.Now().UTC()
	slug := fmt.Sprintf("jobs%d", now.UnixNano())
	if err := db.Exec(`INSERT INTO tenants (slug, name, principal_name, status, created_at, updated_at)
VALUES (?, ?, ?, 'active', ?, ?)`, slug, slug, "某某科技有限公司", now, now).Error; err != nil {
		t.Fatal(err)
	}
	var id int64
	db.Raw("SELECT id FROM tenants WHERE slug = ?", slug).Scan(&id)
	return id
}

// fast is a runner that notices everything within a few tens of milliseconds.
func fast(db *gorm.DB, owner string) jobs.Config {
	return jobs.Config{DB: db, Owner: owner, Lease: 600 * time.Millisecond, Heartbeat: 50 * time.Millisecond,
		Poll: 20 * time.Millisecond, Slots: 4, Backoff: func(int) time.Duration { return 10 * time.Millisecond }}
}

func enqueue(t *testing.T, db *gorm.DB, tenant int64, kind, subject string) *models.Job {
	t.Helper()
	j, err := models.EnqueueJob(db, tenant, models.NewJob{Kind: kind, Subject: subject, Actor: "test"}, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func jobState(t *testing.T, db *gorm.DB, tenant, id int64) *models.Job {
	t.Helper()
	j, err := models.FindJob(db, tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// counter is a job that counts to Params in steps of one, each step one
// transaction with its checkpoint, checking that no two runners ever work on
// one job at once.
type counter struct {
	mu      sync.Mutex
	busy    map[int64]bool
	overlap atomic.Int32
	steps   atomic.Int64
	ended   map[int64][]string
	stepGap time.Duration
}

func newCounter() *counter {
	return &counter{busy: map[int64]bool{}, ended: map[int64][]string{}, stepGap: time.Millisecond}
}

func (c *counter) kind(name string) jobs.Kind {
	return jobs.Kind{Name: name, Run: c.run, Ended: func(tx *gorm.DB, j *jobs.Job, end models.JobEnd) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.ended[j.ID] = append(c.ended[j.ID], end.State)
		return nil
	}}
}

func (c *counter) run(ctx context.Context, j *jobs.Job) error {
	c.mu.Lock()
	if c.busy[j.ID] {
		c.overlap.Add(1)
	}
	c.busy[j.ID] = true
	c.mu.Unlock()
	defer func() { c.mu.Lock(); delete(c.busy, j.ID); c.mu.Unlock() }()

	target, _ := strconv.Atoi(j.Params)
	at, _ := strconv.Atoi(j.Checkpoint)
	j.SetTotal(int64(target))
	for at < target {
		if err := ctx.Err(); err != nil {
			return err
		}
		next := at + 1
		err := models.RetryTx(ctx, dbOf(ctx), func(tx *gorm.DB) error {
			return j.Commit(tx, strconv.Itoa(next), 1)
		})
		if err != nil {
			return err
		}
		c.steps.Add(1)
		at = next
		time.Sleep(c.stepGap)
	}
	j.SetResult(`{"counted":` + strconv.Itoa(at) + `}`)
	return nil
}

type dbKey struct{}

func dbOf(ctx context.Context) *gorm.DB { return ctx.Value(dbKey{}).(*gorm.DB) }

func TestRunner(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		tenant := makeTenant(t, db)
		ctx := context.WithValue(t.Context(), dbKey{}, db)

		t.Run("RunsToTheEndOnceWithEndedHook", func(t *testing.T) {
			c := newCounter()
			r := jobs.New(fast(db, "solo"))
			r.Register(c.kind("count"))
			j, _ := models.EnqueueJob(db, tenant, models.NewJob{Kind: "count", Subject: "one", Params: "25"}, time.Now().UTC())
			if err := r.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			got := jobState(t, db, tenant, j.ID)
			if got.State != models.JobSucceeded || got.Processed != 25 || got.Checkpoint != "25" || got.Result != `{"counted":25}` || got.ActiveKey != nil {
				t.Fatalf("after Drain: %+v", got)
			}
			if fmt.Sprint(c.ended[j.ID]) != "[succeeded]" {
				t.Fatalf("Ended ran %v", c.ended[j.ID])
			}
		})

		t.Run("TwoRunnersNeverShareAJob", func(t *testing.T) {
			c := newCounter()
			var ids []int64
			for i := range 6 {
				j, _ := models.EnqueueJob(db, tenant, models.NewJob{Kind: "shared", Subject: strconv.Itoa(i), Params: "30"}, time.Now().UTC())
				ids = append(ids, j.ID)
			}
			rctx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			for _, owner := range []string{"runner-a", "runner-b"} {
				r := jobs.New(fast(db, owner))
				r.Register(c.kind("shared"))
				wg.Add(1)
				go func() { defer wg.Done(); r.Run(rctx) }()
			}
			waitFor(t, "six jobs to succeed", func() bool {
				for _, id := range ids {
					if jobState(t, db, tenant, id).State != models.JobSucceeded {
						return false
					}
				}
				return true
			})
			stop()
			wg.Wait()
			if n := c.overlap.Load(); n != 0 {
				t.Fatalf("%d times two runners worked on one job", n)
			}
			if n := c.steps.Load(); n != 6*30 {
				t.Fatalf("%d steps committed, want %d (none lost, none repeated)", n, 6*30)
			}
			for _, id := range ids {
				if fmt.Sprint(c.ended[id]) != "[succeeded]" {
					t.Errorf("job %d ended %v", id, c.ended[id])
				}
			}
		})

		t.Run("CancelStopsARunningJob", func(t *testing.T) {
			c := newCounter()
			c.stepGap = 20 * time.Millisecond
			r := jobs.New(fast(db, "canceller"))
			r.Register(c.kind("long"))
			j, _ := models.EnqueueJob(db, tenant, models.NewJob{Kind: "long", Subject: "x", Params: "100000"}, time.Now().UTC())
			rctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { r.Run(rctx); close(done) }()
			waitFor(t, "progress", func() bool { return jobState(t, db, tenant, j.ID).Processed >= 3 })
			if immediate, err := models.RequestJobCancel(db, tenant, j.ID, "boss@example.com", time.Now().UTC()); err != nil || immediate {
				t.Fatalf("cancel: %v %v", immediate, err)
			}
			waitFor(t, "the cancellation", func() bool { return jobState(t, db, tenant, j.ID).State == models.JobCancelled })
			stop()
			<-done
			got := jobState(t, db, tenant, j.ID)
			if got.Processed >= 100000 || got.ActiveKey != nil || got.CancelledBy != "boss@example.com" {
				t.Fatalf("cancelled job: %+v", got)
			}
			if fmt.Sprint(c.ended[j.ID]) != "[cancelled]" {
				t.Fatalf("Ended ran %v", c.ended[j.ID])
			}
		})

		t.Run("FailureIsNotRetried", func(t *testing.T) {
			var runs atomic.Int32
			r := jobs.New(fast(db, "failing"))
			r.Register(jobs.Kind{Name: "quota", Run: func(ctx context.Context, j *jobs.Job) error {
				runs.Add(1)
				return jobs.Fail(models.JobErrorQuota, 45009, errors.New("daily quota"))
			}})
			j := enqueue(t, db, tenant, "quota", "x")
			if err := r.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			got := jobState(t, db, tenant, j.ID)
			if runs.Load() != 1 || got.State != models.JobFailed || got.ErrorKind != models.JobErrorQuota || got.ErrorCode != 45009 {
				t.Fatalf("after a quota failure: %d runs, %+v", runs.Load(), got)
			}
		})

		t.Run("TransientErrorsAreRetriedThenGiveUp", func(t *testing.T) {
			var runs atomic.Int32
			cfg := fast(db, "flaky")
			cfg.MaxAttempts = 3
			r := jobs.New(cfg)
			r.Register(jobs.Kind{Name: "flaky", Run: func(ctx context.Context, j *jobs.Job) error {
				if runs.Add(1) == 2 {
					panic("boom")
				}
				return errors.New("WeChat is busy")
			}})
			j := enqueue(t, db, tenant, "flaky", "x")
			rctx, stop := context.WithCancel(ctx)
			defer stop()
			go r.Run(rctx)
			waitFor(t, "the job to fail", func() bool { return jobState(t, db, tenant, j.ID).State == models.JobFailed })
			got := jobState(t, db, tenant, j.ID)
			if runs.Load() != 3 || got.ErrorKind != models.JobErrorInternal || got.Attempts != 3 {
				t.Fatalf("%d runs; %+v", runs.Load(), got)
			}
		})

		t.Run("ShutdownHandsBackAndAnotherRunnerResumes", func(t *testing.T) {
			c := newCounter()
			c.stepGap = 5 * time.Millisecond
			first := jobs.New(fast(db, "first"))
			first.Register(c.kind("resume"))
			j, _ := models.EnqueueJob(db, tenant, models.NewJob{Kind: "resume", Subject: "x", Params: "60"}, time.Now().UTC())
			rctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { first.Run(rctx); close(done) }()
			waitFor(t, "progress", func() bool { return jobState(t, db, tenant, j.ID).Processed >= 10 })
			stop()
			<-done
			mid := jobState(t, db, tenant, j.ID)
			if mid.State != models.JobQueued || mid.LeaseOwner != "" || mid.Processed >= 60 {
				t.Fatalf("handed back: %+v", mid)
			}
			second := jobs.New(fast(db, "second"))
			second.Register(c.kind("resume"))
			if err := second.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			got := jobState(t, db, tenant, j.ID)
			if got.State != models.JobSucceeded || got.Processed != 60 || c.steps.Load() != 60 {
				t.Fatalf("resumed: %+v, %d steps", got, c.steps.Load())
			}
		})

		t.Run("ARunnerThatLostItsLeaseStops", func(t *testing.T) {
			started := make(chan struct{})
			var commitErr atomic.Value
			r := jobs.New(fast(db, "stalled"))
			r.Register(jobs.Kind{Name: "stall", Run: func(ctx context.Context, j *jobs.Job) error {
				close(started)
				<-ctx.Done()
				err := j.Commit(db, "late", 1)
				commitErr.Store(fmt.Sprint(err))
				return ctx.Err()
			}})
			j := enqueue(t, db, tenant, "stall", "x")
			rctx, stop := context.WithCancel(ctx)
			defer stop()
			go r.Run(rctx)
			<-started
			// Another instance took it over (this one stalled past its lease).
			if err := db.Exec("UPDATE jobs SET lease_owner = 'thief' WHERE tenant_id = ? AND id = ?", tenant, j.ID).Error; err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the runner to let go", func() bool { return len(r.Running()) == 0 })
			got := jobState(t, db, tenant, j.ID)
			if got.State != models.JobRunning || got.LeaseOwner != "thief" || got.Checkpoint == "late" {
				t.Fatalf("after losing the lease: %+v", got)
			}
			if s, _ := commitErr.Load().(string); s != models.ErrLeaseLost.Error() {
				t.Fatalf("commit without the lease: %q", s)
			}
		})
	})
}
