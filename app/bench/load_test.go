package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"oneid/migrations/dbtest"
	"oneid/models"
)

// TestLoad runs the load driver as `make load` does, briefly and at a small
// rate: a tenant of 3,000 customers seeded into a fresh MySQL database, the
// oneid binary built from this checkout and served on loopback, people signed
// in. Every request must succeed, the last line must have the promised shape,
// and the writes the driver reports must be in the tenant's audit log.
func TestLoad(t *testing.T) {
	_, dbURL := dbtest.MySQLWithURL(t)
	cut := strings.LastIndex(dbURL, "/")
	server, name := dbURL[:cut+1], dbURL[cut+1:]
	const rate, seconds = 40, 5
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"load", "--mysql", server, "--database", name, "--customers", "3000",
		"--rate", strconv.Itoa(rate), "--seconds", strconv.Itoa(seconds), "--sessions", "3", "--buffer-pool=false"}, os.Getenv, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	m := regexp.MustCompile(`^load rate=(\d+) seconds=(\d+) p50_ms=(\d+\.\d) p90_ms=(\d+\.\d) p99_ms=(\d+\.\d) success=([01]\.\d{4})$`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q is not `load rate=R seconds=S p50_ms=A p90_ms=B p99_ms=C success=X`", last)
	}
	num := func(i int) float64 {
		f, err := strconv.ParseFloat(m[i], 64)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if num(1) != rate || num(2) != seconds {
		t.Errorf("rate=%s seconds=%s, asked for %d and %d", m[1], m[2], rate, seconds)
	}
	if p50, p90, p99 := num(3), num(4), num(5); !(0 < p50 && p50 <= p90 && p90 <= p99 && p99 < 10000) {
		t.Errorf("percentiles out of order or out of range: %v %v %v", p50, p90, p99)
	}
	if num(6) != 1 {
		t.Errorf("success=%s: every request should succeed on an idle tenant this small", m[6])
	}

	// Per kind: "  kind   N requests ... failed F".
	counts := map[string]int{}
	total := 0
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 3 && f[2] == "requests" && f[len(f)-2] == "failed" {
			n, _ := strconv.Atoi(f[1])
			counts[f[0]] = n
			total += n
			if f[len(f)-1] != "0" {
				t.Errorf("%s: %s failed", f[0], f[len(f)-1])
			}
		}
	}
	if total != rate*seconds {
		t.Errorf("%d requests reported by kind, %d scheduled", total, rate*seconds)
	}
	for _, k := range []string{kindList, kindListNext, kindProfile, kindDashboard} {
		if counts[k] == 0 {
			t.Errorf("no %s requests in the mix: %v", k, counts)
		}
	}
	writes := counts[kindInvite] + counts[kindRevoke] + counts[kindRole] + counts[kindImport]
	if writes == 0 {
		t.Fatalf("no writes in the mix: %v", counts)
	}

	// The writes happened: each left its audit entry in the tenant.
	db, err := models.Open(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}()
	tenant, err := models.FindTenantBySlug(db, benchSlug)
	if err != nil {
		t.Fatal(err)
	}
	audited := map[string]int{}
	for before := int64(0); ; {
		page, err := models.ListAudit(db, tenant.ID, before, 200)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			audited[e.Action]++
		}
		if page.Before == 0 || len(page.Events) == 0 {
			break
		}
		before = page.Before
	}
	for kind, action := range map[string]string{kindInvite: models.AuditInvitationCreated, kindRevoke: models.AuditInvitationRevoked,
		kindImport: models.AuditImportDone} {
		if audited[action] != counts[kind] {
			t.Errorf("%d %s requests, %d %s audit entries", counts[kind], kind, audited[action], action)
		}
	}
	// Role changes alternate viewer and marketer; two in flight at once may
	// land in either order, and one that changes nothing is not audited.
	if n := audited[models.AuditRoleChanged]; n > counts[kindRole] || (counts[kindRole] > 0 && n == 0) {
		t.Errorf("%d role requests, %d role changes audited", counts[kindRole], n)
	}
	var pending int64
	if err := db.Model(&models.Invitation{}).Scopes(models.ForTenant(tenant.ID)).
		Where("email LIKE ? AND revoked_at IS NULL", "load-%").Count(&pending).Error; err != nil {
		t.Fatal(err)
	}
	if int(pending) != counts[kindInvite]-counts[kindRevoke] {
		t.Errorf("%d invitations pending, %d made and %d revoked", pending, counts[kindInvite], counts[kindRevoke])
	}
}
