package web_test

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/app/wechat"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// A visitor's OAuth trip (start and callback) deletes nothing: expired
// states and tickets are purged by the background sweep (ingest.SweepOAuth),
// not in the visitor's requests. The start used to purge when the clock's
// second was a multiple of 64; the trip here runs at such a second, with
// expired rows waiting.
func TestOAuthTripDoesNotPurge(t *testing.T) {
	w := newIngestWorld(t, dbtest.SQLite(t))
	_, app := w.bindApp(t, "h5 no purge", appSetup{})
	tid := w.ws.tenant.ID
	if r := w.clock.Now().Unix() % 64; r != 0 {
		w.clock.Advance(time.Duration(64-r) * time.Second)
	}
	old := w.clock.Now().Add(-time.Hour)
	for i := range 5 {
		st := models.OAuthState{TenantID: tid, AppID: app.ID, StateHash: fmt.Sprintf("x%063d", i), Scope: wechat.ScopeBase,
			ExpiresAt: old.Add(models.OAuthStateLifetime), CreatedAt: old}
		tk := models.OAuthTicket{TenantID: tid, AppID: app.ID, CustomerID: 1, OpenID: "o", Scope: wechat.ScopeBase,
			TicketHash: fmt.Sprintf("x%063d", i), ExpiresAt: old.Add(models.OAuthTicketLifetime), CreatedAt: old}
		if err := w.db.Create(&st).Error; err != nil {
			t.Fatal(err)
		}
		if err := w.db.Create(&tk).Error; err != nil {
			t.Fatal(err)
		}
	}
	var deletes atomic.Int64
	err := w.db.Callback().Delete().Before("gorm:delete").Register("test:count_oauth_deletes", func(tx *gorm.DB) {
		if tx.Statement.Table == "oauth_states" || tx.Statement.Table == "oauth_tickets" {
			deletes.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}

	for range 2 {
		status, h, body, _ := w.oauthTrip(t, app.CallbackKey, wechat.ScopeBase, "/welcome", w.sim.AddPerson(), false)
		if status != http.StatusFound || mustQuery(t, h.Get("Location"), "oneid_ticket") == "" {
			t.Fatalf("trip: %d → %q\n%s", status, h.Get("Location"), body)
		}
	}
	if n := deletes.Load(); n != 0 {
		t.Fatalf("the OAuth trips issued %d DELETEs on oauth_states/oauth_tickets", n)
	}
	if n := w.rows("oauth_states"); n != 5+2 {
		t.Fatalf("%d states, want the 5 expired ones and the 2 trips'", n)
	}
	if n := w.rows("oauth_tickets"); n != 5+2 {
		t.Fatalf("%d tickets, want the 5 expired ones and the 2 trips'", n)
	}
}
