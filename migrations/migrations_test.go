package migrations_test

import (
	"context"
	"sort"
	"sync"
	"testing"

	"gorm.io/gorm"

	"oneid/migrations"
	"oneid/migrations/dbtest"
	"oneid/models"
)

func TestApplyIsIdempotent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		again, err := migrations.Apply(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 0 {
			t.Fatalf("second Apply ran migrations %v again", again)
		}
	})
}

func TestTwoInstancesMigrateAtOnce(t *testing.T) {
	_, url := dbtest.MySQLWithURL(t)
	// dbtest already migrated; drop back to an empty schema by using a fresh db.
	admin, err := models.Open(dbtest.ServerURL() + "mysql")
	if err != nil {
		t.Fatal(err)
	}
	fresh := url + "_race"
	name := fresh[len(dbtest.ServerURL()):]
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE " + name) })
	var wg sync.WaitGroup
	results := make([][]int, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := models.Open(fresh)
			if err != nil {
				errs[i] = err
				return
			}
			results[i], errs[i] = migrations.Apply(context.Background(), db)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	all, _ := migrations.All()
	got := append(append([]int{}, results[0]...), results[1]...)
	sort.Ints(got)
	if len(got) != len(all) {
		t.Fatalf("two instances applied %v between them; want each of %d migrations exactly once", got, len(all))
	}
}

// Every table with a tenant_id column must be known to the tenant guard, and the
// guard must not list a table that does not exist.
func TestTenantTablesMatchSchema(t *testing.T) {
	db := dbtest.MySQL(t)
	var tables []string
	err := db.Raw(`SELECT table_name FROM information_schema.columns
		WHERE table_schema = DATABASE() AND column_name = 'tenant_id'`).Scan(&tables).Error
	if err != nil {
		t.Fatal(err)
	}
	inSchema := map[string]bool{}
	for _, name := range tables {
		inSchema[name] = true
		if !models.TenantTables[name] {
			t.Errorf("table %s has tenant_id but is missing from models.TenantTables", name)
		}
	}
	for name := range models.TenantTables {
		if !inSchema[name] {
			t.Errorf("models.TenantTables lists %s, which has no tenant_id column", name)
		}
	}
	var nullable []string
	db.Raw(`SELECT table_name FROM information_schema.columns
		WHERE table_schema = DATABASE() AND column_name = 'tenant_id' AND is_nullable = 'YES'`).Scan(&nullable)
	if len(nullable) > 0 {
		t.Errorf("tenant_id must be NOT NULL; nullable in %v", nullable)
	}
}
