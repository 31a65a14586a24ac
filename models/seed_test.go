package models_test

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func insertTenant(t testing.TB, db *gorm.DB, slug string) int64 {
	t.Helper()
	now := time.Now().UTC()
	if err := db.Exec("INSERT INTO tenants (slug, name, principal_name, status, created_at, updated_at) VALUES (?, ?, ?, 'active', ?, ?)",
		slug, slug, "示例科技（深圳）有限公司", now, now).Error; err != nil {
		t.Fatal(err)
	}
	var id int64
	db.Raw("SELECT id FROM tenants WHERE slug = ?", slug).Scan(&id)
	return id
}

func TestSeedWritesAConsistentTenant(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := insertTenant(t, db, "seed-a")
		b := insertTenant(t, db, "seed-b")
		res, err := models.Seed(context.Background(), db, a, models.SeedOptions{Customers: 3000, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := models.Seed(context.Background(), db, b, models.SeedOptions{Customers: 500, Seed: 2}); err != nil {
			t.Fatal(err)
		}
		if res.Customers != 3000 || res.Apps != 6 {
			t.Fatalf("seed result %+v", res)
		}
		if ratio := float64(res.Identities) / float64(res.Customers); ratio < 2.2 || ratio > 3.5 {
			t.Errorf("identities per customer %.2f, want about 3", ratio)
		}
		count := func(sql string, args ...any) int64 {
			var n int64
			if err := db.Raw(sql, args...).Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		checks := []struct {
			name string
			sql  string
			want int64
		}{
			{"customers", "SELECT COUNT(*) FROM customers WHERE tenant_id = ?", 3000},
			{"identities", "SELECT COUNT(*) FROM identities WHERE tenant_id = ?", int64(res.Identities)},
			{"orphan customers", "SELECT COUNT(*) FROM customers c WHERE c.tenant_id = ? AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.tenant_id = c.tenant_id AND i.customer_id = c.id)", 0},
			{"identities on another tenant's customer", "SELECT COUNT(*) FROM identities i JOIN customers c ON c.id = i.customer_id WHERE i.tenant_id = ? AND c.tenant_id <> i.tenant_id", 0},
			{"unlinked customers with more than one identity", "SELECT COUNT(*) FROM (SELECT i.customer_id FROM identities i JOIN customers c ON c.id = i.customer_id WHERE i.tenant_id = ? AND c.unionid IS NULL GROUP BY i.customer_id HAVING COUNT(*) > 1) x", 0},
			{"unlinked customers without a reason", "SELECT COUNT(*) FROM customers WHERE tenant_id = ? AND unionid IS NULL AND unlinked_reason IS NULL", 0},
			{"identities whose namespace or reason differs from their customer's", "SELECT COUNT(*) FROM identities i JOIN customers c ON c.id = i.customer_id WHERE i.tenant_id = ? AND (COALESCE(i.open_account_id, 0) <> COALESCE(c.open_account_id, 0) OR COALESCE(i.unlinked_reason, '') <> COALESCE(c.unlinked_reason, ''))", 0},
			{"identity unionid differing from its customer's", "SELECT COUNT(*) FROM identities i JOIN customers c ON c.id = i.customer_id WHERE i.tenant_id = ? AND COALESCE(i.unionid, '') <> COALESCE(c.unionid, '')", 0},
		}
		for _, c := range checks {
			if got := count(c.sql, a); got != c.want {
				t.Errorf("%s: %d, want %d", c.name, got, c.want)
			}
		}
		if n := count("SELECT COUNT(*) FROM customers WHERE tenant_id = ? AND unionid IS NULL", a); n < 100 || n > 600 {
			t.Errorf("unlinked customers %d of 3000, want roughly a tenth", n)
		}
		if n := count("SELECT COUNT(*) FROM identities WHERE tenant_id = ? AND unsubscribed_at IS NOT NULL", a); n == 0 {
			t.Error("no unsubscribed followers generated")
		}
		if n := count("SELECT COUNT(*) FROM customers WHERE tenant_id = ?", b); n != 500 {
			t.Errorf("second tenant has %d customers, want 500", n)
		}
	})
}
