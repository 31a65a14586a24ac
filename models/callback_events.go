package models

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"strings"
	"time"

	"gorm.io/gorm"
)

// States of a stored callback event.
const (
	CallbackPending   = 0 // stored, not resolved yet
	CallbackProcessed = 1 // resolved into identities
	CallbackFailed    = 2 // gave up after CallbackMaxAttempts
)

// CallbackMaxAttempts bounds how often the worker tries one event before it
// marks it failed (the error is kept on the row).
const CallbackMaxAttempts = 5

// CallbackEvent is one official-account push in the inbox: stored when it
// arrives, resolved later by the worker. (AppID, DedupKey) is unique, so
// WeChat's retries of a push are stored once.
type CallbackEvent struct {
	ID          int64 `gorm:"primaryKey"`
	TenantID    int64
	AppID       int64
	DedupKey    string
	OpenID      string `gorm:"column:openid"`
	Event       string
	EventKey    string
	CreateTime  int64
	State       int
	Claim       string
	LeaseUntil  *time.Time
	Attempts    int
	Error       string
	ReceivedAt  time.Time
	ProcessedAt *time.Time
}

// CallbackDedupKey names a push across WeChat's retries: FromUserName,
// CreateTime and the event (a follow and an unfollow in the same second are
// two pushes).
func CallbackDedupKey(openID string, createTime int64, event string) string {
	return clipString(fmt.Sprintf("%s|%d|%s", openID, createTime, event), 128)
}

// FindAppByCallbackKey finds the bound app whose callback URL ends in key, in
// whichever tenant holds it: WeChat's push names no tenant. Unbound apps and
// unknown keys are ErrNotFound.
func FindAppByCallbackKey(db *gorm.DB, key string) (*App, error) {
	if key == "" || len(key) > 64 {
		return nil, ErrNotFound
	}
	var a App
	err := CrossTenant(db, "a WeChat push names its app by the callback key; the key's app names the tenant").
		Where("callback_key = ? AND bound_appid IS NOT NULL", key).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) && looksLikeAppID(key) {
		// A third-party platform's message URL is one for all its apps, with
		// WeChat's $APPID$ placeholder in the path: an authorized app is also
		// found by its appid (bound to one tenant at most). Its pushes are
		// signed with the platform's token, so knowing the appid is no help.
		err = CrossTenant(db, "a third-party platform's push names its app by appid; the app names the tenant").
			Where("bound_appid = ? AND binding_mode = ?", key, ModeAuthorized).Take(&a).Error
	}
	if err != nil {
		return nil, notFound(err)
	}
	return &a, nil
}

// looksLikeAppID: "wx" and 16 lowercase hex digits.
func looksLikeAppID(s string) bool {
	if len(s) != 18 || !strings.HasPrefix(s, "wx") {
		return false
	}
	return strings.Trim(s[2:], "0123456789abcdef") == ""
}

// StoreCallbackEvents inserts pushes into the inbox in one statement. A push
// already stored (a retry) is skipped by the unique key; the call still
// succeeds. Rows may belong to several tenants: each must carry its own
// tenant_id. A deadlock with the worker's updates is retried.
//
// On MySQL the statement is INSERT IGNORE. It was INSERT … ON DUPLICATE KEY
// UPDATE id = id (gorm's OnConflict{DoNothing}), and under concurrent
// multi-row inserts MariaDB 10.11 answered it with "0 rows affected" for rows
// whose key existed nowhere, and never stored them (about 0.3 % of pushes in
// the load test; callback_load_test.go). The cause is the assignment to the
// AUTO_INCREMENT column, not ODKU as such: after a duplicate whose id lies
// beyond the ids the statement reserved (a row another writer inserted
// meanwhile), MariaDB moves the statement's next id past that row's, the next
// new row of the batch gets an id the other writer already used, and ODKU
// turns that duplicate on PRIMARY into a no-op update of an unrelated row. An
// ODKU that leaves id alone, or a one-row statement, loses nothing
// (upsert_anomaly_test.go reproduces all three). The values are clipped to
// their columns first, so IGNORE has nothing but the duplicate to pass over.
func StoreCallbackEvents(db *gorm.DB, events []CallbackEvent) error {
	if len(events) == 0 {
		return nil
	}
	const cols = "(tenant_id, app_id, dedup_key, openid, event, event_key, create_time, state, claim, attempts, error, received_at)"
	var sql strings.Builder
	if Dialect(db) == DialectMySQL {
		sql.WriteString("INSERT IGNORE INTO callback_events " + cols + " VALUES ")
	} else {
		sql.WriteString("INSERT INTO callback_events " + cols + " VALUES ")
	}
	args := make([]any, 0, len(events)*12)
	for i := range events {
		e := &events[i]
		if e.TenantID <= 0 || e.AppID <= 0 {
			return fmt.Errorf("%w: callback event without tenant or app", ErrUnscopedQuery)
		}
		if i > 0 {
			sql.WriteByte(',')
		}
		sql.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?)")
		args = append(args, e.TenantID, e.AppID, clipString(e.DedupKey, 128), clipString(e.OpenID, MaxWeChatIDLen),
			clipString(e.Event, 32), clipString(e.EventKey, 128), e.CreateTime, CallbackPending, "", 0, "", dbTime(e.ReceivedAt))
	}
	if Dialect(db) != DialectMySQL {
		sql.WriteString(" ON CONFLICT (app_id, dedup_key) DO NOTHING")
	}
	q := sql.String()
	var err error
	for attempt := 0; attempt < 6; attempt++ {
		if attempt > 0 {
			// A deadlock with the worker's updates: try again at once, then
			// with a little jitter, well inside the acknowledgement budget.
			time.Sleep(time.Duration(mathrand.IntN(attempt*5)+1) * time.Millisecond)
		}
		if err = db.Exec(q, args...).Error; err == nil || !IsRetryable(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("models: store %d callback events: %w", len(events), err)
	}
	return nil
}

// ClaimCallbackEvents leases up to limit pending events to the caller for
// lease, oldest first, and returns them. Events leased by another worker are
// skipped until their lease ends (a worker that died leaves them to the next).
// Each claim counts as an attempt.
func ClaimCallbackEvents(db *gorm.DB, now time.Time, lease time.Duration, limit int) ([]CallbackEvent, error) {
	now = dbTime(now)
	const reason = "the callback worker serves every tenant's inbox"
	var ids []int64
	err := CrossTenant(db, reason).Model(&CallbackEvent{}).
		Where("state = ? AND (lease_until IS NULL OR lease_until < ?)", CallbackPending, now).
		Order("id").Limit(limit).Pluck("id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("models: find pending callback events: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	claim := newClaim()
	until := now.Add(lease)
	// READ COMMITTED, retried on deadlock: the update must not hold gap locks
	// that the inbox's inserts then wait for.
	err = RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		return CrossTenant(tx, reason).Model(&CallbackEvent{}).
			Where("id IN ? AND state = ? AND (lease_until IS NULL OR lease_until < ?)", ids, CallbackPending, now).
			Updates(map[string]any{"claim": claim, "lease_until": until, "attempts": gorm.Expr("attempts + 1")}).Error
	}, readCommitted(db)...)
	if err != nil {
		return nil, fmt.Errorf("models: claim callback events: %w", err)
	}
	var out []CallbackEvent
	err = CrossTenant(db, reason).Where("id IN ? AND claim = ?", ids, claim).Order("id").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: read claimed callback events: %w", err)
	}
	return out, nil
}

func newClaim() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// FinishCallbackEvents marks a tenant's claimed events processed.
func FinishCallbackEvents(db *gorm.DB, tenantID int64, ids []int64, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	err := RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		return tx.Model(&CallbackEvent{}).Scopes(ForTenant(tenantID)).Where("id IN ?", ids).
			Updates(map[string]any{"state": CallbackProcessed, "processed_at": dbTime(now), "claim": "", "lease_until": nil, "error": ""}).Error
	}, readCommitted(db)...)
	if err != nil {
		return fmt.Errorf("models: finish %d callback events: %w", len(ids), err)
	}
	return nil
}

// ReleaseCallbackEvents gives claimed events back after a failure, with the
// error: they are tried again after retryAfter, or marked failed once they
// have had CallbackMaxAttempts attempts.
func ReleaseCallbackEvents(db *gorm.DB, tenantID int64, ids []int64, cause error, now time.Time, retryAfter time.Duration) error {
	if len(ids) == 0 {
		return nil
	}
	msg := "failed"
	if cause != nil {
		msg = clipString(cause.Error(), 255)
	}
	now = dbTime(now)
	err := db.Model(&CallbackEvent{}).Scopes(ForTenant(tenantID)).Where("id IN ? AND attempts >= ?", ids, CallbackMaxAttempts).
		Updates(map[string]any{"state": CallbackFailed, "processed_at": now, "claim": "", "lease_until": nil, "error": msg}).Error
	if err == nil {
		err = db.Model(&CallbackEvent{}).Scopes(ForTenant(tenantID)).Where("id IN ? AND state = ?", ids, CallbackPending).
			Updates(map[string]any{"claim": "", "lease_until": now.Add(retryAfter), "error": msg}).Error
	}
	if err != nil {
		return fmt.Errorf("models: release %d callback events: %w", len(ids), err)
	}
	return nil
}

// PurgeCallbackEvents deletes up to limit settled events received before
// before (their retries are long over) and returns how many went.
func PurgeCallbackEvents(db *gorm.DB, before time.Time, limit int) (int64, error) {
	return purgeOldest(db, &CallbackEvent{}, "the callback worker purges every tenant's settled inbox rows",
		"received_at", limit, "received_at < ? AND state <> ?", dbTime(before), CallbackPending)
}

// purgeOldest deletes up to limit rows of model, every tenant's, that match
// where, oldest (by the order column) first, and returns how many went.
func purgeOldest(db *gorm.DB, model any, reason, order string, limit int, where string, args ...any) (int64, error) {
	var ids []int64
	err := CrossTenant(db, reason).Model(model).Where(where, args...).Order(order).Limit(limit).Pluck("id", &ids).Error
	if err != nil {
		return 0, fmt.Errorf("models: purge: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	res := CrossTenant(db, reason).Where("id IN ?", ids).Delete(model)
	if res.Error != nil {
		return 0, fmt.Errorf("models: purge: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// CallbackBacklog counts events not yet resolved (pending), for health checks
// and tests.
func CallbackBacklog(db *gorm.DB) (int64, error) {
	var n int64
	err := CrossTenant(db, "the inbox backlog spans tenants").Model(&CallbackEvent{}).
		Where("state = ?", CallbackPending).Count(&n).Error
	return n, err
}
