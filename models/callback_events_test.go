package models_test

import (
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func TestCallbackInbox(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		w := newWorld(t, db)
		now := time.Now().UTC()
		ev := func(openID string, at int64, event string) models.CallbackEvent {
			return models.CallbackEvent{TenantID: w.tenant, AppID: w.appA, DedupKey: models.CallbackDedupKey(openID, at, event),
				OpenID: openID, Event: event, CreateTime: at, ReceivedAt: now}
		}
		batch := []models.CallbackEvent{ev("oA", 100, "subscribe"), ev("oA", 100, "unsubscribe"), ev("oB", 100, "subscribe")}
		if err := models.StoreCallbackEvents(db, batch); err != nil {
			t.Fatal(err)
		}
		t.Run("RetriesAreStoredOnce", func(t *testing.T) {
			// A retry alone, and a retry inside a batch with a duplicate of itself.
			if err := models.StoreCallbackEvents(db, []models.CallbackEvent{ev("oA", 100, "subscribe")}); err != nil {
				t.Fatal(err)
			}
			if err := models.StoreCallbackEvents(db, []models.CallbackEvent{ev("oC", 101, "SCAN"), ev("oC", 101, "SCAN"), ev("oB", 100, "subscribe")}); err != nil {
				t.Fatal(err)
			}
			if n, _ := models.CallbackBacklog(db); n != 4 {
				t.Fatalf("backlog %d, want 4", n)
			}
		})
		t.Run("TenantGuard", func(t *testing.T) {
			bad := ev("oD", 1, "subscribe")
			bad.TenantID = 0
			if err := models.StoreCallbackEvents(db, []models.CallbackEvent{bad}); !errors.Is(err, models.ErrUnscopedQuery) {
				t.Fatalf("%v", err)
			}
		})
		t.Run("ClaimsAreExclusiveUntilTheLeaseEnds", func(t *testing.T) {
			first, err := models.ClaimCallbackEvents(db, now, time.Minute, 3)
			if err != nil || len(first) != 3 || first[0].Attempts != 1 {
				t.Fatalf("%d %v", len(first), err)
			}
			second, err := models.ClaimCallbackEvents(db, now, time.Minute, 10)
			if err != nil || len(second) != 1 || second[0].ID == first[0].ID {
				t.Fatalf("%d %v", len(second), err)
			}
			if none, _ := models.ClaimCallbackEvents(db, now.Add(30*time.Second), time.Minute, 10); len(none) != 0 {
				t.Fatalf("claimed %d leased events", len(none))
			}
			if err := models.FinishCallbackEvents(db, w.tenant, []int64{first[0].ID, first[1].ID}, now); err != nil {
				t.Fatal(err)
			}
			if err := models.ReleaseCallbackEvents(db, w.tenant, []int64{first[2].ID}, errors.New("boom"), now, time.Second); err != nil {
				t.Fatal(err)
			}
			again, _ := models.ClaimCallbackEvents(db, now.Add(2*time.Second), time.Minute, 10)
			if len(again) != 1 || again[0].ID != first[2].ID || again[0].Error != "boom" || again[0].Attempts != 2 {
				t.Fatalf("%+v", again)
			}
			// After the last attempt the event is given up, not retried forever.
			for i := again[0].Attempts; i < models.CallbackMaxAttempts; i++ {
				_ = models.ReleaseCallbackEvents(db, w.tenant, []int64{again[0].ID}, errors.New("boom"), now, 0)
				_, _ = models.ClaimCallbackEvents(db, now.Add(time.Hour), time.Minute, 10)
			}
			_ = models.ReleaseCallbackEvents(db, w.tenant, []int64{again[0].ID}, errors.New("boom"), now, 0)
			var e models.CallbackEvent
			db.Scopes(models.ForTenant(w.tenant)).Where("id = ?", again[0].ID).Take(&e)
			if e.State != models.CallbackFailed {
				t.Fatalf("state %d after %d attempts", e.State, e.Attempts)
			}
		})
		t.Run("PurgeKeepsPendingAndRecent", func(t *testing.T) {
			n, err := models.PurgeCallbackEvents(db, now.Add(time.Second), 100)
			if err != nil || n != 3 {
				t.Fatalf("purged %d %v", n, err)
			}
			if n, _ := models.CallbackBacklog(db); n != 1 {
				t.Fatalf("backlog %d", n)
			}
		})
	})
}

func TestAppByCallbackKey(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t))
	a, err := models.FindApp(w.db, w.tenant, w.appA)
	if err != nil {
		t.Fatal(err)
	}
	got, err := models.FindAppByCallbackKey(w.db, a.CallbackKey)
	if err != nil || got.ID != a.ID || got.TenantID != w.tenant {
		t.Fatalf("%+v %v", got, err)
	}
	for _, key := range []string{"", "nope", a.CallbackKey + "x"} {
		if _, err := models.FindAppByCallbackKey(w.db, key); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("%q: %v", key, err)
		}
	}
	if err := models.UnbindApp(w.db, w.tenant, a.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := models.FindAppByCallbackKey(w.db, a.CallbackKey); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("unbound app still takes pushes: %v", err)
	}
}
