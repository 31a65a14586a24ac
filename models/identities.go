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
// id order, a few hundred per transaction, so it never holds many locks.
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
	var total, after int64
	for {
		var rows []Identity
		now := dbTime(db.NowFunc())
		err := RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
			rows = rows[:0]
			err := lockingVia(tx, tenantID, "identities", "ix_identities_app_subscribed").
				Select("id", "customer_id", "openid").
				Where("app_id = ? AND subscribed = ? AND id > ?", appID, true, after).
				Where("last_sync_pass <> ?", pass).
				Where("(subscribe_time IS NULL OR subscribe_time < ?)", passStartedAt).
				Order("id").Limit(markChunk).Find(&rows).Error
			if err != nil || len(rows) == 0 {
				return err
			}
			ids := make([]int64, len(rows))
			events := make([]CustomerEvent, len(rows))
			for i, r := range rows {
				ids[i] = r.ID
				app := appID
				events[i] = CustomerEvent{TenantID: tenantID, CustomerID: r.CustomerID, Kind: EventUnfollowed,
					AppID: &app, OpenID: r.OpenID, Detail: fmt.Sprintf("sync_pass=%d", pass), OccurredAt: now, CreatedAt: now}
			}
			err = tx.Model(&Identity{}).Scopes(ForTenant(tenantID)).Where("id IN ?", ids).
				UpdateColumns(map[string]any{"subscribed": false, "unsubscribed_at": now, "updated_at": now}).Error
			if err != nil {
				return err
			}
			if bit := app.bit(); bit != 0 {
				customers := make([]int64, len(rows))
				for i, r := range rows {
					customers[i] = r.CustomerID
				}
				sortIDs(customers)
				// The app's follow bit in the customers' masks (migration 0030):
				// one identity per app per customer, so it is this identity's.
				err = tx.Exec("UPDATE customers SET sub_mask = sub_mask & ~? WHERE tenant_id = ? AND id IN ?",
					bit, tenantID, customers).Error
				if err != nil {
					return err
				}
			}
			return tx.Create(&events).Error
		}, readCommitted(db)...)
		if err != nil {
			return total, fmt.Errorf("models: mark followers of app %d unseen in pass %d: %w", appID, pass, err)
		}
		total += int64(len(rows))
		if len(rows) < markChunk {
			return total, nil
		}
		after = rows[len(rows)-1].ID
	}
}
