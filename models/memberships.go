package models

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Roles a member can hold in a tenant. What each may do is tenants' business
// (casbin policy); the data layer only knows that a tenant keeps an admin.
const (
	RoleAdmin    = "admin"
	RoleMarketer = "marketer"
	RoleViewer   = "viewer"
)

// Roles lists the roles from most to least powerful.
func Roles() []string { return []string{RoleAdmin, RoleMarketer, RoleViewer} }

// ValidRole reports whether role is one of Roles.
func ValidRole(role string) bool {
	return role == RoleAdmin || role == RoleMarketer || role == RoleViewer
}

// ErrLastAdmin refuses to remove or demote a tenant's only admin.
var ErrLastAdmin = errors.New("models: a tenant must keep at least one admin")

// Membership says a person belongs to a tenant with a role.
type Membership struct {
	ID        int64 `gorm:"primaryKey"`
	TenantID  int64
	UserID    int64
	Role      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Member is a membership with the person's name and email, as the member list
// shows it.
type Member struct {
	MembershipID int64
	UserID       int64
	Email        string
	Name         string
	Role         string
	JoinedAt     time.Time
}

// ListMembers lists a tenant's members, admins first, then by email.
func ListMembers(db *gorm.DB, tenantID int64) ([]Member, error) {
	var out []Member
	err := db.Model(&Membership{}).Scopes(ForTenant(tenantID)).
		Select("memberships.id AS membership_id, memberships.user_id, users.email, users.name, memberships.role, memberships.created_at AS joined_at").
		Joins("JOIN users ON users.id = memberships.user_id").
		Order("CASE memberships.role WHEN 'admin' THEN 0 WHEN 'marketer' THEN 1 ELSE 2 END, users.email").
		Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: list members: %w", err)
	}
	return out, nil
}

// FindMembership loads one of a tenant's memberships by its id.
func FindMembership(db *gorm.DB, tenantID, id int64) (*Membership, error) {
	var m Membership
	if err := db.Scopes(ForTenant(tenantID)).Where("id = ?", id).Take(&m).Error; err != nil {
		return nil, notFound(err)
	}
	return &m, nil
}

// MemberRole is the role a person holds in a tenant, read from the database on
// every call: ErrNotFound when they are not a member.
func MemberRole(db *gorm.DB, tenantID, userID int64) (string, error) {
	var roles []string
	err := db.Model(&Membership{}).Scopes(ForTenant(tenantID)).
		Where("user_id = ?", userID).Limit(1).Pluck("role", &roles).Error
	if err != nil {
		return "", fmt.Errorf("models: member role: %w", err)
	}
	if len(roles) == 0 {
		return "", ErrNotFound
	}
	return roles[0], nil
}

// FindTenantAndRole loads a tenant by the slug in its URLs together with the
// role the person holds there, read from the database in the same query (""
// when they are not a member): what every tenant page asks first, in one
// round trip instead of two.
func FindTenantAndRole(db *gorm.DB, slug string, userID int64) (*Tenant, string, error) {
	if slug == "" {
		return nil, "", ErrNotFound
	}
	rows, err := db.Raw(`SELECT t.id, t.slug, t.name, t.principal_name, t.status, t.created_at, t.updated_at, m.role
FROM tenants t LEFT JOIN memberships m ON m.tenant_id = t.id AND m.user_id = ?
WHERE t.slug = ? LIMIT 1`, userID, slug).Rows()
	if err != nil {
		return nil, "", fmt.Errorf("models: tenant and role: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, "", fmt.Errorf("models: tenant and role: %w", err)
		}
		return nil, "", ErrNotFound
	}
	var t Tenant
	var role sql.NullString
	if err := rows.Scan(&t.ID, &t.Slug, &t.Name, &t.PrincipalName, &t.Status, &t.CreatedAt, &t.UpdatedAt, &role); err != nil {
		return nil, "", fmt.Errorf("models: tenant and role: %w", err)
	}
	return &t, role.String, rows.Err()
}

// AddMember makes a person a member of a tenant; a person already there keeps
// the role they have.
func AddMember(db *gorm.DB, tenantID, userID int64, role string) (*Membership, error) {
	if !ValidRole(role) {
		return nil, fmt.Errorf("models: unknown role %q", role)
	}
	m := Membership{TenantID: tenantID, UserID: userID, Role: role}
	err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&m).Error
	if err != nil {
		return nil, fmt.Errorf("models: add member: %w", err)
	}
	var got Membership
	if err := db.Scopes(ForTenant(tenantID)).Where("user_id = ?", userID).Take(&got).Error; err != nil {
		return nil, notFound(err)
	}
	return &got, nil
}

// ChangeRole gives a membership a new role. Demoting the last admin is refused
// with ErrLastAdmin. It returns the membership as it was before.
func ChangeRole(db *gorm.DB, tenantID, membershipID int64, role string) (*Membership, error) {
	if !ValidRole(role) {
		return nil, fmt.Errorf("models: unknown role %q", role)
	}
	var before Membership
	err := db.Transaction(func(tx *gorm.DB) error {
		m, err := lockMembershipForAdminChange(tx, tenantID, membershipID)
		if err != nil {
			return err
		}
		before = *m
		if m.Role == RoleAdmin && role != RoleAdmin {
			if err := ensureAnotherAdmin(tx, tenantID); err != nil {
				return err
			}
		}
		return tx.Model(&Membership{}).Scopes(ForTenant(tenantID)).Where("id = ?", membershipID).
			Updates(map[string]any{"role": role, "updated_at": time.Now().UTC()}).Error
	})
	if err != nil {
		return nil, err
	}
	return &before, nil
}

// RemoveMember takes a person out of a tenant. Removing the last admin is
// refused with ErrLastAdmin. It returns the removed membership.
func RemoveMember(db *gorm.DB, tenantID, membershipID int64) (*Membership, error) {
	var removed Membership
	err := db.Transaction(func(tx *gorm.DB) error {
		m, err := lockMembershipForAdminChange(tx, tenantID, membershipID)
		if err != nil {
			return err
		}
		removed = *m
		if m.Role == RoleAdmin {
			if err := ensureAnotherAdmin(tx, tenantID); err != nil {
				return err
			}
		}
		return tx.Scopes(ForTenant(tenantID)).Where("id = ?", membershipID).Delete(&Membership{}).Error
	})
	if err != nil {
		return nil, err
	}
	return &removed, nil
}

// lockMembershipForAdminChange locks every membership of the tenant, so two
// admins demoting each other at once cannot both succeed: the second one waits
// and then counts one admin.
func lockMembershipForAdminChange(tx *gorm.DB, tenantID, membershipID int64) (*Membership, error) {
	var all []Membership
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Scopes(ForTenant(tenantID)).
		Order("id").Find(&all).Error
	if err != nil {
		return nil, fmt.Errorf("models: lock memberships: %w", err)
	}
	for i := range all {
		if all[i].ID == membershipID {
			return &all[i], nil
		}
	}
	return nil, ErrNotFound
}

func ensureAnotherAdmin(tx *gorm.DB, tenantID int64) error {
	var admins int64
	err := tx.Model(&Membership{}).Scopes(ForTenant(tenantID)).Where("role = ?", RoleAdmin).Count(&admins).Error
	if err != nil {
		return fmt.Errorf("models: count admins: %w", err)
	}
	if admins <= 1 {
		return ErrLastAdmin
	}
	return nil
}

// Workspace is a tenant as one of its members sees it in the tenant switcher.
type Workspace struct {
	TenantID int64
	Slug     string
	Name     string
	Status   string
	Role     string
}

// WorkspacesOf lists the tenants a person belongs to, by name.
func WorkspacesOf(db *gorm.DB, userID int64) ([]Workspace, error) {
	var out []Workspace
	err := CrossTenant(db, "a person's own memberships, across the tenants they belong to").
		Model(&Membership{}).
		Select("tenants.id AS tenant_id, tenants.slug, tenants.name, tenants.status, memberships.role").
		Joins("JOIN tenants ON tenants.id = memberships.tenant_id").
		Where("memberships.user_id = ?", userID).
		Order("tenants.name, tenants.id").Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: workspaces of user: %w", err)
	}
	return out, nil
}
