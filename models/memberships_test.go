package models_test

import (
	"errors"
	"sync"
	"testing"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func TestMemberships(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		tenant, owner := mustTenant(t, db, "Members Co", "owner@example.com")
		other, _ := mustTenant(t, db, "Other Co", "other@example.com")
		_, mk := mustMember(t, db, tenant.ID, "mk@example.com", models.RoleMarketer)
		ownerMembership := findMembershipOf(t, db, tenant.ID, owner.ID)

		t.Run("ListsMembersAdminsFirst", func(t *testing.T) {
			ms, err := models.ListMembers(db, tenant.ID)
			if err != nil || len(ms) != 2 || ms[0].Email != "owner@example.com" || ms[1].Role != models.RoleMarketer {
				t.Fatalf("members %+v, %v", ms, err)
			}
		})
		t.Run("RefusesToDemoteTheLastAdmin", func(t *testing.T) {
			if _, err := models.ChangeRole(db, tenant.ID, ownerMembership, models.RoleViewer); !errors.Is(err, models.ErrLastAdmin) {
				t.Fatalf("got %v, want ErrLastAdmin", err)
			}
		})
		t.Run("RefusesToRemoveTheLastAdmin", func(t *testing.T) {
			if _, err := models.RemoveMember(db, tenant.ID, ownerMembership); !errors.Is(err, models.ErrLastAdmin) {
				t.Fatalf("got %v, want ErrLastAdmin", err)
			}
		})
		t.Run("DoesNotFindAnotherTenantsMembership", func(t *testing.T) {
			if _, err := models.ChangeRole(db, other.ID, mk.ID, models.RoleAdmin); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("got %v, want ErrNotFound", err)
			}
			if _, err := models.RemoveMember(db, other.ID, mk.ID); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("got %v, want ErrNotFound", err)
			}
			if role, _ := models.MemberRole(db, tenant.ID, mk.UserID); role != models.RoleMarketer {
				t.Fatalf("role became %q", role)
			}
		})
		t.Run("ChangesRoles", func(t *testing.T) {
			before, err := models.ChangeRole(db, tenant.ID, mk.ID, models.RoleAdmin)
			if err != nil || before.Role != models.RoleMarketer {
				t.Fatalf("before %+v, %v", before, err)
			}
			// Now there are two admins: the owner may step down.
			if _, err := models.ChangeRole(db, tenant.ID, ownerMembership, models.RoleViewer); err != nil {
				t.Fatal(err)
			}
			if _, err := models.ChangeRole(db, tenant.ID, ownerMembership, models.RoleAdmin); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("TwoAdminsDemotingEachOtherLeaveOne", func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, id := range []int64{ownerMembership, mk.ID} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = models.ChangeRole(db, tenant.ID, id, models.RoleViewer)
				}()
			}
			wg.Wait()
			var admins int64
			db.Model(&models.Membership{}).Scopes(models.ForTenant(tenant.ID)).Where("role = ?", models.RoleAdmin).Count(&admins)
			if admins != 1 {
				t.Fatalf("%d admins left (errors %v), want 1", admins, errs)
			}
		})
		t.Run("FindsTheTenantWithTheRoleOfEachPerson", func(t *testing.T) {
			// (The subtests before changed roles: compare with MemberRole.)
			for _, user := range []int64{owner.ID, mk.UserID} {
				want, err := models.MemberRole(db, tenant.ID, user)
				if err != nil {
					t.Fatal(err)
				}
				got, role, err := models.FindTenantAndRole(db, tenant.Slug, user)
				if err != nil || got.ID != tenant.ID || got.Name != "Members Co" || got.Status != tenant.Status || role != want {
					t.Fatalf("user %d: tenant %+v role %q, %v; want role %q", user, got, role, err, want)
				}
			}
			if _, err := models.ChangeRole(db, tenant.ID, ownerMembership, models.RoleAdmin); err != nil {
				t.Fatal(err)
			}
			if _, err := models.ChangeRole(db, tenant.ID, mk.ID, models.RoleMarketer); err != nil {
				t.Fatal(err)
			}
			if _, role, err := models.FindTenantAndRole(db, tenant.Slug, mk.UserID); err != nil || role != models.RoleMarketer {
				t.Fatalf("after a role change: role %q, %v", role, err)
			}
			// A member of another tenant is no member here.
			if got, role, err := models.FindTenantAndRole(db, other.Slug, mk.UserID); err != nil || got.ID != other.ID || role != "" {
				t.Fatalf("other tenant: %+v role %q, %v", got, role, err)
			}
			for _, slug := range []string{"", "no-such-tenant"} {
				if _, _, err := models.FindTenantAndRole(db, slug, owner.ID); !errors.Is(err, models.ErrNotFound) {
					t.Fatalf("slug %q: %v, want ErrNotFound", slug, err)
				}
			}
		})
		t.Run("RemovesAMember", func(t *testing.T) {
			_, v := mustMember(t, db, tenant.ID, "leaving@example.com", models.RoleViewer)
			if _, err := models.RemoveMember(db, tenant.ID, v.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := models.MemberRole(db, tenant.ID, v.UserID); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("still a member: %v", err)
			}
		})
	})
}

func findMembershipOf(t *testing.T, db *gorm.DB, tenantID, userID int64) int64 {
	t.Helper()
	var m models.Membership
	if err := db.Scopes(models.ForTenant(tenantID)).Where("user_id = ?", userID).Take(&m).Error; err != nil {
		t.Fatal(err)
	}
	return m.ID
}
