package ingest

import "testing"

// Pages committed in any order: the prefix moves only over pages that join
// it, pages beyond it are kept to be stepped over, each page counts once, and
// the pass is complete when the prefix reaches the last page.
func TestSyncCheckpointPagesInAnyOrder(t *testing.T) {
	pages := []syncPage{
		{From: "", To: "a", Listed: 10, Subscribed: 9},
		{From: "a", To: "b", Listed: 10, Subscribed: 10},
		{From: "b", To: "c", Listed: 10, Subscribed: 8, Rejected: 1},
		{From: "c", To: "", Listed: 3, Subscribed: 3, Last: true},
	}
	cp := &syncCheckpoint{}
	steps := []struct {
		page           int
		cursor         string
		prefix, beyond int
		complete       bool
	}{
		{2, "", 0, 1, false},
		{0, "a", 1, 1, false},
		{3, "a", 1, 2, false},
		{1, "", 4, 0, true},
	}
	for i, s := range steps {
		if err := cp.add(pages[s.page]); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		// What a resumed run reads back.
		var err error
		if cp, err = parseSyncCheckpoint(cp.String()); err != nil {
			t.Fatal(err)
		}
		if cp.Cursor != s.cursor || cp.Pages != s.prefix || len(cp.Done) != s.beyond || cp.Complete != s.complete {
			t.Fatalf("step %d: cursor %q, %d pages in the prefix, %d beyond, complete %v; want %q %d %d %v",
				i, cp.Cursor, cp.Pages, len(cp.Done), cp.Complete, s.cursor, s.prefix, s.beyond, s.complete)
		}
		if i == 2 {
			if p, ok := cp.skip("b"); !ok || p.To != "c" {
				t.Fatalf("a resumed run cannot step over the page after %q", "b")
			}
			if _, ok := cp.skip("a"); ok {
				t.Fatal("the page after a is not committed, yet would be skipped")
			}
		}
	}
	if cp.Listed != 33 || cp.Subscribed != 30 || cp.Rejected != 1 {
		t.Fatalf("counts %d %d %d", cp.Listed, cp.Subscribed, cp.Rejected)
	}
	fresh := &syncCheckpoint{}
	_ = fresh.add(pages[1])
	if err := fresh.add(pages[1]); err == nil {
		t.Fatal("a page committed twice was counted twice")
	}
}
