// Package migrations holds OneID's numbered, append-only schema migrations and
// the runner that applies them. One set of files serves MySQL and SQLite: a few
// placeholders stand for the parts the two engines spell differently.
//
//	{{id}}     the auto-increment BIGINT primary key column
//	{{table}}  table options (engine, charset, binary collation on MySQL)
//	{{mysql}}  at the start of a statement: run it on MySQL only
//	{{sqlite}} at the start of a statement: run it on SQLite only
//
// A released migration is never edited; change the schema with a new file.
package migrations

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

//go:embed *.sql
var files embed.FS

// Migration is one numbered file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// All returns every migration in order.
func All() ([]Migration, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("migrations: list: %w", err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		num, rest, ok := strings.Cut(name, "_")
		if !ok || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migrations: %s is not named NNNN_name.sql", name)
		}
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migrations: %s is not named NNNN_name.sql", name)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations: %s and %s share number %d", prev, name, v)
		}
		seen[v] = name
		body, err := files.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("migrations: read %s: %w", name, err)
		}
		out = append(out, Migration{Version: v, Name: strings.TrimSuffix(rest, ".sql"), SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Statements renders a migration for one dialect ("mysql" or "sqlite") and splits
// it into statements.
func (m Migration) Statements(dialect string) []string {
	id, table := "INTEGER PRIMARY KEY AUTOINCREMENT", ""
	if dialect == "mysql" {
		id = "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY"
		table = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
	}
	sql := strings.NewReplacer("{{id}}", id, "{{table}}", table).Replace(m.SQL)
	if dialect != "mysql" {
		// The SQLite driver parses a column back into time.Time only when it is
		// declared exactly DATE, DATETIME or TIMESTAMP.
		sql = strings.ReplaceAll(sql, "DATETIME(6)", "DATETIME")
	}
	var stmts []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	// Statements one engine spells its own way (DROP INDEX, say).
	kept := stmts[:0]
	for _, s := range stmts {
		for _, d := range []string{"mysql", "sqlite"} {
			if rest, ok := strings.CutPrefix(s, "{{"+d+"}}"); ok {
				s = strings.TrimSpace(rest)
				if d != dialect {
					s = ""
				}
			}
		}
		if s != "" {
			kept = append(kept, s)
		}
	}
	return kept
}

// Apply brings the schema up to date. Two instances starting at once are safe:
// on MySQL they queue on a named lock, on SQLite on the write lock of one
// transaction per migration.
func Apply(ctx context.Context, db *gorm.DB) (applied []int, err error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	dialect := db.Dialector.Name()
	err = db.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		if dialect == "mysql" {
			var got int
			if err := conn.Raw("SELECT GET_LOCK('oneid_migrations', 120)").Scan(&got).Error; err != nil {
				return fmt.Errorf("migrations: take lock: %w", err)
			}
			if got != 1 {
				return fmt.Errorf("migrations: another instance held the migration lock for 120 s")
			}
			defer conn.Exec("SELECT RELEASE_LOCK('oneid_migrations')")
		}
		if err := conn.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
  version INT NOT NULL PRIMARY KEY,
  name VARCHAR(200) NOT NULL,
  applied_at DATETIME(6) NOT NULL)`).Error; err != nil {
			return fmt.Errorf("migrations: create schema_migrations: %w", err)
		}
		for _, m := range all {
			ok, err := runOne(conn, dialect, m)
			if err != nil {
				return err
			}
			if ok {
				applied = append(applied, m.Version)
			}
		}
		return nil
	})
	return applied, err
}

func runOne(conn *gorm.DB, dialect string, m Migration) (bool, error) {
	done := func(tx *gorm.DB) (bool, error) {
		var n int64
		err := tx.Raw("SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.Version).Scan(&n).Error
		return n > 0, err
	}
	record := func(tx *gorm.DB) error {
		return tx.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			m.Version, m.Name, time.Now().UTC()).Error
	}
	if dialect == "mysql" {
		// MySQL commits DDL implicitly, so a transaction would not make a
		// migration atomic; the named lock is what keeps instances apart.
		if ok, err := done(conn); err != nil || ok {
			return false, err
		}
		for _, s := range m.Statements(dialect) {
			if err := conn.Exec(s).Error; err != nil {
				return false, fmt.Errorf("migrations: %04d_%s: %w\n%s", m.Version, m.Name, err, s)
			}
		}
		return true, record(conn)
	}
	applied := false
	err := conn.Transaction(func(tx *gorm.DB) error {
		if ok, err := done(tx); err != nil || ok {
			return err
		}
		for _, s := range m.Statements(dialect) {
			if err := tx.Exec(s).Error; err != nil {
				return fmt.Errorf("migrations: %04d_%s: %w\n%s", m.Version, m.Name, err, s)
			}
		}
		applied = true
		return record(tx)
	})
	return applied, err
}
