package models

import (
	"fmt"
	"time"

	"gorm.io/gorm"
)

// OAuthTicket says who finished a web OAuth trip, for the tenant's backend to
// read once with its API key: the visitor's browser carries only the ticket.
type OAuthTicket struct {
	ID         int64 `gorm:"primaryKey"`
	TenantID   int64
	AppID      int64
	CustomerID int64
	OpenID     string `gorm:"column:openid"`
	Scope      string
	TicketHash string
	ExpiresAt  time.Time
	UsedAt     *time.Time
	CreatedAt  time.Time
}

// TableName keeps gorm from spelling the table "o_auth_tickets".
func (OAuthTicket) TableName() string { return "oauth_tickets" }

// OAuthTicketLifetime is how long the tenant's page has to trade a ticket:
// the page loads right after the redirect, so a few minutes are plenty.
const OAuthTicketLifetime = 5 * time.Minute

// CreateOAuthTicket records who a trip identified and returns the ticket to
// put in the return address. Only its hash is stored.
func CreateOAuthTicket(db *gorm.DB, tenantID, appID, customerID int64, openID, scope string, now time.Time) (string, error) {
	ticket, err := newOAuthState()
	if err != nil {
		return "", err
	}
	row := OAuthTicket{TenantID: tenantID, AppID: appID, CustomerID: customerID, OpenID: openID, Scope: scope,
		TicketHash: hashState(ticket), ExpiresAt: dbTime(now.Add(OAuthTicketLifetime)), CreatedAt: dbTime(now)}
	if err := db.Create(&row).Error; err != nil {
		return "", fmt.Errorf("models: create oauth ticket: %w", err)
	}
	return ticket, nil
}

// RedeemOAuthTicket accepts a ticket once, for the tenant whose trip made it,
// before it expires. Another tenant's, a used, expired or unknown ticket are
// all ErrNotFound and change nothing.
func RedeemOAuthTicket(db *gorm.DB, tenantID int64, ticket string, now time.Time) (*OAuthTicket, error) {
	if ticket == "" || len(ticket) > 128 {
		return nil, ErrNotFound
	}
	now = dbTime(now)
	hash := hashState(ticket)
	var found *OAuthTicket
	err := RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		found = nil
		res := tx.Model(&OAuthTicket{}).Scopes(ForTenant(tenantID)).
			Where("ticket_hash = ? AND used_at IS NULL AND expires_at > ?", hash, now).
			Update("used_at", now)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		var t OAuthTicket
		if err := tx.Scopes(ForTenant(tenantID)).Where("ticket_hash = ?", hash).Take(&t).Error; err != nil {
			return err
		}
		found = &t
		return nil
	})
	if err != nil {
		return nil, notFound(err)
	}
	return found, nil
}

// PurgeOAuthTickets deletes up to limit tickets that expired before before.
func PurgeOAuthTickets(db *gorm.DB, before time.Time, limit int) (int64, error) {
	return purgeOldest(db, &OAuthTicket{}, "expired OAuth tickets of every tenant are purged together",
		"expires_at", limit, "expires_at < ?", dbTime(before))
}
