package models_test

import (
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func TestJobs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		tenant, other := makeTenant(t, db), makeTenant(t, db)
		now := time.Now().UTC()
		lease := now.Add(30 * time.Second)

		t.Run("OneLiveJobPerSubject", func(t *testing.T) {
			j, err := models.EnqueueJob(db, tenant, models.NewJob{Kind: "k1", Subject: "s", Actor: "a@example.com"}, now)
			if err != nil {
				t.Fatal(err)
			}
			again, err := models.EnqueueJob(db, tenant, models.NewJob{Kind: "k1", Subject: "s"}, now)
			if !errors.Is(err, models.ErrJobActive) || again == nil || again.ID != j.ID {
				t.Fatalf("second enqueue: %v, %+v; want ErrJobActive with job %d", err, again, j.ID)
			}
			// Another kind, another subject, another tenant: each its own job.
			for _, c := range []struct {
				tenant        int64
				kind, subject string
			}{{tenant, "k2", "s"}, {tenant, "k1", "s2"}, {other, "k1", "s"}} {
				if _, err := models.EnqueueJob(db, c.tenant, models.NewJob{Kind: c.kind, Subject: c.subject}, now); err != nil {
					t.Errorf("%+v: %v", c, err)
				}
			}
			// Once it ended, the subject is free.
			claimed, ok, err := models.ClaimJob(db, tenant, j.ID, "r1", now, lease)
			if err != nil || !ok {
				t.Fatalf("claim: %v %v", ok, err)
			}
			if err := models.EndJob(db, tenant, claimed.ID, "r1", models.JobEnd{State: models.JobSucceeded, Result: "{}"}, now); err != nil {
				t.Fatal(err)
			}
			if _, err := models.EnqueueJob(db, tenant, models.NewJob{Kind: "k1", Subject: "s"}, now); err != nil {
				t.Fatalf("enqueue after the end: %v", err)
			}
		})

		t.Run("OneRunnerPerLease", func(t *testing.T) {
			j, err := models.EnqueueJob(db, tenant, models.NewJob{Kind: "lease", Subject: "s"}, now)
			if err != nil {
				t.Fatal(err)
			}
			due, err := models.DueJobs(db, []string{"lease"}, now, 10)
			if err != nil || len(due) != 1 || due[0].ID != j.ID {
				t.Fatalf("due: %v %+v", err, due)
			}
			if _, ok, _ := models.ClaimJob(db, tenant, j.ID, "r1", now, lease); !ok {
				t.Fatal("r1 could not claim a queued job")
			}
			if _, ok, _ := models.ClaimJob(db, tenant, j.ID, "r2", now, lease); ok {
				t.Fatal("r2 claimed a job r1 holds")
			}
			if due, _ := models.DueJobs(db, []string{"lease"}, now, 10); len(due) != 0 {
				t.Fatalf("a leased job is due: %+v", due)
			}
			// The checkpoint moves only with the lease.
			if err := models.SaveJobCheckpoint(db, tenant, j.ID, "r1", "page-1", 10, now); err != nil {
				t.Fatal(err)
			}
			if err := models.SaveJobCheckpoint(db, tenant, j.ID, "r2", "evil", 99, now); !errors.Is(err, models.ErrLeaseLost) {
				t.Fatalf("r2's checkpoint: %v, want ErrLeaseLost", err)
			}
			if err := models.SaveJobCheckpoint(db, other, j.ID, "r1", "evil", 99, now); !errors.Is(err, models.ErrLeaseLost) {
				t.Fatalf("another tenant's checkpoint: %v, want ErrLeaseLost", err)
			}
			// r1 dies: once the lease runs out, r2 takes over from the checkpoint.
			later := lease.Add(time.Second)
			if due, _ := models.DueJobs(db, []string{"lease"}, later, 10); len(due) != 1 {
				t.Fatalf("a job with an expired lease is not due: %+v", due)
			}
			got, ok, err := models.ClaimJob(db, tenant, j.ID, "r2", later, later.Add(30*time.Second))
			if err != nil || !ok {
				t.Fatalf("r2 claim after expiry: %v %v", ok, err)
			}
			if got.Checkpoint != "page-1" || got.Processed != 10 || got.Attempts != 2 || got.StartedAt == nil || !got.StartedAt.Equal(now.Truncate(time.Microsecond)) {
				t.Fatalf("resumed job: checkpoint %q processed %d attempts %d started %v", got.Checkpoint, got.Processed, got.Attempts, got.StartedAt)
			}
			// r1 wakes up: everything it writes is refused.
			if _, err := models.RenewJobLease(db, tenant, j.ID, "r1", later, later.Add(time.Minute), models.JobBeat{}); !errors.Is(err, models.ErrLeaseLost) {
				t.Fatalf("r1 renew: %v", err)
			}
			err = models.RetryTx(t.Context(), db, func(tx *gorm.DB) error {
				if err := tx.Exec("UPDATE tenants SET name = 'stolen' WHERE id = ?", tenant).Error; err != nil {
					return err
				}
				return models.SaveJobCheckpoint(tx, tenant, j.ID, "r1", "page-9", 90, later)
			})
			if !errors.Is(err, models.ErrLeaseLost) {
				t.Fatalf("r1's transaction: %v", err)
			}
			var name string
			db.Raw("SELECT name FROM tenants WHERE id = ?", tenant).Scan(&name)
			if name == "stolen" {
				t.Fatal("the work of a runner without the lease was committed")
			}
			if err := models.EndJob(db, tenant, j.ID, "r1", models.JobEnd{State: models.JobSucceeded}, later); !errors.Is(err, models.ErrLeaseLost) {
				t.Fatalf("r1 end: %v", err)
			}
			cancel, err := models.RenewJobLease(db, tenant, j.ID, "r2", later, later.Add(time.Minute), models.JobBeat{Total: 100, Rate: 12.5})
			if err != nil || cancel {
				t.Fatalf("r2 renew: %v %v", cancel, err)
			}
			row, _ := models.FindJob(db, tenant, j.ID)
			if row.Total != 100 || row.Rate != 12.5 || row.LeaseOwner != "r2" {
				t.Fatalf("after the heartbeat: %+v", row)
			}
			if d, ok := row.Remaining(); !ok || d != 7*time.Second+200*time.Millisecond {
				t.Fatalf("remaining %v %v, want 7.2s (90 left at 12.5/s)", d, ok)
			}
		})

		t.Run("Cancel", func(t *testing.T) {
			queued, _ := models.EnqueueJob(db, tenant, models.NewJob{Kind: "cancel", Subject: "q"}, now)
			immediate, err := models.RequestJobCancel(db, tenant, queued.ID, "admin@example.com", now)
			if err != nil || !immediate {
				t.Fatalf("cancel queued: %v %v", immediate, err)
			}
			row, _ := models.FindJob(db, tenant, queued.ID)
			if row.State != models.JobCancelled || row.ActiveKey != nil || row.CancelledBy != "admin@example.com" {
				t.Fatalf("cancelled queued job: %+v", row)
			}
			if _, err := models.RequestJobCancel(db, tenant, queued.ID, "x", now); !errors.Is(err, models.ErrJobNotLive) {
				t.Fatalf("cancel twice: %v", err)
			}
			if _, err := models.RequestJobCancel(db, other, queued.ID, "x", now); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("cancel another tenant's job: %v", err)
			}

			running, _ := models.EnqueueJob(db, tenant, models.NewJob{Kind: "cancel", Subject: "r"}, now)
			models.ClaimJob(db, tenant, running.ID, "r1", now, lease)
			if immediate, err := models.RequestJobCancel(db, tenant, running.ID, "admin@example.com", now); err != nil || immediate {
				t.Fatalf("cancel running: %v %v", immediate, err)
			}
			if cancel, err := models.RenewJobLease(db, tenant, running.ID, "r1", now, lease, models.JobBeat{}); err != nil || !cancel {
				t.Fatalf("the runner does not hear of the cancellation: %v %v", cancel, err)
			}
			if err := models.EndJob(db, tenant, running.ID, "r1", models.JobEnd{State: models.JobCancelled}, now); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("RetryFailedFromCheckpoint", func(t *testing.T) {
			j, _ := models.EnqueueJob(db, tenant, models.NewJob{Kind: "retry", Subject: "s"}, now)
			models.ClaimJob(db, tenant, j.ID, "r1", now, lease)
			models.SaveJobCheckpoint(db, tenant, j.ID, "r1", "half", 50, now)
			models.EndJob(db, tenant, j.ID, "r1", models.JobEnd{State: models.JobFailed, ErrorKind: models.JobErrorQuota, ErrorCode: 45009, Error: "quota"}, now)
			blocker, _ := models.EnqueueJob(db, tenant, models.NewJob{Kind: "retry", Subject: "s"}, now)
			if err := models.RetryJob(db, tenant, j.ID, "a", now); !errors.Is(err, models.ErrJobActive) {
				t.Fatalf("retry beside a live job: %v", err)
			}
			models.RequestJobCancel(db, tenant, blocker.ID, "a", now)
			if err := models.RetryJob(db, other, j.ID, "a", now); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("retry another tenant's job: %v", err)
			}
			if err := models.RetryJob(db, tenant, j.ID, "a", now); err != nil {
				t.Fatal(err)
			}
			got, ok, err := models.ClaimJob(db, tenant, j.ID, "r2", now, lease)
			if err != nil || !ok || got.Checkpoint != "half" || got.Processed != 50 || got.ErrorKind != "" {
				t.Fatalf("retried job: %v %v %+v", ok, err, got)
			}
		})

		t.Run("LatestPerSubject", func(t *testing.T) {
			var last int64
			for i := 0; i < 3; i++ {
				j, _ := models.EnqueueJob(db, tenant, models.NewJob{Kind: "latest", Subject: "a"}, now)
				models.RequestJobCancel(db, tenant, j.ID, "x", now)
				last = j.ID
			}
			models.EnqueueJob(db, other, models.NewJob{Kind: "latest", Subject: "a"}, now)
			got, err := models.LatestJobs(db, tenant, "latest", []string{"a", "b"})
			if err != nil || len(got) != 1 || got["a"].ID != last {
				t.Fatalf("latest: %v %+v, want job %d", err, got, last)
			}
		})
	})
}
