package views

import "time"

// SettingsView is the workspace's settings screen: who the workspace is, and
// the API keys its own systems call OneID with.
type SettingsView struct {
	Name, Slug, Principal string
	CreatedAt             time.Time
	// APIBase is where the JSON API answers, for the tenant's developers.
	APIBase     string
	CanReadKeys bool
	CanManage   bool
	Keys        []APIKeyRow
	// NewKey is a key just made: shown once, on the answer to the form.
	NewKey, NewKeyName string
	// KeyName is what was typed into a refused form.
	KeyName string
	Errors  FieldErrors
	Notice  string
}

// APIKeyRow is one key, by its public part only.
type APIKeyRow struct {
	ID         int64
	Name       string
	Display    string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}
