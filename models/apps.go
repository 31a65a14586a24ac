package models

import "time"

// App kinds.
const (
	KindSubscription = "subscription" // 订阅号
	KindService      = "service"      // 服务号
	KindMiniProgram  = "miniprogram"  // 小程序
)

// Binding modes.
const (
	ModeAuthorized  = "authorized"   // via OneID's third-party platform (scan and consent)
	ModeSelfManaged = "self_managed" // AppID and AppSecret typed in by the admin
)

// App statuses.
const (
	AppActive  = "active"
	AppRevoked = "revoked" // authorization cancelled in WeChat
	AppFailing = "failing" // credentials no longer obtain a token
	AppUnbound = "unbound" // unbound by the admin; identities are kept
)

// VerifyNone is WeChat's verify_type_info.id for an account that is not verified.
const VerifyNone = -1

// OpenAccount is an open-platform account (开放平台账号): one UnionID namespace.
type OpenAccount struct {
	ID            int64 `gorm:"primaryKey"`
	TenantID      int64
	OpenAppID     string `gorm:"column:open_appid"`
	PrincipalName string
	Verified      bool
	Declared      bool   // principal and verification typed by the admin, not read from WeChat
	CreatedVia    string // "api" (open/create), "existing" (found by open/get), "declared"
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// App is an official account or a mini-program bound to a tenant.
type App struct {
	ID       int64 `gorm:"primaryKey"`
	TenantID int64
	AppID    string `gorm:"column:appid"`
	// BoundAppID equals AppID while the app is bound and is NULL once unbound:
	// its unique index is what keeps one owner per appid across all tenants.
	BoundAppID          *string `gorm:"column:bound_appid"`
	Kind                string
	Name                string
	PrincipalName       string
	VerifyType          int
	Declared            bool
	BindingMode         string
	Status              string
	OpenAccountID       *int64
	GhID                string
	CallbackKey         string // the public part of the app's callback URL
	SecretSealed        []byte
	CallbackTokenSealed []byte
	AESKeySealed        []byte
	FollowerCount       int64
	LastSyncAt          *time.Time
	UnboundAt           *time.Time
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// Verified reports WeChat's (or the admin's declared) verification.
func (a *App) Verified() bool { return a.VerifyType != VerifyNone }

// IsOfficialAccount is true for subscription and service accounts.
func (a *App) IsOfficialAccount() bool {
	return a.Kind == KindSubscription || a.Kind == KindService
}
