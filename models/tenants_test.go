package models_test

import (
	"errors"
	"testing"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func TestCreateTenant(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		t.Run("DerivesSlugFromLatinName", func(t *testing.T) {
			tenant, _ := mustTenant(t, db, "Acme Trading Co.", "acme@example.com")
			if tenant.Slug != "acme-trading-co" {
				t.Fatalf("slug %q, want acme-trading-co", tenant.Slug)
			}
			again, _ := mustTenant(t, db, "ACME trading co", "acme2@example.com")
			if again.Slug == tenant.Slug || len(again.Slug) != len("acme-trading-co")+5 {
				t.Fatalf("second slug %q should be the first with a suffix", again.Slug)
			}
		})
		t.Run("GivesChineseNamesARandomSlug", func(t *testing.T) {
			tenant, _ := mustTenant(t, db, "星巴克", "sbux@example.com")
			if len(tenant.Slug) != len("ws-")+6 || tenant.Slug[:3] != "ws-" {
				t.Fatalf("slug %q, want ws-xxxxxx", tenant.Slug)
			}
		})
		t.Run("MakesTheFirstUserAnAdmin", func(t *testing.T) {
			tenant, user := mustTenant(t, db, "Admin Check", "Boss@Example.com ")
			if user.Email != "boss@example.com" {
				t.Fatalf("email stored as %q, want it normalised", user.Email)
			}
			role, err := models.MemberRole(db, tenant.ID, user.ID)
			if err != nil || role != models.RoleAdmin {
				t.Fatalf("role %q, %v; want admin", role, err)
			}
		})
		t.Run("RefusesATakenEmailAndLeavesNothingBehind", func(t *testing.T) {
			before, _ := models.ListTenants(db)
			_, _, err := models.CreateTenant(db, models.NewTenant{Name: "Dup", PrincipalName: "x",
				Admin: models.User{Email: "acme@example.com", PasswordHash: "x", Locale: "en"}})
			if !errors.Is(err, models.ErrEmailTaken) {
				t.Fatalf("got %v, want ErrEmailTaken", err)
			}
			after, _ := models.ListTenants(db)
			if len(after) != len(before) {
				t.Fatalf("a tenant was left behind: %d → %d", len(before), len(after))
			}
		})
		t.Run("AddsAnExistingPersonAsAdmin", func(t *testing.T) {
			_, user := mustTenant(t, db, "Agency One", "agent@example.com")
			second, _, err := models.CreateTenant(db, models.NewTenant{Name: "Agency Two", PrincipalName: "x", AdminUserID: user.ID})
			if err != nil {
				t.Fatal(err)
			}
			ws, err := models.WorkspacesOf(db, user.ID)
			if err != nil || len(ws) != 2 {
				t.Fatalf("workspaces %v, %v; want two", ws, err)
			}
			if role, _ := models.MemberRole(db, second.ID, user.ID); role != models.RoleAdmin {
				t.Fatalf("role %q in the second tenant, want admin", role)
			}
		})
		t.Run("SuspendsAndLists", func(t *testing.T) {
			tenant, _ := mustTenant(t, db, "To Suspend", "sus@example.com")
			if _, err := models.SetTenantStatus(db, tenant.Slug, models.TenantSuspended); err != nil {
				t.Fatal(err)
			}
			got, err := models.FindTenantBySlug(db, tenant.Slug)
			if err != nil || !got.Suspended() {
				t.Fatalf("tenant %+v, %v; want suspended", got, err)
			}
			list, err := models.ListTenants(db)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range list {
				if s.Slug == tenant.Slug && (s.Members != 1 || s.Status != models.TenantSuspended) {
					t.Fatalf("listed as %+v", s)
				}
			}
			if _, err := models.SetTenantStatus(db, "no-such-tenant", models.TenantSuspended); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("suspending an unknown slug: %v, want ErrNotFound", err)
			}
		})
	})
}

// mustTenant creates a tenant with an admin whose password hash is a stub.
func mustTenant(t *testing.T, db *gorm.DB, name, email string) (*models.Tenant, *models.User) {
	t.Helper()
	tenant, user, err := models.CreateTenant(db, models.NewTenant{Name: name, PrincipalName: "示例（上海）有限公司",
		Admin: models.User{Email: email, Name: name, PasswordHash: "stub", Locale: "zh-CN"}})
	if err != nil {
		t.Fatal(err)
	}
	return tenant, user
}

// mustMember adds a new person to a tenant with a role.
func mustMember(t *testing.T, db *gorm.DB, tenantID int64, email, role string) (*models.User, *models.Membership) {
	t.Helper()
	u := &models.User{Email: email, Name: email, PasswordHash: "stub", Locale: "en"}
	if err := models.CreateUser(db, u); err != nil {
		t.Fatal(err)
	}
	m, err := models.AddMember(db, tenantID, u.ID, role)
	if err != nil {
		t.Fatal(err)
	}
	return u, m
}
