package models

import (
	"regexp"
	"strings"
	"testing"
)

// An ON DUPLICATE KEY UPDATE that assigns the AUTO_INCREMENT column (even
// "id = id", or the "id = LAST_INSERT_ID(id)" idiom) loses rows under
// concurrent multi-row inserts on MariaDB: see upsert_anomaly_test.go. Resolve's
// upserts insert many rows at once from many writers, so none may assign id.
func TestUpsertAssignmentsLeaveIDAlone(t *testing.T) {
	r := &resolver{mysql: true}
	rewrite := make([]string, len(identityRewriteColumns))
	for i, c := range identityRewriteColumns {
		rewrite[i] = c + " = " + r.in(c) // as rewriteIdentities builds it
	}
	assignsID := regexp.MustCompile(`(?i)(UPDATE|,)\s*` + "`?" + `id` + "`?" + `\s*=`)
	for name, set := range map[string][]string{
		"linked customers (writeLinkedCustomers)":              r.customerMerge(false),
		"kept unlinked customers (writeKeptUnlinkedCustomers)": r.customerMerge(true),
		"identity rewrite (rewriteIdentities)":                 rewrite,
	} {
		if len(set) == 0 {
			t.Fatalf("%s: no assignments", name)
		}
		suffix := r.upsertSuffix([]string{"id"}, set)
		if !strings.HasPrefix(suffix, "ON DUPLICATE KEY UPDATE ") {
			t.Fatalf("%s: %q is not an ON DUPLICATE KEY clause", name, suffix)
		}
		if assignsID.MatchString(suffix) || strings.Contains(strings.ToUpper(suffix), "LAST_INSERT_ID") {
			t.Errorf("%s assigns the AUTO_INCREMENT column: %s", name, suffix)
		}
	}
	// The pattern itself catches what it must.
	for _, bad := range []string{"ON DUPLICATE KEY UPDATE id = id", "ON DUPLICATE KEY UPDATE a = 1, `id`=`id`"} {
		if !assignsID.MatchString(bad) {
			t.Fatalf("pattern misses %q", bad)
		}
	}
	if assignsID.MatchString("ON DUPLICATE KEY UPDATE customer_id = VALUES(customer_id)") {
		t.Fatal("pattern takes customer_id for id")
	}
}
