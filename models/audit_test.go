package models_test

import (
	"fmt"
	"testing"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func TestAuditLog(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		a, _ := mustTenant(t, db, "Audit A", "aa@example.com")
		b, _ := mustTenant(t, db, "Audit B", "ab@example.com")
		for i := range 7 {
			if err := models.RecordAudit(db, a.ID, models.AuditEvent{Action: models.AuditSignIn, Actor: fmt.Sprint("a", i)}); err != nil {
				t.Fatal(err)
			}
			if err := models.RecordAudit(db, b.ID, models.AuditEvent{TenantID: a.ID, Action: models.AuditSignIn, Actor: fmt.Sprint("b", i)}); err != nil {
				t.Fatal(err)
			}
		}
		t.Run("PagesByIDNewestFirst", func(t *testing.T) {
			var seen []string
			before := int64(0)
			for pages := 0; ; pages++ {
				page, err := models.ListAudit(db, a.ID, before, 3)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range page.Events {
					seen = append(seen, e.Actor)
				}
				if page.Before == 0 {
					break
				}
				before = page.Before
			}
			if fmt.Sprint(seen) != "[a6 a5 a4 a3 a2 a1 a0]" {
				t.Fatalf("pages gave %v", seen)
			}
		})
		t.Run("KeepsTheGivenTenant", func(t *testing.T) {
			page, _ := models.ListAudit(db, b.ID, 0, 50)
			if len(page.Events) != 7 || page.Events[0].Actor != "b6" {
				t.Fatalf("tenant B's log: %+v", page.Events)
			}
		})
		t.Run("ACursorFromAnotherTenantShowsOnlyOwnEvents", func(t *testing.T) {
			aPage, _ := models.ListAudit(db, a.ID, 0, 1)
			page, _ := models.ListAudit(db, b.ID, aPage.Events[0].ID+1, 50)
			for _, e := range page.Events {
				if e.TenantID != b.ID {
					t.Fatalf("tenant A's event in B's log: %+v", e)
				}
			}
		})
	})
}
