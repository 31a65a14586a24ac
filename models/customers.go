package models

import "time"

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
	Subscribed     bool
	SubscribeTime  *time.Time
	SubscribeScene string
	UnsubscribedAt *time.Time
	Source         string
	Nickname       string
	AvatarURL      string
	FirstSeenAt    time.Time
	LastSeenAt     time.Time
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
