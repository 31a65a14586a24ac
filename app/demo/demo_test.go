package demo_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"oneid/app/config"
	"oneid/app/demo"
	"oneid/app/web"
	"oneid/app/wechat"
	"oneid/migrations"
	"oneid/models"
)

// startOnce is one `serve --demo` start in process, at a small scale: the
// simulator, the portal on a loopback listener, Prepare.
func startOnce(t *testing.T, dir string, key []byte) *demo.Ready {
	t.Helper()
	db, err := models.Open("sqlite://" + filepath.Join(dir, "oneid.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	if _, err := migrations.Apply(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	sealer, err := models.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	d, err := demo.Start(demo.Config{DB: db, Sealer: sealer, DataDir: dir, Scale: 0.05, SyncLatency: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	wc := d.WeChat()
	wx := wechat.New(wechat.Config{APIBase: wc.APIBase, OpenBase: wc.OpenBase, MPBase: wc.MPBase,
		HTTPClient: &http.Client{Transport: d.Transport(nil)}, Tokens: models.NewWechatTokenStore(db, sealer),
		Component: wechat.Component{AppID: wc.ComponentAppID, Secret: wc.ComponentSecret, Token: wc.ComponentToken, AESKey: wc.ComponentAESKey}})
	app, err := web.New(web.Deps{Config: config.Config{PublicURL: base, Addr: ln.Addr().String(), WeChat: wc},
		DB: db, Log: slog.New(slog.DiscardHandler), Sealer: sealer, WeChat: wx})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	r, err := d.Prepare(context.Background(), base, wx)
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
