package web_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

// While a tenant's list stats are stale, the customer list asks for a
// dashboard refresh (a write on dashboard_snapshots) at most once per 30 s
// per instance, not on every page, and in particular not on every page while
// another instance holds the refresh.
func TestCustomerListAsksForARefreshOncePerInterval(t *testing.T) {
	h := newHarness(t, dbtest.MySQL(t))
	w := h.workspace("Stale Co")
	seedCustomers(t, h, w, 60)
	d, err := models.ComputeDashboard(h.db, w.tenant.ID, h.clock.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := models.SaveDashboard(h.db, w.tenant.ID, d); err != nil {
		t.Fatal(err)
	}
	// Another instance is refreshing: it holds the claim for its lease.
	if ok, err := models.ClaimDashboardRefresh(h.db, w.tenant.ID, h.clock.Now(), 5*time.Minute); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	var writes atomic.Int64
	count := func(tx *gorm.DB) {
		if tx.Statement.Table == "dashboard_snapshots" {
			writes.Add(1)
		}
	}
	if err := h.db.Callback().Update().Before("gorm:update").Register("test:count_snapshot_updates", count); err != nil {
		t.Fatal(err)
	}
	if err := h.db.Callback().Create().Before("gorm:create").Register("test:count_snapshot_inserts", count); err != nil {
		t.Fatal(err)
	}
	c := h.signedIn(w.people[models.RoleViewer])
	list := func(n int) {
		t.Helper()
		for range n {
			if r := c.get(w.path("customers")); r.status != http.StatusOK {
				t.Fatalf("list: %d", r.status)
			}
		}
	}

	list(10)
	// One ask: the UPDATE that finds the claim held, and the INSERT that
	// finds the row there.
	if n := writes.Load(); n != 2 {
		t.Fatalf("10 list pages wrote %d times to dashboard_snapshots, want the 2 statements of one claim", n)
	}
	h.clock.Advance(29 * time.Second)
	list(5)
	if n := writes.Load(); n != 2 {
		t.Fatalf("29 s later: %d writes, want still 2", n)
	}
	// Past the interval the list asks again (once), in case the refresh failed.
	h.clock.Advance(2 * time.Second)
	list(5)
	if n := writes.Load(); n != 4 {
		t.Fatalf("31 s after the first ask: %d writes, want 4", n)
	}
	// The claim of the other instance was never taken over.
	if _, refreshing, err := models.LoadDashboard(h.db, w.tenant.ID, h.clock.Now()); err != nil || !refreshing {
		t.Fatalf("the other instance's claim: refreshing=%v %v", refreshing, err)
	}
}
