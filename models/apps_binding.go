package models

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Audit actions of binding apps (PRODUCT.md rule 7).
const (
	AuditAppBound                = "app_bound"
	AuditAppUnbound              = "app_unbound"
	AuditAppSecretReplaced       = "app_secret_replaced"
	AuditAppOpenBound            = "app_open_bound" // the app joined an open-platform account
	AuditAppAuthorized           = "app_authorized" // WeChat's authorization events
	AuditAppAuthorizationUpdated = "app_authorization_updated"
	AuditAppAuthorizationRevoked = "app_authorization_revoked"
	AuditOpenAccountCreated      = "open_account_created"
	AuditOpenAccountDeclared     = "open_account_declared"
)

// Ways an open-platform account came to OneID (OpenAccount.CreatedVia).
const (
	OpenViaAPI      = "api"      // created by open/create
	OpenViaExisting = "existing" // found by open/get: the app was already bound to it
	OpenViaDeclared = "declared" // typed in by the admin
)

// Secret columns of apps. Each is sealed with SealedAD("apps", tenant, appid, column).
const (
	ColAppSecret     = "secret_sealed"
	ColCallbackToken = "callback_token_sealed"
	ColAESKey        = "aes_key_sealed"
)

var (
	// ErrAppHeldElsewhere is the refusal of an appid another workspace holds.
	// It says nothing of which one.
	ErrAppHeldElsewhere = errors.New("models: the app is bound to another workspace")
	// ErrOpenAccountHeldElsewhere is the same for an open-platform account.
	ErrOpenAccountHeldElsewhere = errors.New("models: the open-platform account belongs to another workspace")
)

// AppSecretAD is the associated data of an app's sealed column.
func AppSecretAD(tenantID int64, appID, column string) string {
	return SealedAD("apps", tenantID, appID, column)
}

// SealAppSecret encrypts one of an app's secrets for its row and column.
func SealAppSecret(s *Sealer, tenantID int64, appID, column, value string) ([]byte, error) {
	if s == nil {
		return nil, errors.New("models: no sealer to encrypt secrets with")
	}
	return s.Seal([]byte(value), AppSecretAD(tenantID, appID, column))
}

// OpenAppSecret decrypts one of an app's secrets; "" when none is stored.
func OpenAppSecret(s *Sealer, a *App, column string) (string, error) {
	var sealed []byte
	switch column {
	case ColAppSecret:
		sealed = a.SecretSealed
	case ColCallbackToken:
		sealed = a.CallbackTokenSealed
	case ColAESKey:
		sealed = a.AESKeySealed
	default:
		return "", fmt.Errorf("models: %s is not a secret column of apps", column)
	}
	if len(sealed) == 0 {
		return "", nil
	}
	if s == nil {
		return "", errors.New("models: no sealer to decrypt secrets with")
	}
	plain, err := s.Open(sealed, AppSecretAD(a.TenantID, a.AppID, column))
	if err != nil {
		return "", fmt.Errorf("models: %s of app %s: %w", column, a.AppID, err)
	}
	return string(plain), nil
}

// IsBound reports whether the app is bound now (not unbound by an admin).
func (a *App) IsBound() bool { return a.BoundAppID != nil }

// ListApps returns the tenant's apps, bound and unbound, oldest first.
func ListApps(db *gorm.DB, tenantID int64) ([]App, error) {
	var apps []App
	if err := db.Scopes(ForTenant(tenantID)).Order("id").Find(&apps).Error; err != nil {
		return nil, fmt.Errorf("models: list apps: %w", err)
	}
	return apps, nil
}

// FindApp loads one of the tenant's apps.
func FindApp(db *gorm.DB, tenantID, id int64) (*App, error) {
	var a App
	if err := db.Scopes(ForTenant(tenantID)).Where("id = ?", id).Take(&a).Error; err != nil {
		return nil, notFound(err)
	}
	return &a, nil
}

// FindAppByAppID loads the tenant's row of an appid, bound or not.
func FindAppByAppID(db *gorm.DB, tenantID int64, appID string) (*App, error) {
	var a App
	if err := db.Scopes(ForTenant(tenantID)).Where("appid = ?", appID).Order("id DESC").Take(&a).Error; err != nil {
		return nil, notFound(err)
	}
	return &a, nil
}

// AppBoundElsewhere reports whether another tenant holds the appid now. It is
// the friendly pre-check; the unique index on bound_appid is the rule.
func AppBoundElsewhere(db *gorm.DB, tenantID int64, appID string) (bool, error) {
	var n int64
	err := CrossTenant(db, "one owner per appid across all tenants").Model(&App{}).
		Where("bound_appid = ? AND tenant_id <> ?", appID, tenantID).Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("models: check owner of %s: %w", appID, err)
	}
	return n > 0, nil
}

// ListOpenAccounts returns the tenant's open-platform accounts, oldest first.
func ListOpenAccounts(db *gorm.DB, tenantID int64) ([]OpenAccount, error) {
	var out []OpenAccount
	if err := db.Scopes(ForTenant(tenantID)).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: list open-platform accounts: %w", err)
	}
	return out, nil
}

// FindOpenAccount loads one of the tenant's open-platform accounts.
func FindOpenAccount(db *gorm.DB, tenantID, id int64) (*OpenAccount, error) {
	var o OpenAccount
	if err := db.Scopes(ForTenant(tenantID)).Where("id = ?", id).Take(&o).Error; err != nil {
		return nil, notFound(err)
	}
	return &o, nil
}

// FindOpenAccountByOpenAppID loads the tenant's account of an open_appid.
func FindOpenAccountByOpenAppID(db *gorm.DB, tenantID int64, openAppID string) (*OpenAccount, error) {
	var o OpenAccount
	if err := db.Scopes(ForTenant(tenantID)).Where("open_appid = ?", openAppID).Take(&o).Error; err != nil {
		return nil, notFound(err)
	}
	return &o, nil
}

// CreateOpenAccount inserts an open-platform account. Its open_appid is unique
// across all tenants: another tenant's gives ErrOpenAccountHeldElsewhere.
func CreateOpenAccount(db *gorm.DB, tenantID int64, o *OpenAccount) error {
	o.ID = 0
	o.TenantID = tenantID
	now := time.Now().UTC()
	o.CreatedAt, o.UpdatedAt = now, now
	o.PrincipalName = clipString(strings.TrimSpace(o.PrincipalName), 200)
	if err := db.Create(o).Error; err != nil {
		if isDuplicateKey(err) {
			return ErrOpenAccountHeldElsewhere
		}
		return fmt.Errorf("models: create open-platform account: %w", err)
	}
	return nil
}

// DeclareOpenAccountFacts records what an admin declares of an account the
// tenant has: its principal and verification, marked as declared.
func DeclareOpenAccountFacts(db *gorm.DB, tenantID, id int64, principal string, verified bool) error {
	err := db.Model(&OpenAccount{}).Scopes(ForTenant(tenantID)).Where("id = ?", id).Updates(map[string]any{
		"principal_name": clipString(strings.TrimSpace(principal), 200),
		"verified":       verified,
		"declared":       true,
		"updated_at":     time.Now().UTC(),
	}).Error
	if err != nil {
		return fmt.Errorf("models: declare open-platform account: %w", err)
	}
	return nil
}

// BindApp saves a binding. The tenant's earlier row of the same appid (unbound
// before, or a cancelled authorization given again) is reused, so identities
// and counts stay attached; otherwise a row is inserted with a new callback
// key. bound_appid is unique across all tenants: when another tenant holds the
// appid the database refuses, and BindApp returns ErrAppHeldElsewhere.
func BindApp(db *gorm.DB, tenantID int64, a *App) error {
	now := time.Now().UTC()
	appID := a.AppID
	a.TenantID = tenantID
	a.BoundAppID = &appID
	a.Status = AppActive
	a.UnboundAt = nil
	a.Name = clipString(strings.TrimSpace(a.Name), 200)
	a.PrincipalName = clipString(strings.TrimSpace(a.PrincipalName), 200)
	prev, err := FindAppByAppID(db, tenantID, appID)
	switch {
	case errors.Is(err, ErrNotFound):
		key, err := newCallbackKey()
		if err != nil {
			return err
		}
		a.ID, a.CallbackKey, a.CreatedAt, a.UpdatedAt = 0, key, now, now
		if err := db.Create(a).Error; err != nil {
			return bindError(err)
		}
		return nil
	case err != nil:
		return err
	}
	a.ID, a.CallbackKey, a.CreatedAt, a.UpdatedAt = prev.ID, prev.CallbackKey, prev.CreatedAt, now
	a.FollowerCount, a.LastSyncAt = prev.FollowerCount, prev.LastSyncAt
	err = db.Model(&App{}).Scopes(ForTenant(tenantID)).Where("id = ?", prev.ID).Updates(map[string]any{
		"bound_appid":           appID,
		"kind":                  a.Kind,
		"name":                  a.Name,
		"principal_name":        a.PrincipalName,
		"verify_type":           a.VerifyType,
		"declared":              a.Declared,
		"binding_mode":          a.BindingMode,
		"status":                AppActive,
		"open_account_id":       a.OpenAccountID,
		"gh_id":                 a.GhID,
		"secret_sealed":         a.SecretSealed,
		"callback_token_sealed": a.CallbackTokenSealed,
		"aes_key_sealed":        a.AESKeySealed,
		"unbound_at":            nil,
		"updated_at":            now,
	}).Error
	if err != nil {
		return bindError(err)
	}
	return nil
}

func bindError(err error) error {
	if isDuplicateKey(err) && strings.Contains(err.Error(), "bound_appid") {
		return ErrAppHeldElsewhere
	}
	return fmt.Errorf("models: bind app: %w", err)
}

// newCallbackKey is the public, unguessable part of an app's callback URL.
func newCallbackKey() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("models: callback key: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// SetAppOpenAccount records that a bound app joined an open-platform account.
func SetAppOpenAccount(db *gorm.DB, tenantID, appID, openAccountID int64) error {
	res := db.Model(&App{}).Scopes(ForTenant(tenantID)).Where("id = ? AND bound_appid IS NOT NULL", appID).
		Updates(map[string]any{"open_account_id": openAccountID, "updated_at": time.Now().UTC()})
	if res.Error != nil {
		return fmt.Errorf("models: set open-platform account of app: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// ReplaceAppSecret stores a new sealed AppSecret and makes a failing app
// active again: the new secret has just obtained a token.
func ReplaceAppSecret(db *gorm.DB, tenantID, id int64, sealed []byte) error {
	res := db.Model(&App{}).Scopes(ForTenant(tenantID)).Where("id = ? AND bound_appid IS NOT NULL", id).
		Updates(map[string]any{"secret_sealed": sealed, "status": AppActive, "updated_at": time.Now().UTC()})
	if res.Error != nil {
		return fmt.Errorf("models: replace app secret: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// UnbindApp releases an app: bound_appid becomes NULL (so the appid is free
// for any workspace), the status unbound and its secrets are erased. Its
// identities and customers are kept.
func UnbindApp(db *gorm.DB, tenantID, id int64, now time.Time) error {
	res := db.Model(&App{}).Scopes(ForTenant(tenantID)).Where("id = ? AND bound_appid IS NOT NULL", id).
		Updates(map[string]any{
			"bound_appid":           nil,
			"status":                AppUnbound,
			"unbound_at":            now.UTC(),
			"secret_sealed":         nil,
			"callback_token_sealed": nil,
			"aes_key_sealed":        nil,
			"updated_at":            now.UTC(),
		})
	if res.Error != nil {
		return fmt.Errorf("models: unbind app: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// FindBoundApp finds the app bound to an appid in whichever tenant holds it:
// WeChat's pushes name an appid, not a tenant.
func FindBoundApp(db *gorm.DB, appID string) (*App, error) {
	var a App
	err := CrossTenant(db, "a WeChat push names an appid; its one owner is found by bound_appid").
		Where("bound_appid = ?", appID).Take(&a).Error
	if err != nil {
		return nil, notFound(err)
	}
	return &a, nil
}

// SetAppStatus changes a bound app's status; it reports whether it changed.
func SetAppStatus(db *gorm.DB, tenantID, id int64, status string) (bool, error) {
	res := db.Model(&App{}).Scopes(ForTenant(tenantID)).
		Where("id = ? AND bound_appid IS NOT NULL AND status <> ?", id, status).
		Updates(map[string]any{"status": status, "updated_at": time.Now().UTC()})
	if res.Error != nil {
		return false, fmt.Errorf("models: set app status: %w", res.Error)
	}
	return res.RowsAffected > 0, nil
}

// ForgetWechatTokens deletes the tokens OneID holds for an app it no longer
// binds: its access token and, for an authorized app, the refresh token.
func ForgetWechatTokens(db *gorm.DB, appID string) error {
	if err := db.Where("app_id = ?", appID).Delete(&wechatTokenRow{}).Error; err != nil {
		return fmt.Errorf("models: forget tokens of %s: %w", appID, err)
	}
	return nil
}

// BindingState is a pending trip to WeChat's authorisation page.
type BindingState struct {
	ID        int64 `gorm:"primaryKey"`
	TenantID  int64
	UserID    int64
	StateHash string
	ExpiresAt time.Time
	UsedAt    *time.Time
	CreatedAt time.Time
}

// BindingStateLifetime bounds the trip: WeChat's pre-auth code lives 10 minutes.
const BindingStateLifetime = 15 * time.Minute

func hashState(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:])
}

// CreateBindingState starts a trip for a tenant's admin and returns the state
// to put in the redirect_uri. Only its hash is stored.
func CreateBindingState(db *gorm.DB, tenantID, userID int64, now time.Time) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("models: binding state: %w", err)
	}
	state := base64.RawURLEncoding.EncodeToString(raw)
	row := BindingState{TenantID: tenantID, UserID: userID, StateHash: hashState(state),
		ExpiresAt: now.UTC().Add(BindingStateLifetime), CreatedAt: now.UTC()}
	if err := db.Create(&row).Error; err != nil {
		return "", fmt.Errorf("models: create binding state: %w", err)
	}
	// The tenant's trips that ended a day ago are of no use any more.
	if err := db.Scopes(ForTenant(tenantID)).Where("expires_at < ?", now.UTC().Add(-24*time.Hour)).Delete(&BindingState{}).Error; err != nil {
		return "", fmt.Errorf("models: sweep binding states: %w", err)
	}
	return state, nil
}

// ConsumeBindingState accepts the state once, for the tenant and person that
// created it, before it expires. Anything else is ErrNotFound, and changes nothing.
func ConsumeBindingState(db *gorm.DB, tenantID, userID int64, state string, now time.Time) error {
	if state == "" || len(state) > 100 {
		return ErrNotFound
	}
	res := db.Model(&BindingState{}).Scopes(ForTenant(tenantID)).
		Where("user_id = ? AND state_hash = ? AND used_at IS NULL AND expires_at > ?", userID, hashState(state), now.UTC()).
		Update("used_at", now.UTC())
	if res.Error != nil {
		return fmt.Errorf("models: consume binding state: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// WechatErrorWindow is how long an error counts as recent.
const WechatErrorWindow = 24 * time.Hour

// WechatErrorCount is how often WeChat answered an app with one errcode lately.
type WechatErrorCount struct {
	Code   int
	Count  int64
	LastAt time.Time
}

type wechatAPIErrorRow struct {
	ID          int64 `gorm:"primaryKey"`
	AppID       string
	Code        int
	RecentCount int64
	WindowStart time.Time
	LastAt      time.Time
}

func (wechatAPIErrorRow) TableName() string { return "wechat_api_errors" }

// NoteWechatError counts an errcode WeChat answered for an app; the count
// restarts when the window has passed.
func NoteWechatError(db *gorm.DB, appID string, code int, now time.Time) error {
	now = now.UTC()
	res := db.Model(&wechatAPIErrorRow{}).Where("app_id = ? AND code = ?", appID, code).Updates(map[string]any{
		"recent_count": gorm.Expr("CASE WHEN window_start < ? THEN 1 ELSE recent_count + 1 END", now.Add(-WechatErrorWindow)),
		"window_start": gorm.Expr("CASE WHEN window_start < ? THEN ? ELSE window_start END", now.Add(-WechatErrorWindow), now),
		"last_at":      now,
	})
	if res.Error != nil {
		return fmt.Errorf("models: note wechat error %d of %s: %w", code, appID, res.Error)
	}
	if res.RowsAffected > 0 {
		return nil
	}
	err := db.Create(&wechatAPIErrorRow{AppID: appID, Code: code, RecentCount: 1, WindowStart: now, LastAt: now}).Error
	if err != nil && isDuplicateKey(err) {
		return NoteWechatError(db, appID, code, now) // another instance created it first
	}
	if err != nil {
		return fmt.Errorf("models: note wechat error %d of %s: %w", code, appID, err)
	}
	return nil
}

// RecentWechatErrors returns the app's error counts whose window is still open.
func RecentWechatErrors(db *gorm.DB, appID string, now time.Time) ([]WechatErrorCount, error) {
	var rows []wechatAPIErrorRow
	err := db.Where("app_id = ? AND window_start >= ?", appID, now.UTC().Add(-WechatErrorWindow)).Order("code").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: wechat errors of %s: %w", appID, err)
	}
	out := make([]WechatErrorCount, len(rows))
	for i, r := range rows {
		out[i] = WechatErrorCount{Code: r.Code, Count: r.RecentCount, LastAt: r.LastAt.UTC()}
	}
	return out, nil
}
