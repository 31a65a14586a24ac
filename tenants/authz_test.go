package tenants_test

import (
	"context"
	"errors"
	"testing"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
	"oneid/tenants"
)

func TestRolePolicy(t *testing.T) {
	db := dbtest.SQLite(t)
	authz, err := tenants.NewAuthorizer(db)
	if err != nil {
		t.Fatal(err)
	}
	// PRODUCT.md "Who uses it": a viewer reads profiles and the dashboard; a
	// marketer also exports; an admin does everything. Issue 4: marketers and
	// viewers read the Apps page.
	want := map[tenants.Role][]tenants.Permission{
		tenants.Viewer:   {tenants.DashboardRead, tenants.CustomersRead, tenants.AppsRead},
		tenants.Marketer: {tenants.DashboardRead, tenants.CustomersRead, tenants.AppsRead, tenants.CustomersExport, tenants.ExportsRead, tenants.ExportsWrite},
		tenants.Admin:    tenants.AllPermissions(),
	}
	for _, role := range tenants.Roles() {
		granted := map[tenants.Permission]bool{}
		for _, p := range want[role] {
			granted[p] = true
		}
		for _, p := range tenants.AllPermissions() {
			if got := authz.Grants(role, 1, p); got != granted[p] {
				t.Errorf("%s %s: granted=%v, want %v", role, p, got, granted[p])
			}
		}
	}
}

func TestCheckReadsMembershipsAtEveryCall(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		tenant, admin, err := models.CreateTenant(db, models.NewTenant{Name: "Authz Co", PrincipalName: "x",
			Admin: models.User{Email: "admin@example.com", PasswordHash: "x", Locale: "en"}})
		if err != nil {
			t.Fatal(err)
		}
		other, _, err := models.CreateTenant(db, models.NewTenant{Name: "Other", PrincipalName: "x",
			Admin: models.User{Email: "other@example.com", PasswordHash: "x", Locale: "en"}})
		if err != nil {
			t.Fatal(err)
		}
		mk := &models.User{Email: "mk@example.com", PasswordHash: "x", Locale: "en"}
		if err := models.CreateUser(db, mk); err != nil {
			t.Fatal(err)
		}
		m, err := models.AddMember(db, tenant.ID, mk.ID, models.RoleMarketer)
		if err != nil {
			t.Fatal(err)
		}
		// Two authorizers stand for two instances of OneID.
		one, _ := tenants.NewAuthorizer(db)
		two, _ := tenants.NewAuthorizer(db)

		check := func(a *tenants.Authorizer, userID, tenantID int64, p tenants.Permission) (tenants.Role, bool, error) {
			t.Helper()
			return a.Check(ctx, userID, tenantID, p)
		}
		if role, ok, err := check(one, mk.ID, tenant.ID, tenants.ExportsRead); err != nil || !ok || role != tenants.Marketer {
			t.Fatalf("marketer exports: %s %v %v", role, ok, err)
		}
		if _, ok, _ := check(one, mk.ID, tenant.ID, tenants.MembersRead); ok {
			t.Fatal("a marketer may read members")
		}
		if _, ok, _ := check(two, admin.ID, tenant.ID, tenants.MembersWrite); !ok {
			t.Fatal("an admin may not manage members")
		}
		if _, _, err := check(one, admin.ID, other.ID, tenants.DashboardRead); !errors.Is(err, tenants.ErrNotMember) {
			t.Fatalf("admin of A in B: %v, want ErrNotMember", err)
		}

		t.Run("ARoleChangeHoldsAtTheNextCheckOnEveryInstance", func(t *testing.T) {
			if _, err := models.ChangeRole(db, tenant.ID, m.ID, models.RoleViewer); err != nil {
				t.Fatal(err)
			}
			for _, a := range []*tenants.Authorizer{one, two} {
				if role, ok, _ := check(a, mk.ID, tenant.ID, tenants.ExportsRead); ok || role != tenants.Viewer {
					t.Fatalf("after demotion: %s may export=%v", role, ok)
				}
			}
		})
		t.Run("ARemovalHoldsAtTheNextCheck", func(t *testing.T) {
			if _, err := models.RemoveMember(db, tenant.ID, m.ID); err != nil {
				t.Fatal(err)
			}
			for _, a := range []*tenants.Authorizer{one, two} {
				if _, _, err := check(a, mk.ID, tenant.ID, tenants.DashboardRead); !errors.Is(err, tenants.ErrNotMember) {
					t.Fatalf("after removal: %v, want ErrNotMember", err)
				}
			}
		})
	})
}

func TestScopeContext(t *testing.T) {
	ctx := context.Background()
	if _, ok := tenants.FromContext(ctx); ok || tenants.ID(ctx) != 0 {
		t.Fatal("a bare context has a tenant")
	}
	ctx = tenants.WithScope(ctx, tenants.Scope{TenantID: 7, Slug: "acme", Role: tenants.Viewer})
	if s, ok := tenants.FromContext(ctx); !ok || s.Slug != "acme" || tenants.ID(ctx) != 7 {
		t.Fatalf("scope %+v", s)
	}
}
