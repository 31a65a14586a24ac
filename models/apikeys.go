package models

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// APIKey lets a tenant's own systems call OneID's JSON API. The key is shown
// once when it is made; the table keeps its SHA-256 and a public prefix, unique
// and indexed, by which a presented key is found.
type APIKey struct {
	ID         int64 `gorm:"primaryKey"`
	TenantID   int64
	Name       string
	Prefix     string
	KeyHash    string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// TableName keeps gorm from spelling the table "api_keys" some other way.
func (APIKey) TableName() string { return "api_keys" }

// An API key reads "oneid_<prefix>_<secret>": the prefix finds the row, the
// whole key is compared by hash.
const (
	apiKeyScheme    = "oneid_"
	apiKeyPrefixLen = 12
)

// CreateAPIKey makes a key for a tenant and returns it (the only time it is
// readable) with the stored row.
func CreateAPIKey(db *gorm.DB, tenantID int64, name string, now time.Time) (string, *APIKey, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "API key " + now.Format("2006-01-02")
	}
	prefix := apiKeyPrefix()
	key := apiKeyScheme + prefix + "_" + randomSecret(32)
	k := &APIKey{TenantID: tenantID, Name: clipString(name, 100), Prefix: prefix, KeyHash: hashSecret(key), CreatedAt: now}
	if err := db.Create(k).Error; err != nil {
		return "", nil, fmt.Errorf("models: create api key: %w", err)
	}
	return key, k, nil
}

// FindAPIKey finds the live key a request presents. Unknown, malformed and
// revoked keys are all ErrNotFound.
func FindAPIKey(db *gorm.DB, key string) (*APIKey, error) {
	rest, ok := strings.CutPrefix(key, apiKeyScheme)
	if !ok || len(rest) < apiKeyPrefixLen+2 || rest[apiKeyPrefixLen] != '_' {
		return nil, ErrNotFound
	}
	var k APIKey
	err := CrossTenant(db, "an API key is found by its prefix before its tenant is known").
		Where("prefix = ? AND revoked_at IS NULL", rest[:apiKeyPrefixLen]).Take(&k).Error
	if err != nil {
		return nil, notFound(err)
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(key)), []byte(k.KeyHash)) != 1 {
		return nil, ErrNotFound
	}
	return &k, nil
}

// ListAPIKeys lists a tenant's keys, newest first.
func ListAPIKeys(db *gorm.DB, tenantID int64) ([]APIKey, error) {
	var out []APIKey
	if err := db.Scopes(ForTenant(tenantID)).Order("id DESC").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: list api keys: %w", err)
	}
	return out, nil
}

// RevokeAPIKey stops a tenant's key from working from now on and returns it.
// Revoking a revoked key changes nothing and is not an error; another
// tenant's key is ErrNotFound.
func RevokeAPIKey(db *gorm.DB, tenantID, id int64, now time.Time) (*APIKey, error) {
	var k APIKey
	if err := db.Scopes(ForTenant(tenantID)).Where("id = ?", id).Take(&k).Error; err != nil {
		return nil, notFound(err)
	}
	if k.RevokedAt != nil {
		return &k, nil
	}
	if err := db.Model(&APIKey{}).Scopes(ForTenant(tenantID)).
		Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", now).Error; err != nil {
		return nil, fmt.Errorf("models: revoke api key: %w", err)
	}
	k.RevokedAt = &now
	return &k, nil
}

// Display is how a key is shown after it was made: its public part only.
func (k APIKey) Display() string { return apiKeyScheme + k.Prefix + "_…" }

// apiKeyPrefix is 12 lowercase letters and digits: 62 bits, so collisions
// between keys do not happen in practice (the unique index would refuse one).
func apiKeyPrefix() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	raw := make([]byte, apiKeyPrefixLen)
	_, _ = rand.Read(raw)
	for i := range raw {
		raw[i] = alphabet[int(raw[i])%len(alphabet)]
	}
	return string(raw)
}
