package models_test

import (
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func TestInvitations(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		tenant, owner := mustTenant(t, db, "Inviting Co", "boss@example.com")
		other, _ := mustTenant(t, db, "Elsewhere", "else@example.com")

		t.Run("StoresOnlyTheTokensHash", func(t *testing.T) {
			token, inv, err := models.CreateInvitation(db, tenant.ID, " New@Example.com", models.RoleMarketer, owner.ID, now)
			if err != nil {
				t.Fatal(err)
			}
			if inv.TokenHash == token || len(inv.TokenHash) != 64 || inv.Email != "new@example.com" {
				t.Fatalf("stored %+v for token %q", inv, token)
			}
			got, err := models.FindPendingInvitation(db, token, now)
			if err != nil || got.ID != inv.ID {
				t.Fatalf("found %+v, %v", got, err)
			}
		})
		t.Run("AcceptsOnceAndAddsTheMember", func(t *testing.T) {
			token, inv, _ := models.CreateInvitation(db, tenant.ID, "once@example.com", models.RoleViewer, owner.ID, now)
			u := &models.User{Email: "once@example.com", PasswordHash: "stub", Locale: "en"}
			if err := models.CreateUser(db, u); err != nil {
				t.Fatal(err)
			}
			m, err := models.AcceptInvitation(db, inv, u.ID, now.Add(time.Hour))
			if err != nil || m.Role != models.RoleViewer || m.TenantID != tenant.ID {
				t.Fatalf("membership %+v, %v", m, err)
			}
			if _, err := models.AcceptInvitation(db, inv, u.ID, now.Add(time.Hour)); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("second accept: %v, want ErrNotFound", err)
			}
			if _, err := models.FindPendingInvitation(db, token, now.Add(time.Hour)); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("used link still found: %v", err)
			}
		})
		t.Run("RefusesToInviteAMember", func(t *testing.T) {
			if _, _, err := models.CreateInvitation(db, tenant.ID, "BOSS@example.com", models.RoleViewer, owner.ID, now); !errors.Is(err, models.ErrAlreadyMember) {
				t.Fatalf("got %v, want ErrAlreadyMember", err)
			}
		})
		t.Run("ExpiresAfterSevenDays", func(t *testing.T) {
			token, _, _ := models.CreateInvitation(db, tenant.ID, "late@example.com", models.RoleViewer, owner.ID, now)
			if _, err := models.FindPendingInvitation(db, token, now.Add(models.InvitationTTL+time.Second)); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("expired link found: %v", err)
			}
		})
		t.Run("RevokesOnlyInItsTenant", func(t *testing.T) {
			token, inv, _ := models.CreateInvitation(db, tenant.ID, "revoke@example.com", models.RoleViewer, owner.ID, now)
			if _, err := models.RevokeInvitation(db, other.ID, inv.ID, now); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("revoked from another tenant: %v", err)
			}
			if _, err := models.RevokeInvitation(db, tenant.ID, inv.ID, now); err != nil {
				t.Fatal(err)
			}
			if _, err := models.FindPendingInvitation(db, token, now); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("revoked link found: %v", err)
			}
			pending, _ := models.ListPendingInvitations(db, tenant.ID, now)
			for _, p := range pending {
				if p.ID == inv.ID {
					t.Fatal("revoked invitation still listed")
				}
			}
		})
		t.Run("UnknownTokenIsNotFound", func(t *testing.T) {
			if _, err := models.FindPendingInvitation(db, "nope", now); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("got %v", err)
			}
		})
	})
}
