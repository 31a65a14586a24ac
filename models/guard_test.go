package models_test

import (
	"errors"
	"testing"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"oneid/migrations/dbtest"
	"oneid/models"
)

// The tenant guard is the last line of isolation: whatever a handler or job
// forgets, a statement on a tenant-owned table that does not say which tenant
// it is for never reaches the database.
func TestTenantGuard(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := guardFixture(t, db, "guard-a")
		b := guardFixture(t, db, "guard-b")

		refused := map[string]func() error{
			"UnscopedFind": func() error {
				var ms []models.Membership
				return db.Find(&ms).Error
			},
			"UnscopedFindByID": func() error {
				var m models.Membership
				return db.Where("id = ?", 1).Take(&m).Error
			},
			"UnscopedCount": func() error {
				var n int64
				return db.Model(&models.Membership{}).Count(&n).Error
			},
			"UnscopedUpdate": func() error {
				return db.Model(&models.Membership{}).Where("user_id = ?", a.user).Update("role", "viewer").Error
			},
			"UnscopedDelete": func() error {
				return db.Where("user_id = ?", a.user).Delete(&models.Membership{}).Error
			},
			"TenantTestOrdWithAnotherCondition": func() error {
				var ms []models.Membership
				return db.Where("tenant_id = ?", a.tenant).Or("user_id = ?", b.user).Find(&ms).Error
			},
			"OtherConditionOrdWithTenantTest": func() error {
				var ms []models.Membership
				return db.Where("user_id = ?", b.user).Or("tenant_id = ?", a.tenant).Find(&ms).Error
			},
			"TenantTestOrdInsideOneExpression": func() error {
				var ms []models.Membership
				return db.Where("tenant_id = ? OR 1 = 1", a.tenant).Find(&ms).Error
			},
			"ScopeOrdAway": func() error {
				var ms []models.Membership
				return db.Scopes(models.ForTenant(a.tenant)).Or("1 = 1").Find(&ms).Error
			},
			"TenantColumnNotCompared": func() error {
				var ms []models.Membership
				return db.Where("tenant_id IS NOT NULL").Find(&ms).Error
			},
			"TenantZero": func() error {
				var ms []models.Membership
				return db.Scopes(models.ForTenant(0)).Find(&ms).Error
			},
			"RawSelectWithoutTenant": func() error {
				var ids []int64
				return db.Raw("SELECT id FROM memberships WHERE user_id = ?", a.user).Scan(&ids).Error
			},
			"RawSelectJoiningATenantTable": func() error {
				var ids []int64
				return db.Raw("SELECT users.id FROM users JOIN memberships ON memberships.user_id = users.id").Scan(&ids).Error
			},
			"RawSelectWithOrdTenantTest": func() error {
				var ids []int64
				return db.Raw("SELECT id FROM memberships WHERE tenant_id = ? OR 1 = 1", a.tenant).Scan(&ids).Error
			},
			"RawSelectWithTenantTestAfterOr": func() error {
				var ids []int64
				return db.Raw("SELECT id FROM memberships WHERE user_id = ? OR tenant_id = ?", a.user, a.tenant).Scan(&ids).Error
			},
			"RawUpdateWithoutTenant": func() error {
				return db.Exec("UPDATE memberships SET role = 'viewer' WHERE user_id = ?", a.user).Error
			},
			"RawDeleteWithoutTenant": func() error {
				return db.Exec("DELETE FROM audit_events WHERE id > 0").Error
			},
			"CreateWithoutTenantID": func() error {
				return db.Create(&models.Membership{UserID: a.user, Role: models.RoleViewer}).Error
			},
			"CreateBatchWithOneRowWithoutTenantID": func() error {
				rows := []models.AuditEvent{{TenantID: a.tenant, Action: "x"}, {Action: "y"}}
				return db.Create(&rows).Error
			},
		}
		for name, run := range refused {
			t.Run("Refuses"+name, func(t *testing.T) {
				// Twice: raw SQL's verdict is remembered per text.
				for range 2 {
					if err := run(); !errors.Is(err, models.ErrUnscopedQuery) {
						t.Fatalf("want ErrUnscopedQuery, got %v", err)
					}
				}
			})
		}
		if n := guardCount(t, db, a.tenant); n != 1 {
			t.Fatalf("refused statements changed tenant A: %d memberships, want 1", n)
		}
		if n := guardCount(t, db, b.tenant); n != 1 {
			t.Fatalf("refused statements changed tenant B: %d memberships, want 1", n)
		}

		allowed := map[string]func() (int, error){
			"ScopedFind": func() (int, error) {
				var ms []models.Membership
				err := db.Scopes(models.ForTenant(a.tenant)).Find(&ms).Error
				return len(ms), err
			},
			"ScopedFindWithGroupedOr": func() (int, error) {
				var ms []models.Membership
				err := db.Scopes(models.ForTenant(a.tenant)).
					Where(clause.Or(clause.Eq{Column: "role", Value: "admin"}, clause.Eq{Column: "role", Value: "viewer"})).
					Find(&ms).Error
				return len(ms), err
			},
			"ScopedWithJoin": func() (int, error) {
				ms, err := models.ListMembers(db, a.tenant)
				return len(ms), err
			},
			"WhereTenantEquals": func() (int, error) {
				var ms []models.Membership
				err := db.Where("tenant_id = ?", a.tenant).Find(&ms).Error
				return len(ms), err
			},
			"RawSelectWithTenant": func() (int, error) {
				var ids []int64
				err := db.Raw("SELECT id FROM memberships WHERE tenant_id = ? AND (role = 'admin' OR role = 'viewer')", a.tenant).Scan(&ids).Error
				return len(ids), err
			},
			"CrossTenantWithReason": func() (int, error) {
				var ms []models.Membership
				err := models.CrossTenant(db, "test: counts every tenant").Find(&ms).Error
				return len(ms), err
			},
			"UntenantedTable": func() (int, error) {
				var us []models.User
				err := db.Find(&us).Error
				return len(us), err
			},
		}
		want := map[string]int{"CrossTenantWithReason": 2, "UntenantedTable": 2}
		for name, run := range allowed {
			t.Run("Allows"+name, func(t *testing.T) {
				if _, err := run(); err != nil {
					t.Fatal(err)
				}
				n, err := run()
				if err != nil {
					t.Fatal(err)
				}
				w, ok := want[name]
				if !ok {
					w = 1
				}
				if n != w {
					t.Fatalf("got %d rows, want %d", n, w)
				}
			})
		}
		t.Run("AllowsSchemaChanges", func(t *testing.T) {
			if err := db.Exec("CREATE INDEX ix_guard_test ON memberships (role)").Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Exec("ALTER TABLE audit_events ADD COLUMN guard_test INT NULL").Error; err != nil {
				t.Fatal(err)
			}
		})
		t.Run("RefusesTruncate", func(t *testing.T) {
			if err := db.Exec("TRUNCATE TABLE audit_events").Error; !errors.Is(err, models.ErrUnscopedQuery) {
				t.Fatalf("got %v", err)
			}
		})
		t.Run("AllowsCreateWithTenantID", func(t *testing.T) {
			if err := models.RecordAudit(db, a.tenant, models.AuditEvent{Action: "test"}); err != nil {
				t.Fatal(err)
			}
		})
	})
}

type guardTenant struct{ tenant, user int64 }

// guardFixture makes a tenant with one admin, straight through the models.
func guardFixture(t *testing.T, db *gorm.DB, name string) guardTenant {
	t.Helper()
	tenant, user, err := models.CreateTenant(db, models.NewTenant{
		Name: name, PrincipalName: "测试科技（深圳）有限公司",
		Admin: models.User{Email: name + "@example.com", Name: name, PasswordHash: "x", Locale: "zh-CN"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return guardTenant{tenant: tenant.ID, user: user.ID}
}

func guardCount(t *testing.T, db *gorm.DB, tenantID int64) int64 {
	t.Helper()
	var n int64
	if err := db.Model(&models.Membership{}).Scopes(models.ForTenant(tenantID)).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}
