package web

import (
	"testing"
	"time"
)

// The list's memory of refresh asks is per tenant, lapses after the
// interval and never holds more than refreshAsksKept tenants.
func TestAskRefreshIsPerTenantAndBounded(t *testing.T) {
	var c browseCache
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	if !c.askRefresh(1, t0) || c.askRefresh(1, t0.Add(refreshAskEvery-time.Millisecond)) {
		t.Fatal("a tenant asks once per interval")
	}
	if !c.askRefresh(2, t0) {
		t.Fatal("another tenant asks on its own")
	}
	if !c.askRefresh(1, t0.Add(refreshAskEvery)) {
		t.Fatal("the ask lapses after the interval")
	}
	if !c.askRefresh(3, t0) || !c.askRefresh(3, t0.Add(-time.Second)) {
		t.Fatal("a clock set back does not block the ask")
	}

	// Full of old asks: they are dropped, recent ones stay.
	later := t0.Add(time.Hour)
	for id := int64(10); len(c.asked) < refreshAsksKept; id++ {
		c.askRefresh(id, t0)
	}
	c.askRefresh(5, later)
	if len(c.asked) != 1 || c.askRefresh(5, later.Add(time.Second)) {
		t.Fatalf("%d asks kept after the old ones lapsed; tenant 5's must stay", len(c.asked))
	}
	// Full of recent asks: start afresh rather than grow.
	for id := int64(10); len(c.asked) < refreshAsksKept; id++ {
		c.askRefresh(id, later)
	}
	c.askRefresh(1, later)
	if len(c.asked) != 1 {
		t.Fatalf("%d asks kept, want at most %d", len(c.asked), refreshAsksKept)
	}
}
