package web

import (
	"sync"
	"testing"
)

func TestStreamSlotsBoundEachWorkspaceAlone(t *testing.T) {
	s := newStreamSlots(3)
	for i := 0; i < 3; i++ {
		if !s.take(1) {
			t.Fatalf("slot %d of workspace 1 refused", i+1)
		}
	}
	if s.take(1) {
		t.Fatal("a fourth download of workspace 1 was let through")
	}
	if !s.take(2) {
		t.Fatal("workspace 2 waits for workspace 1's downloads")
	}
	s.give(1)
	if !s.take(1) {
		t.Fatal("a slot given back cannot be taken again")
	}

	// Under contention the count never goes past the bound, and every slot
	// comes back.
	s = newStreamSlots(3)
	var mu sync.Mutex
	in, most := 0, 0
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if !s.take(7) {
					continue
				}
				mu.Lock()
				in++
				most = max(most, in)
				mu.Unlock()
				mu.Lock()
				in--
				mu.Unlock()
				s.give(7)
			}
		}()
	}
	wg.Wait()
	if most > 3 || len(s.inUse) != 0 {
		t.Fatalf("at most %d in flight (bound 3); left %v", most, s.inUse)
	}
}
