package models

import (
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Sign-in throttling. Failures count per account (the email typed, whether or
// not an account has it, so the answer never tells) and per client address.
// Past the limit within the window, the key is locked for a while.
const (
	accountFailureLimit = 5
	addressFailureLimit = 30
	throttleWindow      = 15 * time.Minute
	throttleLock        = 15 * time.Minute
)

// loginThrottle is one counter.
type loginThrottle struct {
	ThrottleKey string `gorm:"primaryKey;column:throttle_key"`
	Failures    int
	WindowStart time.Time
	LockedUntil *time.Time
}

func (loginThrottle) TableName() string { return "login_throttles" }

// The key of an account is a hash of the email, so the table keeps no list of
// the addresses people (or attackers) typed.
func accountThrottleKey(email string) string { return "account:" + hashSecret(NormalizeEmail(email)) }
func addressThrottleKey(ip string) string    { return "ip:" + clipString(ip, 64) }

// SignInLocked reports whether sign-ins for this email or from this address are
// locked at now.
func SignInLocked(db *gorm.DB, email, ip string, now time.Time) (bool, error) {
	var n int64
	err := db.Model(&loginThrottle{}).
		Where("throttle_key IN ? AND locked_until > ?", []string{accountThrottleKey(email), addressThrottleKey(ip)}, now).
		Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("models: read sign-in throttle: %w", err)
	}
	return n > 0, nil
}

// SignInFailed counts a failed sign-in against the email and the address.
func SignInFailed(db *gorm.DB, email, ip string, now time.Time) error {
	if err := countFailure(db, accountThrottleKey(email), accountFailureLimit, now); err != nil {
		return err
	}
	return countFailure(db, addressThrottleKey(ip), addressFailureLimit, now)
}

// SignInSucceeded forgets the failures of the account (not of the address).
func SignInSucceeded(db *gorm.DB, email string) error {
	if err := db.Where("throttle_key = ?", accountThrottleKey(email)).Delete(&loginThrottle{}).Error; err != nil {
		return fmt.Errorf("models: clear sign-in throttle: %w", err)
	}
	return nil
}

func countFailure(db *gorm.DB, key string, limit int, now time.Time) error {
	err := db.Transaction(func(tx *gorm.DB) error {
		// Make sure the row exists, then lock it: concurrent failures each count.
		fresh := loginThrottle{ThrottleKey: key, WindowStart: now}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&fresh).Error; err != nil {
			return err
		}
		var t loginThrottle
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("throttle_key = ?", key).Take(&t).Error; err != nil {
			return err
		}
		if now.Sub(t.WindowStart) > throttleWindow {
			t.Failures, t.WindowStart = 0, now
		}
		t.Failures++
		if t.Failures >= limit {
			until := now.Add(throttleLock)
			t.LockedUntil = &until
			// The next window starts when the lock ends.
			t.Failures, t.WindowStart = 0, until
		}
		return tx.Model(&loginThrottle{}).Where("throttle_key = ?", key).
			Updates(map[string]any{"failures": t.Failures, "window_start": t.WindowStart, "locked_until": t.LockedUntil}).Error
	})
	if err != nil {
		return fmt.Errorf("models: count sign-in failure: %w", err)
	}
	return nil
}

// PurgeSignInThrottles drops counters that no longer matter at now.
func PurgeSignInThrottles(db *gorm.DB, now time.Time) error {
	err := db.Where("window_start < ? AND (locked_until IS NULL OR locked_until < ?)", now.Add(-throttleWindow), now).
		Delete(&loginThrottle{}).Error
	if err != nil {
		return fmt.Errorf("models: purge sign-in throttles: %w", err)
	}
	return nil
}
