package ingest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/app/ingest"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// deleteCounter records every DELETE gorm runs on the OAuth tables of db:
// how many, and the most rows one of them removed.
type deleteCounter struct {
	mu      sync.Mutex
	count   map[string]int
	maxRows map[string]int64
}

func countDeletes(t testing.TB, db *gorm.DB) *deleteCounter {
	t.Helper()
	d := &deleteCounter{count: map[string]int{}, maxRows: map[string]int64{}}
	err := db.Callback().Delete().After("gorm:delete").Register("test:count_oauth_deletes", func(tx *gorm.DB) {
		table := tx.Statement.Table
		if table != "oauth_states" && table != "oauth_tickets" {
			return
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		d.count[table]++
		d.maxRows[table] = max(d.maxRows[table], tx.RowsAffected)
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *deleteCounter) get(table string) (int, int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count[table], d.maxRows[table]
}

// The background sweep purges expired OAuth states and tickets, at most
// 1,000 of each per DELETE, round after round while there are more; rows
// still in their lifetime (and for one more) stay.
func TestSweepOAuthPurgesExpiredStatesAndTickets(t *testing.T) {
	db := dbtest.MySQL(t)
	now := time.Now().UTC()
	old := now.Add(-time.Hour) // expired 50 (states) and 55 (tickets) minutes ago
	recent := now.Add(-12 * time.Minute)
	const expiredStates, expiredTickets = 2300, 1200
	var states []models.OAuthState
	for i := range expiredStates + 3 {
		at := old
		if i >= expiredStates {
			at = []time.Time{now, now.Add(-15 * time.Minute), recent}[i-expiredStates] // live, and expired for less than a lifetime
		}
		states = append(states, models.OAuthState{TenantID: 1 + int64(i%3), AppID: 7, StateHash: fmt.Sprintf("s%063d", i),
			Scope: "snsapi_base", ExpiresAt: at.Add(models.OAuthStateLifetime), CreatedAt: at})
	}
	var tickets []models.OAuthTicket
	for i := range expiredTickets + 2 {
		at := old
		if i >= expiredTickets {
			at = []time.Time{now, now.Add(-8 * time.Minute)}[i-expiredTickets]
		}
		tickets = append(tickets, models.OAuthTicket{TenantID: 1 + int64(i%3), AppID: 7, CustomerID: int64(i + 1), OpenID: fmt.Sprintf("o%d", i),
			Scope: "snsapi_base", TicketHash: fmt.Sprintf("t%063d", i), ExpiresAt: at.Add(models.OAuthTicketLifetime), CreatedAt: at})
	}
	if err := db.CreateInBatches(states, 500).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.CreateInBatches(tickets, 500).Error; err != nil {
		t.Fatal(err)
	}
	deletes := countDeletes(t, db)
	rows := func(model any) int64 {
		var n int64
		if err := models.CrossTenant(db, "test counts rows").Model(model).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The ticker never fires within the test: rounds after the first
		// come only from "the last round was full".
		ingest.SweepOAuth(ctx, db, nil, time.Hour)
	}()
	deadline := time.Now().Add(8 * time.Second)
	for rows(&models.OAuthState{}) > 3 || rows(&models.OAuthTicket{}) > 2 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("not purged: %d states, %d tickets left", rows(&models.OAuthState{}), rows(&models.OAuthTicket{}))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the sweep did not stop with its context")
	}

	var left []models.OAuthState
	if err := models.CrossTenant(db, "test reads rows").Order("id").Find(&left).Error; err != nil {
		t.Fatal(err)
	}
	if len(left) != 3 || left[0].StateHash != fmt.Sprintf("s%063d", expiredStates) {
		t.Fatalf("states left: %+v", left)
	}
	if n := rows(&models.OAuthTicket{}); n != 2 {
		t.Fatalf("%d tickets left, want the 2 recent ones", n)
	}
	if n, most := deletes.get("oauth_states"); n != 3 || most != ingest.OAuthPurgeBatch {
		t.Fatalf("states: %d DELETEs, at most %d rows each; want 3 of at most %d", n, most, ingest.OAuthPurgeBatch)
	}
	if n, most := deletes.get("oauth_tickets"); n != 2 || most != ingest.OAuthPurgeBatch {
		t.Fatalf("tickets: %d DELETEs, at most %d rows each; want 2 of at most %d", n, most, ingest.OAuthPurgeBatch)
	}
}
