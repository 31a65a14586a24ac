package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"oneid/app/binding"
	"oneid/models"
)

// Starting, cancelling and scheduling syncs: what the portal's buttons and
// the scheduler call. Each checks the app is the tenant's and writes its
// audit line in the same transaction as the change.

// SyncActor is who starts, cancels or schedules a sync, as the audit log
// records it: the same who as binding's.
type SyncActor = binding.Actor

// scheduleActor is the actor of scheduled syncs.
var scheduleActor = SyncActor{Email: "schedule"}

var (
	// ErrNotSyncable refuses a sync of an app that has no followers to list:
	// a mini-program, or an app unbound.
	ErrNotSyncable = errors.New("ingest: only bound official accounts have followers to sync")
	// ErrNoLiveSync answers a cancellation when no sync of the app is live.
	ErrNoLiveSync = errors.New("ingest: no sync of this app is queued or running")
)

// resumeWithin is how long a failed sync stays worth resuming from its
// checkpoint (a quota resets the next day); older ones start over.
const resumeWithin = 72 * time.Hour

// StartSync queues a full follower sync of the tenant's app. A sync that
// failed lately (WeChat's quota, say) is resumed from its checkpoint instead
// of starting over. When a sync of the app is live already, it is returned
// with models.ErrJobActive and nothing is written.
func StartSync(db *gorm.DB, tenantID, appID int64, who SyncActor, now time.Time) (*models.Job, error) {
	var job *models.Job
	err := models.RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		app, err := models.FindApp(tx, tenantID, appID)
		if err != nil {
			return err
		}
		if syncable(app) != nil {
			return ErrNotSyncable
		}
		subject := SyncSubject(app.ID)
		detail := ""
		latest, err := models.LatestJobs(tx, tenantID, SyncKind, []string{subject})
		if err != nil {
			return err
		}
		if last, ok := latest[subject]; ok && resumable(&last, now) {
			if err := models.RetryJob(tx, tenantID, last.ID, who.Email, now); err != nil {
				return err
			}
			if job, err = models.FindJob(tx, tenantID, last.ID); err != nil {
				return err
			}
			detail = fmt.Sprintf("job %d resumed after %d of %d", job.ID, job.Processed, job.Total)
		} else {
			job, err = models.EnqueueJob(tx, tenantID, models.NewJob{Kind: SyncKind, Subject: subject,
				CreatedBy: who.UserID, Actor: who.Email}, now)
			if err != nil {
				return err
			}
			detail = fmt.Sprintf("job %d", job.ID)
		}
		return models.RecordAudit(tx, tenantID, who.Event(models.AuditSyncStarted, app.AppID, detail, now))
	})
	return job, err
}

// resumable: a failed sync that got somewhere, not long ago.
func resumable(j *models.Job, now time.Time) bool {
	return j.State == models.JobFailed && j.Checkpoint != "" && j.FinishedAt != nil && now.Sub(*j.FinishedAt) < resumeWithin
}

// CancelSync stops the app's live sync: a queued one at once, a running one
// at its runner's next heartbeat (which then records the cancellation).
func CancelSync(db *gorm.DB, tenantID, appID int64, who SyncActor, now time.Time) error {
	return models.RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		app, err := models.FindApp(tx, tenantID, appID)
		if err != nil {
			return err
		}
		live, err := models.LiveJob(tx, tenantID, SyncKind, SyncSubject(app.ID))
		if errors.Is(err, models.ErrNotFound) {
			return ErrNoLiveSync
		}
		if err != nil {
			return err
		}
		immediate, err := models.RequestJobCancel(tx, tenantID, live.ID, who.Email, now)
		if errors.Is(err, models.ErrJobNotLive) {
			return ErrNoLiveSync
		}
		if err != nil || !immediate {
			return err
		}
		return models.RecordAudit(tx, tenantID, who.Event(models.AuditSyncCancelled, app.AppID,
			fmt.Sprintf("job %d: before it started", live.ID), now))
	})
}

// SetSyncSchedule turns the app's scheduled sync on (every everyHours) or off.
func SetSyncSchedule(db *gorm.DB, tenantID, appID int64, enabled bool, everyHours int, who SyncActor, now time.Time) error {
	if !models.ValidSyncInterval(everyHours) {
		return fmt.Errorf("ingest: %w: every %d hours", ErrBadInterval, everyHours)
	}
	return models.RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		app, err := models.FindApp(tx, tenantID, appID)
		if err != nil {
			return err
		}
		if enabled && syncable(app) != nil {
			return ErrNotSyncable
		}
		if err := models.SetSyncSchedule(tx, tenantID, app.ID, enabled, everyHours, who.UserID, now); err != nil {
			return err
		}
		detail := "off"
		if enabled {
			detail = fmt.Sprintf("every %d h", everyHours)
		}
		return models.RecordAudit(tx, tenantID, who.Event(models.AuditSyncScheduled, app.AppID, detail, now))
	})
}

// ErrBadInterval refuses a schedule interval that is not offered.
var ErrBadInterval = errors.New("not an offered interval")

// RunSchedules enqueues the syncs whose schedule is due, every poll, until
// ctx ends. Instances polling at once each move a due schedule forward by
// compare-and-set, so only one of them enqueues it; a sync still live from
// the last time is left to finish.
func (s *Syncer) RunSchedules(ctx context.Context, poll time.Duration, wake func()) error {
	if poll <= 0 {
		poll = time.Minute
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if n, err := s.EnqueueDueSyncs(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("ingest: scheduled syncs", "err", err)
		} else if n > 0 && wake != nil {
			wake()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// EnqueueDueSyncs enqueues every due scheduled sync once and returns how many.
func (s *Syncer) EnqueueDueSyncs(ctx context.Context) (int, error) {
	db := s.db.WithContext(ctx)
	now := s.now()
	due, err := models.DueSyncSchedules(db, now, 100)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sc := range due {
		ok, err := models.AdvanceSyncSchedule(db, sc, now.Add(time.Duration(sc.EveryHours)*time.Hour))
		if err != nil {
			return n, err
		}
		if !ok {
			continue // another instance took it
		}
		_, err = StartSync(db, sc.TenantID, sc.AppID, scheduleActor, now)
		switch {
		case err == nil:
			n++
		case errors.Is(err, models.ErrJobActive):
		case errors.Is(err, ErrNotSyncable), errors.Is(err, models.ErrNotFound):
			s.log.Info("ingest: scheduled sync of an app that cannot be synced any more", "tenant", sc.TenantID, "app", sc.AppID)
		default:
			return n, err
		}
	}
	return n, nil
}
