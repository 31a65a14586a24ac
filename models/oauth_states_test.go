package models_test

import (
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func TestOAuthStates(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		w := newWorld(t, db)
		other := newWorld(t, db)
		now := time.Now().UTC()
		state, err := models.CreateOAuthState(db, w.tenant, w.appA, "snsapi_base", "https://h5.example.com/", now)
		if err != nil || len(state) != 32 {
			t.Fatalf("%q %v", state, err)
		}
		// A state one character off (the last one changed, whatever it is).
		last := byte('x')
		if state[31] == last {
			last = 'y'
		}
		refused := []struct {
			name   string
			tenant int64
			app    int64
			state  string
			at     time.Time
		}{
			{"OtherTenant", other.tenant, other.appA, state, now},
			{"OtherTenantWithThisApp", other.tenant, w.appA, state, now},
			{"OtherApp", w.tenant, w.appC, state, now},
			{"Expired", w.tenant, w.appA, state, now.Add(models.OAuthStateLifetime + time.Second)},
			{"Unknown", w.tenant, w.appA, state[:31] + string(last), now},
			{"Empty", w.tenant, w.appA, "", now},
		}
		for _, c := range refused {
			if _, err := models.ConsumeOAuthState(db, c.tenant, c.app, c.state, c.at); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("%s: %v", c.name, err)
			}
		}
		got, err := models.ConsumeOAuthState(db, w.tenant, w.appA, state, now.Add(time.Minute))
		if err != nil || got.ReturnURL != "https://h5.example.com/" || got.Scope != "snsapi_base" {
			t.Fatalf("%+v %v", got, err)
		}
		if _, err := models.ConsumeOAuthState(db, w.tenant, w.appA, state, now.Add(time.Minute)); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("second use: %v", err)
		}
		if n, err := models.PurgeOAuthStates(db, now.Add(time.Hour), 10); err != nil || n != 1 {
			t.Fatalf("purge %d %v", n, err)
		}
	})
}

func TestOAuthReturnHosts(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t))
	for in, want := range map[string]string{
		"h5.example.com":                  "h5.example.com",
		" HTTPS://H5.Example.com/shop?x ": "h5.example.com",
		"m.example.com:8443":              "m.example.com:8443",
		"127.0.0.1:9000":                  "127.0.0.1:9000",
		"localhost":                       "",
		"*.example.com":                   "",
		"user@example.com":                "",
		"exa mple.com":                    "",
		"-bad-.example.com":               "",
		"example.com:http":                "",
		"":                                "",
	} {
		got, ok := models.NormalizeReturnHost(in)
		if got != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", in, got, ok, want)
		}
	}
	if err := models.SetOAuthReturnHosts(w.db, w.tenant, w.appA, []string{"b.example.com", "a.example.com", "b.example.com"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	hosts, err := models.OAuthReturnHosts(w.db, w.tenant, w.appA)
	if err != nil || len(hosts) != 2 || hosts[0] != "a.example.com" {
		t.Fatalf("%v %v", hosts, err)
	}
	other := newWorld(t, w.db)
	if err := models.SetOAuthReturnHosts(w.db, other.tenant, w.appA, []string{"evil.example.com"}, time.Now()); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("another tenant's app: %v", err)
	}
}
