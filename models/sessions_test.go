package models_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func TestSessions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		tenant, user := mustTenant(t, db, "Session Co", "s@example.com")
		id, s, err := models.CreateSession(db, user.ID, tenant.ID, "127.0.0.1", strings.Repeat("ü", 200), t0)
		if err != nil {
			t.Fatal(err)
		}
		t.Run("StoresOnlyTheHashOfTheID", func(t *testing.T) {
			var n int64
			db.Model(&models.Session{}).Where("id_hash = ?", id).Count(&n)
			if n != 0 || s.IDHash == id || len(s.IDHash) != 64 {
				t.Fatalf("the raw session id is stored (%q)", s.IDHash)
			}
			got, err := models.FindSession(db, id)
			if err != nil || got.UserID != user.ID || got.CSRFToken == "" {
				t.Fatalf("found %+v, %v", got, err)
			}
		})
		t.Run("FindsTheSessionWithItsPerson", func(t *testing.T) {
			want, err := models.FindSession(db, id)
			if err != nil {
				t.Fatal(err)
			}
			wantUser, err := models.FindUser(db, user.ID)
			if err != nil {
				t.Fatal(err)
			}
			got, u, err := models.FindSessionAndUser(db, id)
			if err != nil || u == nil {
				t.Fatalf("found %+v %+v, %v", got, u, err)
			}
			if *got != *want || u.ID != wantUser.ID || u.Email != wantUser.Email || u.Name != wantUser.Name ||
				u.PasswordHash != wantUser.PasswordHash || u.Locale != wantUser.Locale ||
				!u.CreatedAt.Equal(wantUser.CreatedAt) || !u.UpdatedAt.Equal(wantUser.UpdatedAt) {
				t.Fatalf("found %+v %+v, want %+v %+v", got, u, want, wantUser)
			}
			for _, missing := range []string{"", "no-such-session"} {
				if _, _, err := models.FindSessionAndUser(db, missing); !errors.Is(err, models.ErrNotFound) {
					t.Fatalf("session %q: %v, want ErrNotFound", missing, err)
				}
			}
			// A session whose person is gone comes without one.
			orphanID, _, err := models.CreateSession(db, 987654321, tenant.ID, "127.0.0.1", "test", t0)
			if err != nil {
				t.Fatal(err)
			}
			if got, u, err := models.FindSessionAndUser(db, orphanID); err != nil || got == nil || u != nil {
				t.Fatalf("orphan session: %+v %+v, %v", got, u, err)
			}
		})
		t.Run("ExpiresWhenIdle", func(t *testing.T) {
			if s.Expired(t0.Add(29 * time.Minute)) {
				t.Fatal("expired after 29 idle minutes")
			}
			if !s.Expired(t0.Add(31 * time.Minute)) {
				t.Fatal("alive after 31 idle minutes")
			}
		})
		t.Run("TouchingKeepsItAliveUntilTwelveHours", func(t *testing.T) {
			now := t0
			for now.Sub(t0) < 12*time.Hour-30*time.Minute {
				now = now.Add(25 * time.Minute)
				if s.Expired(now) {
					t.Fatalf("expired at %v while active", now.Sub(t0))
				}
				if err := models.TouchSession(db, s, now); err != nil {
					t.Fatal(err)
				}
			}
			if !s.Expired(t0.Add(12*time.Hour + time.Second)) {
				t.Fatal("alive after 12 hours")
			}
			stored, _ := models.FindSession(db, id)
			if !stored.LastSeenAt.Equal(s.LastSeenAt) {
				t.Fatalf("last seen %v stored, want %v", stored.LastSeenAt, s.LastSeenAt)
			}
		})
		t.Run("Deletes", func(t *testing.T) {
			if err := models.DeleteSession(db, s); err != nil {
				t.Fatal(err)
			}
			if _, err := models.FindSession(db, id); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("got %v", err)
			}
		})
		t.Run("PurgesEndedSessions", func(t *testing.T) {
			oldID, _, _ := models.CreateSession(db, user.ID, tenant.ID, "", "", t0)
			newID, _, _ := models.CreateSession(db, user.ID, tenant.ID, "", "", t0.Add(time.Hour))
			if err := models.PurgeSessions(db, t0.Add(time.Hour+time.Minute)); err != nil {
				t.Fatal(err)
			}
			if _, err := models.FindSession(db, oldID); !errors.Is(err, models.ErrNotFound) {
				t.Fatal("ended session kept")
			}
			if _, err := models.FindSession(db, newID); err != nil {
				t.Fatal("live session purged")
			}
		})
	})
}
