package models

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Tenant statuses.
const (
	TenantActive    = "active"
	TenantSuspended = "suspended" // by the platform operator; its members see a notice and nothing else
)

// Tenant is one company on OneID (a workspace). The tenants table itself is not
// tenant-owned: a tenant is found by its slug before anyone knows its id.
type Tenant struct {
	ID            int64 `gorm:"primaryKey"`
	Slug          string
	Name          string
	PrincipalName string
	Status        string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Suspended reports whether the platform operator suspended the tenant.
func (t *Tenant) Suspended() bool { return t.Status == TenantSuspended }

// NewTenant is a workspace about to be created with its first admin.
type NewTenant struct {
	Name          string
	PrincipalName string
	// AdminUserID is an existing person who becomes the first admin; when it is
	// zero, Admin is created.
	AdminUserID int64
	Admin       User
}

// CreateTenant creates a tenant, its first admin (unless AdminUserID names an
// existing person) and the admin membership in one transaction. The slug is
// derived from the name, made unique with a random suffix when needed.
func CreateTenant(db *gorm.DB, nt NewTenant) (*Tenant, *User, error) {
	var tenant Tenant
	var admin User
	err := db.Transaction(func(tx *gorm.DB) error {
		if nt.AdminUserID > 0 {
			u, err := FindUser(tx, nt.AdminUserID)
			if err != nil {
				return err
			}
			admin = *u
		} else {
			admin = nt.Admin
			if err := CreateUser(tx, &admin); err != nil {
				return err
			}
		}
		slug, err := freeSlug(tx, nt.Name)
		if err != nil {
			return err
		}
		tenant = Tenant{Slug: slug, Name: strings.TrimSpace(nt.Name), PrincipalName: strings.TrimSpace(nt.PrincipalName), Status: TenantActive}
		if err := tx.Create(&tenant).Error; err != nil {
			return fmt.Errorf("models: create tenant: %w", err)
		}
		return tx.Create(&Membership{TenantID: tenant.ID, UserID: admin.ID, Role: RoleAdmin}).Error
	})
	if err != nil {
		return nil, nil, err
	}
	return &tenant, &admin, nil
}

// FindTenant loads a tenant by id.
func FindTenant(db *gorm.DB, id int64) (*Tenant, error) {
	var t Tenant
	if err := db.Where("id = ?", id).Take(&t).Error; err != nil {
		return nil, notFound(err)
	}
	return &t, nil
}

// FindTenantBySlug loads a tenant by the slug in its URLs.
func FindTenantBySlug(db *gorm.DB, slug string) (*Tenant, error) {
	var t Tenant
	if slug == "" {
		return nil, ErrNotFound
	}
	if err := db.Where("slug = ?", slug).Take(&t).Error; err != nil {
		return nil, notFound(err)
	}
	return &t, nil
}

// TenantSummary is a tenant as the platform operator lists it.
type TenantSummary struct {
	Tenant
	Members int64
}

// ListTenants lists every tenant with its member count, oldest first. Only the
// platform operator's CLI calls it.
func ListTenants(db *gorm.DB) ([]TenantSummary, error) {
	var out []TenantSummary
	err := CrossTenant(db, "the platform operator lists every tenant").
		Table("tenants").
		Select("tenants.*, (SELECT COUNT(*) FROM memberships WHERE memberships.tenant_id = tenants.id) AS members").
		Order("tenants.id").Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: list tenants: %w", err)
	}
	return out, nil
}

// SetTenantStatus suspends or reactivates a tenant.
func SetTenantStatus(db *gorm.DB, slug, status string) (*Tenant, error) {
	if status != TenantActive && status != TenantSuspended {
		return nil, fmt.Errorf("models: unknown tenant status %q", status)
	}
	t, err := FindTenantBySlug(db, slug)
	if err != nil {
		return nil, err
	}
	if err := db.Model(t).Update("status", status).Error; err != nil {
		return nil, fmt.Errorf("models: set tenant status: %w", err)
	}
	return t, nil
}

// freeSlug turns a company name into a URL slug nobody uses yet: the ASCII
// letters and digits of the name ("Acme Trading" → "acme-trading"), or a random
// one for names without enough of them (most Chinese names).
func freeSlug(db *gorm.DB, name string) (string, error) {
	base := slugify(name)
	if len(base) < 3 {
		base = "ws-" + randomSlugPart(6)
	}
	candidate := base
	for range 8 {
		var n int64
		if err := db.Model(&Tenant{}).Where("slug = ?", candidate).Count(&n).Error; err != nil {
			return "", fmt.Errorf("models: check slug: %w", err)
		}
		if n == 0 {
			return candidate, nil
		}
		candidate = base + "-" + randomSlugPart(4)
	}
	return "", errors.New("models: no free slug found")
}

func slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if b.Len() >= 40 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case b.Len() > 0 && !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}

// randomSlugPart is n characters of [a-z2-9] without look-alikes.
func randomSlugPart(n int) string {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
	raw := make([]byte, n)
	_, _ = rand.Read(raw)
	for i := range raw {
		raw[i] = alphabet[int(raw[i])%len(alphabet)]
	}
	return string(raw)
}

// notFound turns gorm's record-not-found into ErrNotFound and wraps the rest.
func notFound(err error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ErrNotFound
	}
	return fmt.Errorf("models: %w", err)
}
