// Package dbtest gives tests a real, freshly migrated database of their own:
// MySQL (MariaDB) as in production, or the embedded SQLite.
//
// The MySQL server comes from ONEID_TEST_MYSQL_URL (default
// mysql://root@127.0.0.1:3306/). Outside CI an unreachable server skips the
// test; with CI=true it fails it, so a broken database never passes as green.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/migrations"
	"oneid/models"
)

// ServerURL is the MySQL server tests use, without a database name.
func ServerURL() string {
	if u := os.Getenv("ONEID_TEST_MYSQL_URL"); u != "" {
		return strings.TrimRight(u, "/") + "/"
	}
	return "mysql://root@127.0.0.1:3306/"
}

// MySQL creates a database named after the test, migrates it and drops it when
// the test ends. It returns the handle and the database's URL (for code under
// test that opens its own connection, such as a second process).
func MySQL(t testing.TB) *gorm.DB {
	db, _ := MySQLWithURL(t)
	return db
}

// MySQLWithURL is MySQL that also returns the URL of the new database.
func MySQLWithURL(t testing.TB) (*gorm.DB, string) {
	t.Helper()
	admin, err := models.Open(ServerURL() + "mysql")
	if err == nil {
		err = pingWithin(admin, 3*time.Second)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dbtest: MySQL is required under CI and cannot be reached at %s: %v", models.RedactURL(ServerURL()), err)
		}
		t.Skipf("dbtest: MySQL not reachable at %s (start it with `service mariadb start`): %v", models.RedactURL(ServerURL()), err)
	}
	name := "oneid_t_" + randomHex(6)
	if err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin").Error; err != nil {
		t.Fatalf("dbtest: create database: %v", err)
	}
	url := ServerURL() + name
	db, err := models.Open(url)
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", name, err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
		_ = admin.Exec("DROP DATABASE IF EXISTS " + name).Error
		if sqlDB, err := admin.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	if _, err := migrations.Apply(context.Background(), db); err != nil {
		t.Fatalf("dbtest: migrate %s: %v", name, err)
	}
	return db, url
}

// SQLite creates a migrated SQLite file in the test's temporary folder.
func SQLite(t testing.TB) *gorm.DB {
	db, _ := SQLiteWithURL(t)
	return db
}

// SQLiteWithURL is SQLite that also returns the database's URL.
func SQLiteWithURL(t testing.TB) (*gorm.DB, string) {
	t.Helper()
	url := "sqlite://" + filepath.Join(t.TempDir(), "oneid.db")
	db, err := models.Open(url)
	if err != nil {
		t.Fatalf("dbtest: open sqlite: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	if _, err := migrations.Apply(context.Background(), db); err != nil {
		t.Fatalf("dbtest: migrate sqlite: %v", err)
	}
	return db, url
}

// Each runs fn once against MySQL and once against SQLite, as subtests.
func Each(t *testing.T, fn func(t *testing.T, db *gorm.DB)) {
	t.Run("MySQL", func(t *testing.T) { fn(t, MySQL(t)) })
	t.Run("SQLite", func(t *testing.T) { fn(t, SQLite(t)) })
}

func pingWithin(db *gorm.DB, d time.Duration) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return sqlDB.PingContext(ctx)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
