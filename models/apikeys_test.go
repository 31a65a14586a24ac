package models_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func TestAPIKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		tenant, _ := mustTenant(t, db, "Key Co", "k@example.com")
		key, stored, err := models.CreateAPIKey(db, tenant.ID, "crm", now)
		if err != nil {
			t.Fatal(err)
		}
		t.Run("StoresOnlyAHashAndThePrefix", func(t *testing.T) {
			if !strings.HasPrefix(key, "oneid_"+stored.Prefix+"_") || strings.Contains(stored.KeyHash, key) || len(stored.KeyHash) != 64 {
				t.Fatalf("key %q stored as %+v", key, stored)
			}
		})
		t.Run("FindsTheKey", func(t *testing.T) {
			got, err := models.FindAPIKey(db, key)
			if err != nil || got.TenantID != tenant.ID || got.Name != "crm" {
				t.Fatalf("found %+v, %v", got, err)
			}
		})
		t.Run("RefusesAKeyWithTheRightPrefixAndWrongSecret", func(t *testing.T) {
			forged := key[:len(key)-4] + "AAAA"
			if _, err := models.FindAPIKey(db, forged); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("got %v", err)
			}
			for _, bad := range []string{"", "oneid_", "oneid_short", "x" + key} {
				if _, err := models.FindAPIKey(db, bad); !errors.Is(err, models.ErrNotFound) {
					t.Fatalf("%q: got %v", bad, err)
				}
			}
		})
		t.Run("ListsPerTenant", func(t *testing.T) {
			keys, err := models.ListAPIKeys(db, tenant.ID)
			if err != nil || len(keys) != 1 {
				t.Fatalf("keys %+v, %v", keys, err)
			}
		})
	})
}
