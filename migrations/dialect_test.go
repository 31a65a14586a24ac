package migrations

import (
	"slices"
	"testing"
)

// A statement marked {{mysql}} or {{sqlite}} runs on that engine only.
func TestStatementsForOneEngine(t *testing.T) {
	m := Migration{SQL: "-- a comment\n{{mysql}} ALTER TABLE t DROP INDEX i,\n  ADD INDEX i (a, b);\n{{sqlite}} DROP INDEX i;\n{{sqlite}} CREATE INDEX i ON t (a, b);\nCREATE INDEX j ON t (c);\n"}
	if got, want := m.Statements("mysql"), []string{"ALTER TABLE t DROP INDEX i,\n  ADD INDEX i (a, b)", "CREATE INDEX j ON t (c)"}; !slices.Equal(got, want) {
		t.Errorf("mysql: %q, want %q", got, want)
	}
	if got, want := m.Statements("sqlite"), []string{"DROP INDEX i", "CREATE INDEX i ON t (a, b)", "CREATE INDEX j ON t (c)"}; !slices.Equal(got, want) {
		t.Errorf("sqlite: %q, want %q", got, want)
	}
}
