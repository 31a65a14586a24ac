package wechat_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/migrations/dbtest"
	"oneid/models"
)

const principal = "腾讯科技（深圳）有限公司"

// world is a simulator with one open account and one bound service account.
type world struct {
	sim  *wechattest.Sim
	open string
	oa   wechattest.AppInfo
	app  wechat.App
}

func newWorld(t *testing.T, followers int, opts ...wechattest.Option) world {
	t.Helper()
	sim := wechattest.Start(t, opts...)
	open := sim.AddOpenAccount(wechattest.OpenAccountSpec{Name: "acme", Principal: principal, Verified: true})
	oa := sim.MustAddApp(wechattest.AppSpec{Name: "acme-oa", Principal: principal, OpenAppID: open, Followers: followers})
	return world{sim: sim, open: open, oa: oa, app: wechat.App{AppID: oa.AppID, Secret: oa.Secret}}
}

// clock is a settable clock shared by clients.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

func (w world) client(t *testing.T, store wechat.TokenStore, mut ...func(*wechat.Config)) *wechat.Client {
	cfg := w.sim.Config(wechattest.LoopbackOnly(t), store)
	if store == nil {
		cfg.Tokens = wechat.NewMemoryStore()
	}
	cfg.Timeout = 3 * time.Second
	for _, m := range mut {
		m(&cfg)
	}
	return wechat.New(cfg)
}

func dbStore(t *testing.T) *models.WechatTokenStore {
	sealer, err := models.NewSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return models.NewWechatTokenStore(dbtest.MySQL(t), sealer)
}

// TestTokenSharedAcrossInstances: two instances on one MySQL store, 100
// concurrent callers each, fetch exactly one token per expiry.
func TestTokenSharedAcrossInstances(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 10)
	store := dbStore(t)
	var clk clock
	withClock := func(c *wechat.Config) { c.Now = clk.now }
	clients := []*wechat.Client{w.client(t, store, withClock), w.client(t, store, withClock)}

	round := func() map[string]bool {
		var wg sync.WaitGroup
		var mu sync.Mutex
		seen := map[string]bool{}
		for _, c := range clients {
			for range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tok, err := c.AccessToken(context.Background(), w.app)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					seen[tok] = true
					mu.Unlock()
				}()
			}
		}
		wg.Wait()
		return seen
	}
	first := round()
	if n := w.sim.Calls("cgi-bin/stable_token"); n != 1 || len(first) != 1 {
		t.Fatalf("first round: %d token fetches, %d distinct tokens; want 1 and 1", n, len(first))
	}
	// Past the token's lifetime (less the margin) on both sides, and again.
	clk.advance(2 * time.Hour)
	w.sim.Advance(2 * time.Hour)
	second := round()
	if n := w.sim.Calls("cgi-bin/stable_token"); n != 2 || len(second) != 1 {
		t.Fatalf("after expiry: %d token fetches in all, %d distinct tokens; want 2 and 1", n, len(second))
	}
	for tok := range second {
		if first[tok] {
			t.Fatal("the expired token was handed out again")
		}
	}
	stats, err := clients[0].TokenStats(context.Background(), w.app.AppID)
	if err != nil || stats.Refreshes != 2 || stats.Rejections != 0 {
		t.Fatalf("stats = %+v, %v; want 2 refreshes, 0 rejections", stats, err)
	}
}

// TestRecoversFromTokenRotatedElsewhere: another holder of the AppSecret
// force-refreshes; the next call gets 40001, expires exactly that token,
// refetches once and succeeds, and the rejection is counted.
func TestRecoversFromTokenRotatedElsewhere(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	store := wechat.NewMemoryStore()
	c := w.client(t, store)
	ctx := context.Background()
	if _, err := c.UserList(ctx, w.app, ""); err != nil {
		t.Fatal(err)
	}
	old, _ := c.AccessToken(ctx, w.app)
	w.sim.ForceRefreshStable(w.app.AppID)

	list, err := c.UserList(ctx, w.app, "")
	if err != nil {
		t.Fatalf("call after rotation: %v", err)
	}
	if list.Total != 5 {
		t.Fatalf("total = %d", list.Total)
	}
	now, _ := c.AccessToken(ctx, w.app)
	if now == old {
		t.Fatal("still using the rotated token")
	}
	if got := w.sim.Calls("cgi-bin/user/get"); got != 3 {
		t.Fatalf("user/get calls = %d, want 3 (ok, 40001, retry)", got)
	}
	stats, _ := c.TokenStats(ctx, w.app.AppID)
	if stats.Rejections != 1 || stats.Refreshes != 2 {
		t.Fatalf("stats = %+v, want 1 rejection and 2 refreshes", stats)
	}

	// A second instance sharing the store picks up the recovered token: no
	// fetch, no rejection.
	c2 := w.client(t, store)
	if _, err := c2.UserList(ctx, w.app, ""); err != nil {
		t.Fatal(err)
	}
	if n := w.sim.Calls("cgi-bin/stable_token"); n != 2 {
		t.Fatalf("stable_token calls = %d, want 2 (first fetch and recovery)", n)
	}
	if stats, _ := c2.TokenStats(ctx, w.app.AppID); stats.Rejections != 1 {
		t.Fatalf("rejections = %d, want 1", stats.Rejections)
	}
}

func TestErrorClasses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		path      string
		code      int
		http      int
		times     int
		wantErr   bool
		wantCalls int // calls to path
		check     func(error) bool
	}{
		{name: "BusyRetriedThenOK", path: "cgi-bin/user/get", code: -1, times: 2, wantCalls: 3},
		{name: "HTTP502RetriedThenOK", path: "cgi-bin/user/get", http: 502, times: 1, wantCalls: 2},
		{name: "BusyBounded", path: "cgi-bin/user/get", code: -1, times: 10, wantErr: true, wantCalls: 4, check: wechat.Retryable},
		{name: "HTTP503Bounded", path: "cgi-bin/user/get", http: 503, times: 10, wantErr: true, wantCalls: 4, check: wechat.Retryable},
		{name: "DailyQuotaNotRetried", path: "cgi-bin/user/get", code: 45009, wantErr: true, wantCalls: 1, check: wechat.IsQuota},
		{name: "MinuteQuotaNotRetried", path: "cgi-bin/user/get", code: 45011, wantErr: true, wantCalls: 1, check: wechat.IsQuota},
		{name: "ExpiredTokenRefreshedOnce", path: "cgi-bin/user/get", code: 42001, wantCalls: 2},
		{name: "InvalidTokenRefreshedOnce", path: "cgi-bin/user/get", code: 40014, wantCalls: 2},
		{name: "StaleTokenTwiceFails", path: "cgi-bin/user/get", code: 40001, times: 2, wantErr: true, wantCalls: 2, check: wechat.IsTokenInvalid},
		{name: "IPWhitelistIsConfig", path: "cgi-bin/stable_token", code: 40164, wantErr: true, wantCalls: 1, check: wechat.IsConfig},
		{name: "BadSecretIsConfig", path: "cgi-bin/stable_token", code: 40125, wantErr: true, wantCalls: 1, check: wechat.IsConfig},
		{name: "BadAppIDIsConfig", path: "cgi-bin/stable_token", code: 40013, wantErr: true, wantCalls: 1, check: wechat.IsConfig},
		{name: "TokenBusyRetried", path: "cgi-bin/stable_token", code: -1, times: 1, wantCalls: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, 3)
			c := w.client(t, nil)
			if tc.path != "cgi-bin/stable_token" {
				if _, err := c.AccessToken(context.Background(), w.app); err != nil {
					t.Fatal(err)
				}
			}
			times := tc.times
			if times == 0 {
				times = 1
			}
			w.sim.Inject(wechattest.Fault{Path: tc.path, ErrCode: tc.code, HTTPStatus: tc.http, Times: times})
			_, err := c.UserList(context.Background(), w.app, "")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.check != nil && !tc.check(err) {
				t.Fatalf("err %v is not of the expected class", err)
			}
			if got := w.sim.Calls(tc.path); got != tc.wantCalls {
				t.Fatalf("%s calls = %d, want %d", tc.path, got, tc.wantCalls)
			}
			var we *wechat.Error
			if tc.code != 0 && tc.wantErr && (!errors.As(err, &we) || we.Code != tc.code || we.Endpoint != tc.path) {
				t.Fatalf("err = %#v, want *wechat.Error{%s, %d}", err, tc.path, tc.code)
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1)
	c := w.client(t, nil)
	_, err := c.StableToken(context.Background(), w.app.AppID, "wrong", false)
	var we *wechat.Error
	if !errors.As(err, &we) || we.Code != wechat.CodeInvalidSecret || !bytes.Contains([]byte(we.Msg), []byte(" rid: ")) {
		t.Fatalf("err = %#v: want 40125 with a rid suffix", err)
	}
	if we.Kind() != "config" || !bytes.Contains([]byte(err.Error()), []byte("configuration error")) {
		t.Fatalf("message %q does not say configuration", err)
	}
	w.sim.ExhaustQuota(w.app.AppID, "cgi-bin/user/get", wechat.CodeDailyQuota)
	_, err = c.UserList(context.Background(), w.app, "")
	if !wechat.IsQuota(err) || !bytes.Contains([]byte(err.Error()), []byte("quota")) {
		t.Fatalf("err = %v, want a quota error that says so", err)
	}
	w.sim.ClearQuota(w.app.AppID)
	if _, err := c.UserList(context.Background(), w.app, ""); err != nil {
		t.Fatalf("after clear: %v", err)
	}
}

func TestDeadlineBoundsEveryCall(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1)
	c := w.client(t, nil, func(c *wechat.Config) { c.Timeout = 300 * time.Millisecond })
	w.sim.SetLatency("cgi-bin/stable_token", time.Second)
	start := time.Now()
	_, err := c.UserList(context.Background(), w.app, "")
	if err == nil || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("err = %v after %s; want a timeout within the deadline", err, time.Since(start))
	}
}

func TestStableAndClientCredentialTokens(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1)
	c := w.client(t, nil)
	ctx := context.Background()
	a, err := c.StableToken(ctx, w.app.AppID, w.app.Secret, false)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.StableToken(ctx, w.app.AppID, w.app.Secret, false)
	if a.AccessToken != b.AccessToken || len(a.AccessToken) < 100 {
		t.Fatal("stable_token without force must return the same (long) token")
	}
	// In its last five minutes a new token comes, and both work.
	w.sim.Advance(7200*time.Second - 4*time.Minute)
	n, _ := c.StableToken(ctx, w.app.AppID, w.app.Secret, false)
	if n.AccessToken == a.AccessToken {
		t.Fatal("no new token in the last five minutes")
	}

	// cgi-bin/token: each call mints; the previous dies after the grace period.
	t1, err := c.ClientCredentialToken(ctx, w.app.AppID, w.app.Secret)
	if err != nil {
		t.Fatal(err)
	}
	t2, _ := c.ClientCredentialToken(ctx, w.app.AppID, w.app.Secret)
	if t1.AccessToken == t2.AccessToken {
		t.Fatal("cgi-bin/token returned the same token twice")
	}
	probe := func(tok string) error {
		resp, err := wechattest.LoopbackOnly(t).Get(w.sim.URL() + "/cgi-bin/user/get?access_token=" + tok)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var r struct {
			ErrCode int `json:"errcode"`
		}
		_ = decodeJSON(resp, &r)
		if r.ErrCode != 0 {
			return &wechat.Error{Code: r.ErrCode}
		}
		return nil
	}
	if err := probe(t1.AccessToken); err != nil {
		t.Fatalf("previous token inside grace: %v", err)
	}
	w.sim.Advance(6 * time.Minute)
	if err := probe(t1.AccessToken); wechat.Code(err) != 40001 {
		t.Fatalf("previous token after grace: %v, want 40001", err)
	}
	if err := probe(t2.AccessToken); err != nil {
		t.Fatalf("latest token: %v", err)
	}
	if err := probe(n.AccessToken); err != nil {
		t.Fatalf("stable tokens are isolated from cgi-bin/token: %v", err)
	}
}

func TestLoopbackGuard(t *testing.T) {
	t.Parallel()
	ft := &fakeTB{TB: t}
	hc := wechattest.LoopbackOnly(ft)
	c := wechat.New(wechat.Config{APIBase: "http://10.255.255.1:9", HTTPClient: hc, Tokens: wechat.NewMemoryStore(), Retries: 1, Timeout: time.Second})
	_, err := c.StableToken(context.Background(), "wx0000000000000000", "s", false)
	if err == nil || !ft.failed.Load() {
		t.Fatalf("request to a non-loopback host: err = %v, test failed = %v", err, ft.failed.Load())
	}
	for _, h := range []string{"127.0.0.1", "::1", "localhost", "127.8.9.10"} {
		if !wechattest.IsLoopback(h) {
			t.Errorf("%s is loopback", h)
		}
	}
	for _, h := range []string{"api.weixin.qq.com", "10.0.0.1", "192.168.1.1", "0.0.0.0"} {
		if wechattest.IsLoopback(h) {
			t.Errorf("%s is not loopback", h)
		}
	}
}

type fakeTB struct {
	testing.TB
	failed atomic.Bool
}

func (f *fakeTB) Errorf(string, ...any) { f.failed.Store(true) }

func TestTransportErrorsHideTheURL(t *testing.T) {
	t.Parallel()
	c := wechat.New(wechat.Config{APIBase: "http://127.0.0.1:1", HTTPClient: wechattest.LoopbackOnly(t), Retries: 1, Timeout: time.Second})
	_, err := c.StableToken(context.Background(), "wx0000000000000000", "topsecret", false)
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	_, err = c.ClientCredentialToken(context.Background(), "wx0000000000000000", "topsecret")
	if err == nil || bytes.Contains([]byte(err.Error()), []byte("topsecret")) {
		t.Fatalf("error leaks the secret: %v", err)
	}
}
