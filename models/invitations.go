package models

import (
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// InvitationTTL is how long an invitation link works.
const InvitationTTL = 7 * 24 * time.Hour

// ErrAlreadyMember refuses to invite someone who is already in the tenant.
var ErrAlreadyMember = errors.New("models: this person is already a member")

// Invitation is a link that lets one email join a tenant with a role. Only the
// SHA-256 of its token is stored; the link is shown once, to the admin who made it.
type Invitation struct {
	ID         int64 `gorm:"primaryKey"`
	TenantID   int64
	Email      string
	Role       string
	TokenHash  string
	InvitedBy  int64
	ExpiresAt  time.Time
	AcceptedAt *time.Time
	AcceptedBy *int64
	RevokedAt  *time.Time
	CreatedAt  time.Time
}

// Pending reports whether the invitation can still be accepted at now.
func (inv *Invitation) Pending(now time.Time) bool {
	return inv.AcceptedAt == nil && inv.RevokedAt == nil && now.Before(inv.ExpiresAt)
}

// CreateInvitation invites email into a tenant with role and returns the token
// for the link with the stored invitation.
func CreateInvitation(db *gorm.DB, tenantID int64, email, role string, invitedBy int64, now time.Time) (string, *Invitation, error) {
	if !ValidRole(role) {
		return "", nil, fmt.Errorf("models: unknown role %q", role)
	}
	email = NormalizeEmail(email)
	if u, err := FindUserByEmail(db, email); err == nil {
		if _, err := MemberRole(db, tenantID, u.ID); err == nil {
			return "", nil, ErrAlreadyMember
		} else if !errors.Is(err, ErrNotFound) {
			return "", nil, err
		}
	} else if !errors.Is(err, ErrNotFound) {
		return "", nil, err
	}
	token := randomSecret(32)
	inv := &Invitation{
		TenantID:  tenantID,
		Email:     email,
		Role:      role,
		TokenHash: hashSecret(token),
		InvitedBy: invitedBy,
		ExpiresAt: now.Add(InvitationTTL),
		CreatedAt: now,
	}
	if err := db.Create(inv).Error; err != nil {
		return "", nil, fmt.Errorf("models: create invitation: %w", err)
	}
	return token, inv, nil
}

// ListPendingInvitations lists a tenant's invitations that can still be
// accepted, newest first.
func ListPendingInvitations(db *gorm.DB, tenantID int64, now time.Time) ([]Invitation, error) {
	var out []Invitation
	err := db.Scopes(ForTenant(tenantID)).
		Where("accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?", now).
		Order("id DESC").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: list invitations: %w", err)
	}
	return out, nil
}

// FindPendingInvitation finds the invitation a link's token opens. Used,
// revoked, expired and unknown tokens are all ErrNotFound.
func FindPendingInvitation(db *gorm.DB, token string, now time.Time) (*Invitation, error) {
	if token == "" {
		return nil, ErrNotFound
	}
	var inv Invitation
	err := CrossTenant(db, "an invitation is found by its secret token before its tenant is known").
		Where("token_hash = ?", hashSecret(token)).Take(&inv).Error
	if err != nil {
		return nil, notFound(err)
	}
	if !inv.Pending(now) {
		return nil, ErrNotFound
	}
	return &inv, nil
}

// AcceptInvitation makes userID a member with the invitation's role and uses
// the invitation up. Two accepts of one link race safely: the second finds it
// used. Someone who is already a member keeps their role.
func AcceptInvitation(db *gorm.DB, inv *Invitation, userID int64, now time.Time) (*Membership, error) {
	var m *Membership
	err := db.Transaction(func(tx *gorm.DB) error {
		var cur Invitation
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Scopes(ForTenant(inv.TenantID)).
			Where("id = ?", inv.ID).Take(&cur).Error
		if err != nil {
			return notFound(err)
		}
		if !cur.Pending(now) {
			return ErrNotFound
		}
		res := tx.Model(&Invitation{}).Scopes(ForTenant(inv.TenantID)).
			Where("id = ? AND accepted_at IS NULL", inv.ID).
			Updates(map[string]any{"accepted_at": now, "accepted_by": userID})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return ErrNotFound
		}
		m, err = AddMember(tx, inv.TenantID, userID, cur.Role)
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// RevokeInvitation cancels a pending invitation of the tenant.
func RevokeInvitation(db *gorm.DB, tenantID, id int64, now time.Time) (*Invitation, error) {
	var inv Invitation
	if err := db.Scopes(ForTenant(tenantID)).Where("id = ?", id).Take(&inv).Error; err != nil {
		return nil, notFound(err)
	}
	if !inv.Pending(now) {
		return nil, ErrNotFound
	}
	err := db.Model(&Invitation{}).Scopes(ForTenant(tenantID)).
		Where("id = ? AND accepted_at IS NULL AND revoked_at IS NULL", id).Update("revoked_at", now).Error
	if err != nil {
		return nil, fmt.Errorf("models: revoke invitation: %w", err)
	}
	return &inv, nil
}

// AcceptInvitationAsNewUser creates the invited person's account and accepts
// the invitation in one transaction: no account is left without its
// membership when the link was used a moment before.
func AcceptInvitationAsNewUser(db *gorm.DB, inv *Invitation, u *User, now time.Time) (*Membership, error) {
	var m *Membership
	err := db.Transaction(func(tx *gorm.DB) error {
		u.Email = inv.Email
		if err := CreateUser(tx, u); err != nil {
			return err
		}
		var err error
		m, err = AcceptInvitation(tx, inv, u.ID, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}
