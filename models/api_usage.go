package models

import (
	"fmt"
	"time"

	"gorm.io/gorm"
)

// apiKeyTouchStep: a key's last use is written at most this often, so a busy
// key does not rewrite its row on every call.
const apiKeyTouchStep = time.Minute

// TouchAPIKey records that a key was used now (to the minute).
func TouchAPIKey(db *gorm.DB, k *APIKey, now time.Time) error {
	now = dbTime(now)
	if k.LastUsedAt != nil && now.Sub(*k.LastUsedAt) < apiKeyTouchStep {
		return nil
	}
	err := db.Model(&APIKey{}).Scopes(ForTenant(k.TenantID)).Where("id = ?", k.ID).Update("last_used_at", now).Error
	if err != nil {
		return fmt.Errorf("models: touch api key: %w", err)
	}
	k.LastUsedAt = &now
	return nil
}
