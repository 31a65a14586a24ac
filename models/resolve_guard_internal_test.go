package models

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// Resolve's statements run below gorm's callbacks; its exec and query check
// them as the tenant guard checks raw SQL, before anything reaches the
// database.
func TestResolverStatementsAreGuarded(t *testing.T) {
	db, err := Open("sqlite://" + filepath.Join(t.TempDir(), "guard.db"))
	if err != nil {
		t.Fatal(err)
	}
	// Just the columns used here (the migrations package imports this one).
	if err := db.Exec("CREATE TABLE identities (id INTEGER PRIMARY KEY, tenant_id INTEGER, openid TEXT, subscribed INTEGER)").Error; err != nil {
		t.Fatal(err)
	}
	r := &resolver{tx: db, tenantID: 1}
	for _, q := range []string{
		"UPDATE identities SET subscribed = 0 WHERE id IN (?)",
		"DELETE FROM customers WHERE id = ?",
		"UPDATE customers SET nickname = 'x' WHERE id = ? OR tenant_id = 1",
	} {
		if _, err := r.exec(q, 1); !errors.Is(err, ErrUnscopedQuery) {
			t.Errorf("exec %q: %v, want ErrUnscopedQuery", q, err)
		}
	}
	if _, err := r.query("SELECT id FROM identities WHERE openid = ?", "o1"); !errors.Is(err, ErrUnscopedQuery) {
		t.Errorf("an unscoped read: %v, want ErrUnscopedQuery", err)
	}
	if _, err := r.exec("UPDATE identities SET subscribed = 0 WHERE tenant_id = ? AND id IN (?)", 1, 1); err != nil {
		t.Errorf("a scoped write: %v", err)
	}
	rows, err := r.query("SELECT id FROM identities WHERE tenant_id = ? AND openid = ?", 1, "o1")
	if err != nil {
		t.Fatalf("a scoped read: %v", err)
	}
	rows.Close()
}

// The guard reads a long statement by its shape without placeholder lists:
// the shape keeps every name and tenant test, and its verdict is the
// statement's.
func TestPlaceholderShape(t *testing.T) {
	rows := strings.Repeat("(?,?,?),", 999) + "(?,?,?)"
	ins := "INSERT INTO identities (tenant_id, app_id, openid) VALUES " + rows + " ON DUPLICATE KEY UPDATE openid = VALUES(openid)"
	if got, want := placeholderShape(ins), "INSERT INTO identities (tenant_id, app_id, openid) VALUES (?) ON DUPLICATE KEY UPDATE openid = VALUES(openid)"; got != want {
		t.Errorf("shape:\n got %q\nwant %q", got, want)
	}
	in := "UPDATE identities SET last_sync_pass = ? WHERE tenant_id = ? AND id IN (" + strings.Repeat("?,", 4000) + "?)"
	if got, want := placeholderShape(in), "UPDATE identities SET last_sync_pass = ? WHERE tenant_id = ? AND id IN (?) "; got != want {
		t.Errorf("shape:\n got %q\nwant %q", got, want)
	}
	for q, want := range map[string]string{
		ins: "",
		in:  "",
		"UPDATE identities SET subscribed = 0 WHERE id IN (" + strings.Repeat("?,", 4000) + "?)":                           "identities",
		"UPDATE identities SET subscribed = 0 WHERE tenant_id IN (" + strings.Repeat("?,", 4000) + "?) OR openid = ?":      "identities",
		"DELETE FROM customers WHERE id IN (" + strings.Repeat("?,", 4000) + "?) AND (tenant_id = ? OR tenant_id IS NULL)": "customers",
	} {
		if got := rawUnscopedTable(q); got != want {
			t.Errorf("%.80s…: unscoped table %q, want %q", q, got, want)
		}
	}
}
