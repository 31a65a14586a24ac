package models

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"gorm.io/gorm"
)

// Why a customer has no UnionID (yet).
const (
	UnlinkedNoOpenAccount = "no_open_account" // the app is bound to no open-platform account
	UnlinkedNotFollower   = "not_follower"    // user/info gives no unionid to non-followers
	UnlinkedSnsapiBase    = "snsapi_base"     // silent OAuth returns the openid only
	UnlinkedNotAsked      = "not_asked"       // nobody asked WeChat yet (e.g. import without unionid)
)

// Where an identity was seen.
const (
	SourceSync        = "sync"
	SourceEvent       = "event"
	SourceOAuth       = "oauth"
	SourceMiniProgram = "miniprogram"
	SourcePaid        = "paid"
	SourceImport      = "import"
)

// Timeline event kinds.
const (
	EventFollowed    = "followed"
	EventUnfollowed  = "unfollowed"
	EventLinked      = "linked"
	EventOAuthSignIn = "oauth_sign_in"
	EventMiniSignIn  = "mini_sign_in"
	EventImported    = "imported"
	EventMerged      = "merged"
	EventFirstSeen   = "first_seen"
	EventPaidUnionID = "paid_unionid"
)

// Customer is one person as OneID knows them: one UnionID in one open-platform
// account's namespace, or a single identity whose UnionID is not known yet.
type Customer struct {
	ID             int64 `gorm:"primaryKey"`
	TenantID       int64
	OpenAccountID  *int64
	UnionID        *string `gorm:"column:unionid"`
	UnlinkedReason *string
	Nickname       string
	AvatarURL      string
	ProfileAt      *time.Time // when the nickname and avatar were observed
	FirstSeenAt    time.Time
	LastSeenAt     time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Linked reports whether the customer has a UnionID.
func (c *Customer) Linked() bool { return c.UnionID != nil }

// Identity is one (app, OpenID) pair, attached to exactly one customer.
type Identity struct {
	ID             int64 `gorm:"primaryKey"`
	TenantID       int64
	AppID          int64
	CustomerID     int64
	OpenID         string  `gorm:"column:openid"`
	UnionID        *string `gorm:"column:unionid"`
	OpenAccountID  *int64  // the customer's namespace while linked (copied from it)
	UnlinkedReason *string // the customer's reason while unlinked (copied from it)
	Subscribed     bool
	SubscribeTime  *time.Time
	SubscribeScene string
	UnsubscribedAt *time.Time
	Source         string // where the identity was first seen
	Nickname       string
	AvatarURL      string
	ProfileAt      *time.Time // when the nickname and avatar were observed
	FirstSeenAt    time.Time
	LastSeenAt     time.Time
	LastSyncPass   int64 // the last full follower pass that listed this identity
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// CustomerEvent is one line of a customer's timeline.
type CustomerEvent struct {
	ID         int64 `gorm:"primaryKey"`
	TenantID   int64
	CustomerID int64
	Kind       string
	AppID      *int64
	OpenID     string `gorm:"column:openid"`
	Detail     string
	OccurredAt time.Time
	CreatedAt  time.Time
}

// ErrAmbiguousUnionID is FindCustomerByUnionID's answer when no namespace is
// named and more than one of the tenant's open-platform accounts holds the id.
var ErrAmbiguousUnionID = errors.New("models: unionid is held in more than one open-platform account; name one")

// FindCustomer loads one of the tenant's customers; another tenant's is
// ErrNotFound, exactly like a missing one.
func FindCustomer(db *gorm.DB, tenantID, id int64) (*Customer, error) {
	var c Customer
	err := db.Scopes(ForTenant(tenantID)).Where("id = ?", id).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("models: find customer %d: %w", id, err)
	}
	return &c, nil
}

// FindCustomerByUnionID finds the customer holding unionid in the namespace of
// the tenant's open-platform account openAppID (its open_appid). With openAppID
// "" every namespace of the tenant is searched; if more than one holds the id
// (the same string in two accounts is two people) the answer is
// ErrAmbiguousUnionID.
func FindCustomerByUnionID(db *gorm.DB, tenantID int64, openAppID, unionID string) (*Customer, error) {
	if !ValidWeChatID(unionID) {
		return nil, ErrNotFound
	}
	q := db.Scopes(ForTenant(tenantID)).Where("unionid = ?", unionID)
	if openAppID != "" {
		q = q.Where("open_account_id IN (?)", db.Model(&OpenAccount{}).Scopes(ForTenant(tenantID)).
			Select("id").Where("open_appid = ?", openAppID))
	} else {
		q = q.Where("open_account_id IS NOT NULL")
	}
	var found []Customer
	if err := q.Order("id").Limit(2).Find(&found).Error; err != nil {
		return nil, fmt.Errorf("models: find customer by unionid: %w", err)
	}
	switch len(found) {
	case 0:
		return nil, ErrNotFound
	case 1:
		return &found[0], nil
	}
	return nil, ErrAmbiguousUnionID
}

// FindCustomerByOpenID finds the customer of the identity (appid, openid),
// appid being the WeChat AppID of one of the tenant's apps.
func FindCustomerByOpenID(db *gorm.DB, tenantID int64, appID, openID string) (*Customer, error) {
	if !ValidWeChatID(openID) {
		return nil, ErrNotFound
	}
	var found []Customer
	err := db.Raw(`SELECT c.* FROM identities i
JOIN apps a ON a.id = i.app_id AND a.tenant_id = i.tenant_id
JOIN customers c ON c.id = i.customer_id AND c.tenant_id = i.tenant_id
WHERE i.tenant_id = ? AND a.appid = ? AND i.openid = ?
ORDER BY i.last_seen_at DESC LIMIT 1`, tenantID, appID, openID).Scan(&found).Error
	if err != nil {
		return nil, fmt.Errorf("models: find customer by openid: %w", err)
	}
	if len(found) == 0 {
		return nil, ErrNotFound
	}
	return &found[0], nil
}

// CustomerTimeline returns a customer's newest events first, at most limit
// (100 if limit ≤ 0). Besides the stored events it shows, for each identity a
// follower sync found, a "followed" line at the follow time WeChat reported:
// Resolve does not store one row per synced follower (see followedOnSync), so
// the line is drawn from the identity. Drawn lines have ID 0.
func CustomerTimeline(db *gorm.DB, tenantID, customerID int64, limit int) ([]CustomerEvent, error) {
	var synced []Identity
	err := db.Scopes(ForTenant(tenantID)).Select("app_id", "openid", "first_seen_at", "subscribe_scene").
		Where("customer_id = ? AND source = ? AND subscribe_time IS NOT NULL", customerID, SourceSync).Find(&synced).Error
	if err != nil {
		return nil, fmt.Errorf("models: timeline of customer %d: %w", customerID, err)
	}
	return timelineWith(db, tenantID, customerID, limit, synced)
}

// timelineWith is CustomerTimeline given the identities a follower sync found
// (source sync, with a follow time: the caller picks them): it reads the
// stored events and adds the "followed" lines drawn from those identities.
func timelineWith(db *gorm.DB, tenantID, customerID int64, limit int, synced []Identity) ([]CustomerEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	var events []CustomerEvent
	err := db.Scopes(ForTenant(tenantID)).Where("customer_id = ?", customerID).
		Order("occurred_at DESC, id DESC").Limit(limit).Find(&events).Error
	if err != nil {
		return nil, fmt.Errorf("models: timeline of customer %d: %w", customerID, err)
	}
	if len(synced) == 0 {
		return events, nil
	}
	for _, i := range synced {
		app := i.AppID
		events = append(events, CustomerEvent{TenantID: tenantID, CustomerID: customerID, Kind: EventFollowed,
			AppID: &app, OpenID: i.OpenID, Detail: sceneDetail(i.SubscribeScene), OccurredAt: i.FirstSeenAt})
	}
	sort.SliceStable(events, func(a, b int) bool {
		if !events[a].OccurredAt.Equal(events[b].OccurredAt) {
			return events[a].OccurredAt.After(events[b].OccurredAt)
		}
		return events[a].ID > events[b].ID
	})
	if len(events) > limit {
		events = events[:limit]
	}
	return events, nil
}

// DeleteCustomer erases a customer with its identities and timeline, in one
// transaction (retried on deadlock). The customer row is locked first, so an
// identity resolved onto it meanwhile is either erased too or waits and then
// starts a new customer. A later observation of the same person (the next
// follower sync, say) creates them anew: erasure is not a block list.
func DeleteCustomer(db *gorm.DB, tenantID, id int64) error {
	return RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		var ids []int64
		err := lockingVia(tx, tenantID, "customers", "PRIMARY").Where("id = ?", id).Pluck("id", &ids).Error
		if err != nil {
			return fmt.Errorf("models: delete customer %d: %w", id, err)
		}
		if len(ids) == 0 {
			return ErrNotFound
		}
		for _, model := range []any{&CustomerEvent{}, &Identity{}, &OAuthTicket{}} {
			if err := tx.Scopes(ForTenant(tenantID)).Where("customer_id = ?", id).Delete(model).Error; err != nil {
				return fmt.Errorf("models: delete customer %d: %w", id, err)
			}
		}
		if err := tx.Scopes(ForTenant(tenantID)).Where("id = ?", id).Delete(&Customer{}).Error; err != nil {
			return fmt.Errorf("models: delete customer %d: %w", id, err)
		}
		return nil
	}, readCommitted(db)...)
}
