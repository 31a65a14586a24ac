package web

import "sync"

// MaxStreamsPerWorkspace is how many direct downloads one workspace may have
// in flight on one instance. Each holds a database connection while it runs
// (about a second for the largest direct download), so a workspace that
// clicks Export in many tabs cannot take the pool from the others.
const MaxStreamsPerWorkspace = 3

// streamSlots counts each workspace's direct downloads in flight.
type streamSlots struct {
	mu    sync.Mutex
	max   int
	inUse map[int64]int
}

func newStreamSlots(max int) *streamSlots {
	return &streamSlots{max: max, inUse: map[int64]int{}}
}

// take claims a slot for the tenant; false when all of its slots are in use.
func (s *streamSlots) take(tenantID int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inUse[tenantID] >= s.max {
		return false
	}
	s.inUse[tenantID]++
	return true
}

// give returns a slot taken by take.
func (s *streamSlots) give(tenantID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inUse[tenantID] <= 1 {
		delete(s.inUse, tenantID)
		return
	}
	s.inUse[tenantID]--
}
