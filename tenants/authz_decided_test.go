package tenants

import (
	"testing"

	"oneid/migrations/dbtest"
)

// The answers kept per role and permission are casbin's own, in any tenant.
func TestDecidedMatchesTheEnforcer(t *testing.T) {
	a, err := NewAuthorizer(dbtest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.decided) != len(Roles())*len(AllPermissions()) {
		t.Fatalf("%d answers kept, want one per role and permission", len(a.decided))
	}
	for _, line := range policyLines() {
		if line[1] != allTenants {
			t.Fatalf("policy line %v is for one domain: answers kept per role would be wrong", line)
		}
	}
	for _, tenant := range []int64{1, 2, 987654321} {
		for _, role := range append(Roles(), Role("stranger")) {
			for _, p := range AllPermissions() {
				want, err := a.enforcer.Enforce(string(role), tenantDomain(tenant), p.Object(), p.Action())
				if err != nil {
					t.Fatal(err)
				}
				if got := a.Grants(role, tenant, p); got != want {
					t.Errorf("tenant %d, %s %s: granted=%v, casbin says %v", tenant, role, p, got, want)
				}
			}
		}
	}
}
