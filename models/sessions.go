package models

import (
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// How long a session lives: it ends after 30 minutes without a request, and 12
// hours after sign-in whatever happens.
const (
	SessionIdleTimeout = 30 * time.Minute
	SessionMaxAge      = 12 * time.Hour
	// sessionTouchEvery spares a write on every request: last_seen_at moves at
	// most once a minute, which keeps the idle timeout within a minute.
	sessionTouchEvery = time.Minute
)

// Session is a signed-in browser. Only the SHA-256 of the session id is stored,
// so a copy of the table does not let anyone in; any instance serves any request.
type Session struct {
	IDHash          string `gorm:"primaryKey;column:id_hash"`
	UserID          int64
	CurrentTenantID int64
	CSRFToken       string `gorm:"column:csrf_token"`
	IP              string
	UserAgent       string
	CreatedAt       time.Time
	LastSeenAt      time.Time
}

// Expired reports whether the session has ended by idleness or age at now.
func (s *Session) Expired(now time.Time) bool {
	return now.Sub(s.LastSeenAt) > SessionIdleTimeout || now.Sub(s.CreatedAt) > SessionMaxAge
}

// CreateSession starts a session for a person and returns the id for the cookie
// (shown nowhere else) with the stored row.
func CreateSession(db *gorm.DB, userID, tenantID int64, ip, userAgent string, now time.Time) (string, *Session, error) {
	id := randomSecret(32)
	s := &Session{
		IDHash:          hashSecret(id),
		UserID:          userID,
		CurrentTenantID: tenantID,
		CSRFToken:       randomSecret(32),
		IP:              clipString(ip, 64),
		UserAgent:       clipString(userAgent, 255),
		CreatedAt:       now,
		LastSeenAt:      now,
	}
	if err := db.Create(s).Error; err != nil {
		return "", nil, fmt.Errorf("models: create session: %w", err)
	}
	return id, s, nil
}

// FindSession loads a session by the id from the cookie. It does not judge
// expiry: callers ask Expired with their clock.
func FindSession(db *gorm.DB, id string) (*Session, error) {
	if id == "" {
		return nil, ErrNotFound
	}
	var s Session
	if err := db.Where("id_hash = ?", hashSecret(id)).Take(&s).Error; err != nil {
		return nil, notFound(err)
	}
	return &s, nil
}

// FindSessionAndUser loads a session by the id from the cookie together with
// its person, in one query: what every signed-in request asks first. The user
// is nil when the person no longer exists. Like FindSession it does not judge
// expiry.
func FindSessionAndUser(db *gorm.DB, id string) (*Session, *User, error) {
	if id == "" {
		return nil, nil, ErrNotFound
	}
	rows, err := db.Raw(`SELECT s.id_hash, s.user_id, s.current_tenant_id, s.csrf_token, s.ip, s.user_agent, s.created_at,
s.last_seen_at, u.id, u.email, u.name, u.password_hash, u.locale, u.created_at, u.updated_at
FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?`, hashSecret(id)).Rows()
	if err != nil {
		return nil, nil, fmt.Errorf("models: find session: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("models: find session: %w", err)
		}
		return nil, nil, ErrNotFound
	}
	var s Session
	var uid sql.NullInt64
	var email, name, hash, locale sql.NullString
	var created, updated sql.NullTime
	if err := rows.Scan(&s.IDHash, &s.UserID, &s.CurrentTenantID, &s.CSRFToken, &s.IP, &s.UserAgent, &s.CreatedAt,
		&s.LastSeenAt, &uid, &email, &name, &hash, &locale, &created, &updated); err != nil {
		return nil, nil, fmt.Errorf("models: find session: %w", err)
	}
	if !uid.Valid {
		return &s, nil, rows.Err()
	}
	u := &User{ID: uid.Int64, Email: email.String, Name: name.String, PasswordHash: hash.String, Locale: locale.String,
		CreatedAt: created.Time, UpdatedAt: updated.Time}
	return &s, u, rows.Err()
}

// TouchSession records activity at now, at most once a minute.
func TouchSession(db *gorm.DB, s *Session, now time.Time) error {
	if now.Sub(s.LastSeenAt) < sessionTouchEvery {
		return nil
	}
	s.LastSeenAt = now
	if err := db.Model(&Session{}).Where("id_hash = ?", s.IDHash).Update("last_seen_at", now).Error; err != nil {
		return fmt.Errorf("models: touch session: %w", err)
	}
	return nil
}

// SetSessionTenant remembers the tenant a session last worked in.
func SetSessionTenant(db *gorm.DB, s *Session, tenantID int64) error {
	if s.CurrentTenantID == tenantID {
		return nil
	}
	s.CurrentTenantID = tenantID
	if err := db.Model(&Session{}).Where("id_hash = ?", s.IDHash).Update("current_tenant_id", tenantID).Error; err != nil {
		return fmt.Errorf("models: set session tenant: %w", err)
	}
	return nil
}

// DeleteSession ends a session (sign-out, expiry, rotation at sign-in).
func DeleteSession(db *gorm.DB, s *Session) error {
	if err := db.Where("id_hash = ?", s.IDHash).Delete(&Session{}).Error; err != nil {
		return fmt.Errorf("models: delete session: %w", err)
	}
	return nil
}

// PurgeSessions deletes the sessions that went idle before now. It walks the
// last_seen_at index only; the rare session past its 12 hours yet still in use
// is deleted by the request that finds it expired.
func PurgeSessions(db *gorm.DB, now time.Time) error {
	err := db.Where("last_seen_at < ?", now.Add(-SessionIdleTimeout)).Delete(&Session{}).Error
	if err != nil {
		return fmt.Errorf("models: purge sessions: %w", err)
	}
	return nil
}

// randomSecret is n random bytes in URL-safe base64.
func randomSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashSecret is how session ids, invitation tokens and API keys are stored.
func hashSecret(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func clipString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so the column never gets half a character.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
