package models

import (
	"fmt"
	"time"

	"gorm.io/gorm"
)

// IdentitiesOfCustomer lists a customer's identities by app.
func IdentitiesOfCustomer(db *gorm.DB, tenantID, customerID int64) ([]Identity, error) {
	var ids []Identity
	err := db.Scopes(ForTenant(tenantID)).Where("customer_id = ?", customerID).Order("app_id, id").Find(&ids).Error
	if err != nil {
		return nil, fmt.Errorf("models: identities of customer %d: %w", customerID, err)
	}
	return ids, nil
}

// markChunk is how many followers MarkUnsubscribedExcept settles per transaction.
const markChunk = 500

// MarkUnsubscribedExcept ends a full follower pass of an app: every follower
// of the app that the pass did not list (last_sync_pass ≠ pass) is marked
// unsubscribed, with an "unfollowed" event, and the count is returned.
// Followers who (re)subscribed at or after passStartedAt are left alone: the
// pass may have listed its pages before they followed. A pass that stopped
// half-way must not call this (its unseen followers are not gone).
//
// The sweep walks the app's followers through ix_identities_app_subscribed in
// id order without locks, a few hundred candidates at a time; each batch is
// then locked by primary key and checked again, so only the identities it
// changes are ever locked, and an identity that followed again meanwhile is
// left alone.
func MarkUnsubscribedExcept(db *gorm.DB, tenantID, appID, pass int64, passStartedAt time.Time) (int64, error) {
	if pass <= 0 {
		return 0, fmt.Errorf("models: mark unsubscribed: sync pass must be positive, got %d", pass)
	}
	passStartedAt = dbTime(passStartedAt)
	var app resolveApp
	if err := db.Model(&App{}).Scopes(ForTenant(tenantID)).Select("id", "open_account_id", "mask_bit").
		Where("id = ?", appID).Take(&app).Error; err != nil {
		return 0, fmt.Errorf("models: mark unsubscribed: app %d: %w", appID, err)
	}
	unseen := func(q *gorm.DB) *gorm.DB {
		return q.Where("app_id = ? AND subscribed = ?", appID, true).Where("last_sync_pass <> ?", pass).
			Where("(subscribe_time IS NULL OR subscribe_time < ?)", passStartedAt)
	}
	var total, after int64
	for {
		var candidates []int64
		err := unseen(readVia(db, tenantID, "identities", "ix_identities_app_subscribed")).
			Where("id > ?", after).Order("id").Limit(markChunk).Pluck("id", &candidates).Error
		if err != nil {
			return total, fmt.Errorf("models: mark followers of app %d unseen in pass %d: %w", appID, pass, err)
		}
		if len(candidates) == 0 {
			return total, nil
		}
		var marked int64
		err = RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
			n, err := markUnsubscribed(tx, tenantID, app, pass, candidates, unseen)
			marked = n
			return err
		}, readCommitted(db)...)
		if err != nil {
			return total, fmt.Errorf("models: mark followers of app %d unseen in pass %d: %w", appID, pass, err)
		}
		total += marked
		after = candidates[len(candidates)-1]
	}
}

// markUnsubscribed locks the candidates that are still unseen followers and
// marks them unsubscribed, with their timeline line and the customers' follow
// bit (migration 0030; one identity per app per customer, so it is theirs).
func markUnsubscribed(tx *gorm.DB, tenantID int64, app resolveApp, pass int64, candidates []int64,
	unseen func(*gorm.DB) *gorm.DB) (int64, error) {
	var rows []Identity
	err := unseen(lockingVia(tx, tenantID, "identities", "PRIMARY")).Select("id", "customer_id", "openid").
		Where("id IN ?", candidates).Order("id").Find(&rows).Error
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	now := dbTime(tx.NowFunc())
	ids := make([]int64, len(rows))
	customers := make([]int64, len(rows))
	events := make([]CustomerEvent, len(rows))
	for i, r := range rows {
		ids[i], customers[i] = r.ID, r.CustomerID
		appID := app.ID
		events[i] = CustomerEvent{TenantID: tenantID, CustomerID: r.CustomerID, Kind: EventUnfollowed,
			AppID: &appID, OpenID: r.OpenID, Detail: fmt.Sprintf("sync_pass=%d", pass), OccurredAt: now, CreatedAt: now}
	}
	err = tx.Model(&Identity{}).Scopes(ForTenant(tenantID)).Where("id IN ?", ids).
		UpdateColumns(map[string]any{"subscribed": false, "unsubscribed_at": now, "updated_at": now}).Error
	if err != nil {
		return 0, err
	}
	if bit := app.bit(); bit != 0 {
		sortIDs(customers)
		err = tx.Exec("UPDATE customers SET sub_mask = sub_mask & ~? WHERE tenant_id = ? AND id IN ?",
			bit, tenantID, customers).Error
		if err != nil {
			return 0, err
		}
	}
	return int64(len(rows)), tx.Create(&events).Error
}
