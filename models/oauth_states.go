package models

import (
	"crypto/rand"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
)

// AuditOAuthHostsChanged is the audit action of changing where an app's web
// OAuth may send visitors back to.
const AuditOAuthHostsChanged = "app_oauth_hosts_changed"

// OAuthState is a visitor's pending trip to WeChat's web OAuth page: it binds
// the state WeChat echoes back to the tenant and app that started the trip,
// with the scope asked for and the (checked) page to return to.
type OAuthState struct {
	ID        int64 `gorm:"primaryKey"`
	TenantID  int64
	AppID     int64
	StateHash string
	Scope     string
	ReturnURL string
	ExpiresAt time.Time
	UsedAt    *time.Time
	CreatedAt time.Time
}

// TableName keeps gorm from spelling the table "o_auth_states".
func (OAuthState) TableName() string { return "oauth_states" }

// OAuthStateLifetime bounds the trip. WeChat's code lives 5 minutes; a visitor
// may linger on the consent screen a little before that.
const OAuthStateLifetime = 10 * time.Minute

// oauthStateAlphabet: WeChat accepts a-zA-Z0-9 in state, at most 128 bytes.
const oauthStateAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newOAuthState is 32 characters of a-zA-Z0-9 (about 190 bits).
func newOAuthState() (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("models: oauth state: %w", err)
	}
	out := make([]byte, len(raw))
	for i, b := range raw {
		// 248 = 4·62: values above are rerolled so every character is equally likely.
		for b >= 248 {
			var one [1]byte
			if _, err := rand.Read(one[:]); err != nil {
				return "", fmt.Errorf("models: oauth state: %w", err)
			}
			b = one[0]
		}
		out[i] = oauthStateAlphabet[int(b)%len(oauthStateAlphabet)]
	}
	return string(out), nil
}

// CreateOAuthState starts a trip for one of the tenant's apps and returns the
// state to send to WeChat. Only its hash is stored.
func CreateOAuthState(db *gorm.DB, tenantID, appID int64, scope, returnURL string, now time.Time) (string, error) {
	state, err := newOAuthState()
	if err != nil {
		return "", err
	}
	if len(returnURL) > 1024 {
		return "", fmt.Errorf("models: oauth return URL is %d bytes (at most 1024)", len(returnURL))
	}
	row := OAuthState{TenantID: tenantID, AppID: appID, StateHash: hashState(state), Scope: scope,
		ReturnURL: returnURL, ExpiresAt: dbTime(now.Add(OAuthStateLifetime)), CreatedAt: dbTime(now)}
	if err := db.Create(&row).Error; err != nil {
		return "", fmt.Errorf("models: create oauth state: %w", err)
	}
	return state, nil
}

// ConsumeOAuthState accepts a state once, for the tenant and app that created
// it, before it expires, and returns the trip. A state of another app or
// tenant, a used, expired or unknown one are all ErrNotFound and change nothing.
func ConsumeOAuthState(db *gorm.DB, tenantID, appID int64, state string, now time.Time) (*OAuthState, error) {
	if state == "" || len(state) > 128 {
		return nil, ErrNotFound
	}
	now = dbTime(now)
	var found *OAuthState
	err := RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		found = nil
		res := tx.Model(&OAuthState{}).Scopes(ForTenant(tenantID)).
			Where("app_id = ? AND state_hash = ? AND used_at IS NULL AND expires_at > ?", appID, hashState(state), now).
			Update("used_at", now)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		var s OAuthState
		if err := tx.Scopes(ForTenant(tenantID)).Where("state_hash = ?", hashState(state)).Take(&s).Error; err != nil {
			return err
		}
		found = &s
		return nil
	})
	if err != nil {
		return nil, notFound(err)
	}
	return found, nil
}

// PurgeOAuthStates deletes up to limit states that expired before before.
func PurgeOAuthStates(db *gorm.DB, before time.Time, limit int) (int64, error) {
	return purgeOldest(db, &OAuthState{}, "expired OAuth states of every tenant are purged together",
		"expires_at", limit, "expires_at < ?", dbTime(before))
}

// OAuthReturnHost is a host an app's OAuth may send visitors back to.
type OAuthReturnHost struct {
	ID        int64 `gorm:"primaryKey"`
	TenantID  int64
	AppID     int64
	Host      string
	CreatedAt time.Time
}

// TableName keeps gorm from spelling the table "o_auth_return_hosts".
func (OAuthReturnHost) TableName() string { return "oauth_return_hosts" }

// MaxOAuthReturnHosts bounds an app's list.
const MaxOAuthReturnHosts = 20

// OAuthReturnHosts lists the hosts an app's OAuth may return to, sorted.
func OAuthReturnHosts(db *gorm.DB, tenantID, appID int64) ([]string, error) {
	var hosts []string
	err := db.Model(&OAuthReturnHost{}).Scopes(ForTenant(tenantID)).Where("app_id = ?", appID).
		Order("host").Pluck("host", &hosts).Error
	if err != nil {
		return nil, fmt.Errorf("models: oauth return hosts of app %d: %w", appID, err)
	}
	return hosts, nil
}

// NormalizeReturnHost checks a host typed by an admin ("h5.example.com",
// "h5.example.com:8443", or with a scheme and path, which are dropped) and
// returns it lowercased; ok is false for anything that is not a host name.
// Wildcards are not accepted: every host is named.
func NormalizeReturnHost(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if s == "" || len(s) > 255 || strings.ContainsAny(s, "@\\ *") {
		return "", false
	}
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return "", false
		}
		host = h
	}
	if net.ParseIP(host) != nil {
		return s, true
	}
	labels := strings.Split(host, ".")
	if len(labels) < 2 {
		return "", false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") ||
			strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return "", false
		}
	}
	return s, true
}

// SetOAuthReturnHosts replaces an app's list of return hosts. The app must be
// the tenant's; hosts must already be normalised (NormalizeReturnHost).
func SetOAuthReturnHosts(db *gorm.DB, tenantID, appID int64, hosts []string, now time.Time) error {
	if _, err := FindApp(db, tenantID, appID); err != nil {
		return err
	}
	seen := map[string]bool{}
	var uniq []string
	for _, h := range hosts {
		if !seen[h] {
			seen[h] = true
			uniq = append(uniq, h)
		}
	}
	if len(uniq) > MaxOAuthReturnHosts {
		return fmt.Errorf("models: %d oauth return hosts (at most %d)", len(uniq), MaxOAuthReturnHosts)
	}
	sort.Strings(uniq)
	return RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		if err := tx.Scopes(ForTenant(tenantID)).Where("app_id = ?", appID).Delete(&OAuthReturnHost{}).Error; err != nil {
			return err
		}
		if len(uniq) == 0 {
			return nil
		}
		rows := make([]OAuthReturnHost, len(uniq))
		for i, h := range uniq {
			rows[i] = OAuthReturnHost{TenantID: tenantID, AppID: appID, Host: h, CreatedAt: dbTime(now)}
		}
		return tx.Create(&rows).Error
	})
}
