package demo_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"oneid/app/config"
	"oneid/app/demo"
	"oneid/app/server"
	"oneid/models"
)

// startOnce is one `serve --demo` start in process, at a small scale:
// server.Start with the simulator, Prepare once the portal listens, then a
// stop as on SIGTERM.
func startOnce(t *testing.T, dir string, key []byte) *demo.Ready {
	t.Helper()
	env := map[string]string{"ONEID_DATA_DIR": dir, "ONEID_SECRET_KEY": base64.StdEncoding.EncodeToString(key), "ONEID_ADDR": freeAddr(t)}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	run, err := server.Start(context.Background(), cfg, server.Options{Demo: &server.DemoOptions{Scale: 0.05, SyncLatency: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := run.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	r, err := run.Demo.Prepare(context.Background(), run.URL, run.WeChat)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDemoStartsAgainWithoutDuplicates covers the ways a second start can
// find the data folder: as the first start left it, with the sign-in file
// lost, and after a first start that stopped before its customers were all
// written.
func TestDemoStartsAgainWithoutDuplicates(t *testing.T) {
	dir := t.TempDir()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	first := startOnce(t, dir, key)
	if !first.Created || first.Seeded.Customers < 1000 || first.Password == "" || first.FollowCommand == "" {
		t.Fatalf("first start: %+v", first)
	}
	before := counts(t, dir)
	if before.Tenants != 1 || before.Apps != 3 || before.OpenAccounts != 1 || before.Customers != int64(first.Seeded.Customers) {
		t.Fatalf("after the first start: %+v", before)
	}

	again := startOnce(t, dir, key)
	if again.Created || again.Password != first.Password || again.Slug != first.Slug {
		t.Fatalf("second start: %+v", again)
	}
	if after := counts(t, dir); after != before {
		t.Fatalf("a second start changed the database:\n%+v\n%+v", before, after)
	}

	// demo.json lost: the same workspace, a new password that signs in.
	if err := os.Remove(filepath.Join(dir, "demo.json")); err != nil {
		t.Fatal(err)
	}
	lost := startOnce(t, dir, key)
	if lost.Created || lost.Slug != first.Slug || lost.Password == first.Password {
		t.Fatalf("start without demo.json: %+v", lost)
	}
	checkPassword(t, dir, lost.Password)
	if after := counts(t, dir); after.Customers != before.Customers || after.Tenants != 1 || after.Users != 1 {
		t.Fatalf("a start without demo.json changed the database:\n%+v\n%+v", before, after)
	}

	// A first start stopped while writing customers: the next one writes
	// them again from scratch, once.
	st := []byte(`{"slug": "` + first.Slug + `", "password": "` + lost.Password + `", "seeded": false}`)
	if err := os.WriteFile(filepath.Join(dir, "demo.json"), st, 0o600); err != nil {
		t.Fatal(err)
	}
	resumed := startOnce(t, dir, key)
	if resumed.Seeded.Customers != first.Seeded.Customers {
		t.Fatalf("the interrupted workspace was seeded with %d customers, want %d", resumed.Seeded.Customers, first.Seeded.Customers)
	}
	if after := counts(t, dir); after.Customers != before.Customers || after.Identities != before.Identities {
		t.Fatalf("re-seeding an interrupted workspace duplicated rows:\n%+v\n%+v", before, after)
	}
}

func checkPassword(t *testing.T, dir, password string) {
	t.Helper()
	db, err := models.Open("sqlite://" + filepath.Join(dir, "oneid.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	}()
	u, err := models.FindUserByEmail(db, demo.Email)
	if err != nil {
		t.Fatal(err)
	}
	if err := models.NewPasswordHasher(1).Verify(context.Background(), u.PasswordHash, password); err != nil {
		t.Fatalf("the printed password does not sign in: %v", err)
	}
}
