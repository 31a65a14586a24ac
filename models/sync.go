package models

import (
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Audit actions of follower syncs (PRODUCT.md rule 7).
const (
	AuditSyncStarted   = "sync_started"
	AuditSyncFinished  = "sync_finished"
	AuditSyncFailed    = "sync_failed"
	AuditSyncCancelled = "sync_cancelled"
	AuditSyncScheduled = "sync_schedule_changed"
)

// RecordAppSync stores what a finished full sync found: the app's follower
// count and when it ended.
func RecordAppSync(db *gorm.DB, tenantID, appID, followers int64, at time.Time) error {
	at = dbTime(at)
	res := db.Model(&App{}).Scopes(ForTenant(tenantID)).Where("id = ?", appID).
		Updates(map[string]any{"follower_count": followers, "last_sync_at": at, "updated_at": at})
	if res.Error != nil {
		return fmt.Errorf("models: record sync of app %d: %w", appID, res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// SyncSchedule is an app's automatic follower sync: every EveryHours hours
// while Enabled, next at NextRunAt.
type SyncSchedule struct {
	ID         int64 `gorm:"primaryKey"`
	TenantID   int64
	AppID      int64
	Enabled    bool
	EveryHours int
	NextRunAt  *time.Time
	UpdatedBy  int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Schedule intervals an admin may choose, in hours.
var SyncIntervals = []int{6, 12, 24, 72, 168}

// DefaultSyncInterval is the interval offered first.
const DefaultSyncInterval = 24

// ValidSyncInterval reports whether h is one of SyncIntervals.
func ValidSyncInterval(h int) bool {
	for _, v := range SyncIntervals {
		if v == h {
			return true
		}
	}
	return false
}

// FindSyncSchedule returns the app's schedule; an app that never had one gets
// a disabled schedule at the default interval (not stored).
func FindSyncSchedule(db *gorm.DB, tenantID, appID int64) (SyncSchedule, error) {
	var rows []SyncSchedule
	if err := db.Scopes(ForTenant(tenantID)).Where("app_id = ?", appID).Limit(1).Find(&rows).Error; err != nil {
		return SyncSchedule{}, fmt.Errorf("models: sync schedule of app %d: %w", appID, err)
	}
	if len(rows) == 0 {
		return SyncSchedule{TenantID: tenantID, AppID: appID, EveryHours: DefaultSyncInterval}, nil
	}
	return rows[0], nil
}

// SetSyncSchedule turns an app's schedule on (first run everyHours from now)
// or off. The caller has checked that the app is the tenant's.
func SetSyncSchedule(db *gorm.DB, tenantID, appID int64, enabled bool, everyHours int, by int64, now time.Time) error {
	if !ValidSyncInterval(everyHours) {
		return fmt.Errorf("models: sync interval %d h is not one of %v", everyHours, SyncIntervals)
	}
	now = dbTime(now)
	var next *time.Time
	if enabled {
		n := now.Add(time.Duration(everyHours) * time.Hour)
		next = &n
	}
	row := SyncSchedule{TenantID: tenantID, AppID: appID, Enabled: enabled, EveryHours: everyHours, NextRunAt: next,
		UpdatedBy: by, CreatedAt: now, UpdatedAt: now}
	err := db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "app_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"enabled", "every_hours", "next_run_at", "updated_by", "updated_at"})}).
		Create(&row).Error
	if err != nil {
		return fmt.Errorf("models: set sync schedule of app %d: %w", appID, err)
	}
	return nil
}

// DueSyncSchedules lists enabled schedules whose time has come, across
// tenants (the scheduler's poll).
func DueSyncSchedules(db *gorm.DB, now time.Time, limit int) ([]SyncSchedule, error) {
	var rows []SyncSchedule
	err := CrossTenant(db, "the sync scheduler polls every tenant's due schedules").
		Where("enabled = ? AND next_run_at <= ?", true, dbTime(now)).Order("next_run_at, id").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: due sync schedules: %w", err)
	}
	return rows, nil
}

// AdvanceSyncSchedule moves a due schedule's next run from was to next, and
// reports whether this caller did it: of several instances polling at once,
// only the one that moves it enqueues the sync.
func AdvanceSyncSchedule(db *gorm.DB, s SyncSchedule, next time.Time) (bool, error) {
	if s.NextRunAt == nil {
		return false, nil
	}
	res := db.Model(&SyncSchedule{}).Scopes(ForTenant(s.TenantID)).
		Where("id = ? AND enabled = ? AND next_run_at = ?", s.ID, true, dbTime(*s.NextRunAt)).
		Updates(map[string]any{"next_run_at": dbTime(next), "updated_at": dbTime(time.Now())})
	if res.Error != nil {
		return false, fmt.Errorf("models: advance sync schedule %d: %w", s.ID, res.Error)
	}
	return res.RowsAffected == 1, nil
}
