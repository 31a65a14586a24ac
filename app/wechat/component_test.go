package wechat_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/migrations/dbtest"
	"oneid/models"
)

const compKey = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg"

// componentWorld is a simulator with a component whose pushes reach a receiver
// that stores the verify ticket through the client, as the portal does.
type componentWorld struct {
	sim  *wechattest.Sim
	c    *wechat.Client
	comp wechattest.ComponentSpec
	rx   *pushReceiver
}

func newComponentWorld(t *testing.T) componentWorld {
	sim := wechattest.Start(t)
	comp, err := sim.AddComponent(wechattest.ComponentSpec{Token: "comptoken", AESKey: compKey})
	if err != nil {
		t.Fatal(err)
	}
	cfg := sim.Config(wechattest.LoopbackOnly(t), wechat.NewMemoryStore())
	cfg.Component = wechat.Component{AppID: comp.AppID, Secret: comp.Secret, Token: comp.Token, AESKey: comp.AESKey}
	c := wechat.New(cfg)
	cr, _ := wechat.NewCrypter(compKey, comp.AppID)
	rx := newReceiver(t, comp.Token, cr)
	sim.SetComponentCallback(comp.AppID, rx.srv.URL+"/wechat/component")
	return componentWorld{sim: sim, c: c, comp: comp, rx: rx}
}

func (cw componentWorld) saveTicket(t *testing.T) {
	t.Helper()
	_, d, err := cw.sim.PushVerifyTicket(cw.comp.AppID)
	if err != nil || !d.OK {
		t.Fatalf("ticket push: %+v, %v", d, err)
	}
	cw.rx.mu.Lock()
	ev := cw.rx.events[len(cw.rx.events)-1]
	cw.rx.mu.Unlock()
	if ev.InfoType != wechat.InfoVerifyTicket || ev.AppID != cw.comp.AppID {
		t.Fatalf("ticket event %+v", ev)
	}
	if err := cw.c.SaveVerifyTicket(context.Background(), ev.ComponentVerifyTicket); err != nil {
		t.Fatal(err)
	}
}

// authorize walks the admin through the authorisation page and returns the app.
func (cw componentWorld) authorize(t *testing.T, appID string) wechat.App {
	t.Helper()
	ctx := context.Background()
	pre, exp, err := cw.c.CreatePreAuthCode(ctx)
	if err != nil || exp <= 0 {
		t.Fatalf("pre-auth code: %v", err)
	}
	page := cw.c.ComponentLoginURL(pre, "https://portal.example/bind/done", wechat.AuthTypeBoth, "")
	hc := wechattest.LoopbackOnly(t)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(resp)
	marker := `data-testid="sim-authorize-` + appID + `" href="`
	i := strings.Index(body, marker)
	if resp.StatusCode != 200 || i < 0 {
		t.Fatalf("authorisation page (%d) does not offer %s:\n%s", resp.StatusCode, appID, body)
	}
	href := body[i+len(marker):]
	href = strings.ReplaceAll(href[:strings.IndexByte(href, '"')], "&amp;", "&")
	resp, err = hc.Get(cw.sim.URL() + href)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Host != "portal.example" || loc.Query().Get("auth_code") == "" {
		t.Fatalf("consent redirect %d to %s", resp.StatusCode, loc)
	}
	info, err := cw.c.QueryAuth(ctx, loc.Query().Get("auth_code"))
	if err != nil || info.AuthorizerAppID != appID || info.AuthorizerRefreshToken == "" {
		t.Fatalf("api_query_auth = %+v, %v", info, err)
	}
	if _, err := cw.c.QueryAuth(ctx, loc.Query().Get("auth_code")); wechat.Code(err) != 61009 {
		t.Fatalf("auth code used twice: %v, want 61009", err)
	}
	return wechat.App{AppID: appID, Authorized: true}
}

func TestComponentAuthorizationFlow(t *testing.T) {
	t.Parallel()
	cw := newComponentWorld(t)
	ctx := context.Background()
	oa := cw.sim.MustAddApp(wechattest.AppSpec{Name: "svc", Principal: principal, Followers: 42})
	unverified := cw.sim.MustAddApp(wechattest.AppSpec{Name: "mp", Type: wechattest.TypeMiniProgram, Principal: "个人", VerifyType: wechattest.Unverified})

	if _, _, err := cw.c.CreatePreAuthCode(ctx); !errors.Is(err, wechat.ErrNoVerifyTicket) {
		t.Fatalf("without a ticket: %v, want ErrNoVerifyTicket", err)
	}
	cw.saveTicket(t)
	app := cw.authorize(t, oa.AppID)

	// The "authorized" notice reaches the component's URL.
	waitFor(t, func() bool {
		cw.rx.mu.Lock()
		defer cw.rx.mu.Unlock()
		last := cw.rx.events[len(cw.rx.events)-1]
		return last.InfoType == wechat.InfoAuthorized && last.AuthorizerAppID == oa.AppID
	})

	a, err := cw.c.GetAuthorizer(ctx, oa.AppID)
	if err != nil || a.AuthorizerInfo.PrincipalName != principal || !a.AuthorizerInfo.Verified() || a.AuthorizerInfo.ServiceTypeInfo.ID != 2 ||
		a.AuthorizerInfo.IsMiniProgram() || a.AuthorizationInfo.AuthorizerAccessToken != "" || a.AuthorizerInfo.UserName != oa.UserName || !a.AuthorizationInfo.HasFunc(24) {
		t.Fatalf("authorizer info = %+v, %v", a, err)
	}
	list, err := cw.c.UserList(ctx, app, "")
	if err != nil || list.Total != 42 {
		t.Fatalf("user/get with the authorizer token: %+v, %v", list, err)
	}

	// When the authorizer token expires, the refresh token renews it.
	cw.sim.ExpireTokens(oa.AppID)
	if _, err := cw.c.UserList(ctx, app, ""); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if n := cw.sim.Calls("cgi-bin/component/api_authorizer_token"); n != 1 {
		t.Fatalf("api_authorizer_token calls = %d, want 1", n)
	}

	mp := cw.authorize(t, unverified.AppID)
	mi, err := cw.c.GetAuthorizer(ctx, mp.AppID)
	if err != nil || mi.AuthorizerInfo.Verified() || !mi.AuthorizerInfo.IsMiniProgram() || mi.AuthorizerInfo.PrincipalName != "个人" {
		t.Fatalf("unverified mini program = %+v, %v", mi.AuthorizerInfo, err)
	}

	// Cancelled authorisation: the refresh token dies.
	if _, err := cw.sim.Unauthorize(cw.comp.AppID, oa.AppID); err != nil {
		t.Fatal(err)
	}
	cw.sim.ExpireTokens(oa.AppID)
	if _, err := cw.c.UserList(ctx, app, ""); wechat.Code(err) != 61023 {
		t.Fatalf("after unauthorize: %v, want 61023", err)
	}
	if _, err := cw.c.GetAuthorizer(ctx, oa.AppID); wechat.Code(err) != 61003 {
		t.Fatalf("authorizer info after unauthorize: %v, want 61003", err)
	}
}

func TestHandleComponentPush(t *testing.T) {
	t.Parallel()
	sim := wechattest.Start(t)
	comp, _ := sim.AddComponent(wechattest.ComponentSpec{Token: "comptoken", AESKey: compKey})
	cfg := sim.Config(wechattest.LoopbackOnly(t), wechat.NewMemoryStore())
	cfg.Component = wechat.Component{AppID: comp.AppID, Secret: comp.Secret, Token: comp.Token, AESKey: comp.AESKey}
	c := wechat.New(cfg)
	var got []*wechat.Event
	rx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, wechat.MaxCallbackBody+1))
		ev, err := c.HandleComponentPush(r.Context(), wechat.ParseCallbackQuery(r.URL.Query().Get), body)
		if err != nil {
			http.Error(w, "refused", http.StatusForbidden)
			return
		}
		got = append(got, ev)
		_, _ = w.Write([]byte("success"))
	}))
	defer rx.Close()
	sim.SetComponentCallback(comp.AppID, rx.URL)
	if _, d, err := sim.PushVerifyTicket(comp.AppID); err != nil || !d.OK {
		t.Fatalf("ticket push: %+v, %v", d, err)
	}
	// The stored ticket is good enough to get a component token.
	if _, _, err := c.CreatePreAuthCode(context.Background()); err != nil {
		t.Fatalf("after the pushed ticket: %v", err)
	}
	// A push signed with another token is refused, three times.
	sim.SetComponentCallback(comp.AppID, "")
	other, _ := sim.AddComponent(wechattest.ComponentSpec{Token: "other", AESKey: compKey})
	sim.SetComponentCallback(other.AppID, rx.URL)
	if _, d, _ := sim.PushVerifyTicket(other.AppID); d.OK || d.Attempts != 3 || d.Status != http.StatusForbidden {
		t.Fatalf("foreign push: %+v; want refused on all 3 attempts", d)
	}
	if len(got) != 1 || got[0].InfoType != wechat.InfoVerifyTicket {
		t.Fatalf("events = %+v", got)
	}
}

func TestComponentTicketErrors(t *testing.T) {
	t.Parallel()
	cw := newComponentWorld(t)
	ctx := context.Background()
	if _, err := cw.c.ComponentToken(ctx, "ticket@@@forged"); wechat.Code(err) != 61006 {
		t.Fatalf("forged ticket: %v, want 61006", err)
	}
	ticket, err := cw.sim.NewVerifyTicket(cw.comp.AppID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cw.c.ComponentToken(ctx, ticket); err != nil {
		t.Fatal(err)
	}
	cw.sim.Advance(12*time.Hour + time.Minute)
	if _, err := cw.c.ComponentToken(ctx, ticket); wechat.Code(err) != 61005 {
		t.Fatalf("stale ticket: %v, want 61005", err)
	}
}

func TestOpenPlatformBinding(t *testing.T) {
	t.Parallel()
	cw := newComponentWorld(t)
	ctx := context.Background()
	cw.saveTicket(t)
	oa := cw.sim.MustAddApp(wechattest.AppSpec{Name: "svc", Principal: principal})
	mp := cw.sim.MustAddApp(wechattest.AppSpec{Name: "mp", Type: wechattest.TypeMiniProgram, Principal: principal})
	foreign := cw.sim.MustAddApp(wechattest.AppSpec{Name: "foreign", Principal: "阿里巴巴（中国）有限公司"})
	manual := cw.sim.AddOpenAccount(wechattest.OpenAccountSpec{Name: "manual", Principal: principal, Verified: true})
	noPerm := cw.sim.MustAddApp(wechattest.AppSpec{Name: "noperm", Principal: principal, Funcs: []int{1, 2}})

	aOA, aMP, aForeign, aNoPerm := cw.authorize(t, oa.AppID), cw.authorize(t, mp.AppID), cw.authorize(t, foreign.AppID), cw.authorize(t, noPerm.AppID)

	if got, err := cw.c.OpenGet(ctx, aOA); err != nil || got != "" {
		t.Fatalf("open/get of an unbound app = %q, %v; want \"\", nil", got, err)
	}
	openID, err := cw.c.OpenCreate(ctx, aOA)
	if err != nil || len(openID) != 18 {
		t.Fatalf("open/create = %q, %v", openID, err)
	}
	if got, _ := cw.c.OpenGet(ctx, aOA); got != openID {
		t.Fatalf("open/get = %q, want %q", got, openID)
	}
	if err := cw.c.OpenBind(ctx, aMP, openID); err != nil {
		t.Fatalf("bind a same-principal mini program: %v", err)
	}

	cases := []struct {
		name string
		run  func() error
		want int
	}{
		{"CreateWhenBound", func() error { _, err := cw.c.OpenCreate(ctx, aOA); return err }, wechat.CodeOpenAlreadyBound},
		{"BindWhenBound", func() error { return cw.c.OpenBind(ctx, aMP, openID) }, wechat.CodeOpenAlreadyBound},
		{"PrincipalMismatch", func() error { return cw.c.OpenBind(ctx, aForeign, openID) }, wechat.CodeNotSameContractor},
		{"NotCreatedByAPI", func() error {
			return cw.c.OpenBind(ctx, aForeign, cw.sim.AddOpenAccount(wechattest.OpenAccountSpec{Name: "m2", Principal: foreign.Principal}))
		}, wechat.CodeOpenNotByAPI},
		{"UnbindManual", func() error { return cw.c.OpenUnbind(ctx, aForeign, manual) }, wechat.CodeOpenNotExists},
		{"NoPermissionSet", func() error { _, err := cw.c.OpenGet(ctx, aNoPerm); return err }, wechat.CodeUnauthorized},
		{"PlainAppToken", func() error {
			_, err := cw.c.OpenGet(ctx, wechat.App{AppID: oa.AppID, Secret: oa.Secret})
			return err
		}, wechat.CodeUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); wechat.Code(err) != tc.want {
				t.Fatalf("err = %v, want %d", err, tc.want)
			}
		})
	}

	t.Run("LimitOfAnUnverifiedAPIAccount", func(t *testing.T) {
		var last error
		for i := range 5 {
			extra := cw.sim.MustAddApp(wechattest.AppSpec{Name: "extra" + string(rune('a'+i)), Type: wechattest.TypeMiniProgram, Principal: principal})
			last = cw.c.OpenBind(ctx, cw.authorize(t, extra.AppID), openID)
		}
		if wechat.Code(last) != wechat.CodeOpenBindLimit {
			t.Fatalf("the 6th app bound to an unverified API-created account: %v, want 89004", last)
		}
	})

	if err := cw.c.OpenUnbind(ctx, aMP, openID); err != nil {
		t.Fatalf("unbind: %v", err)
	}
	if got, _ := cw.c.OpenGet(ctx, aMP); got != "" {
		t.Fatalf("after unbind open/get = %q", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 3 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// TestAuthorizerTokensOnDatabaseStores runs the authorizer refresh (which
// rewrites the refresh-token row while holding the access-token lock) on both
// database stores, where a whole-file lock could deadlock it.
func TestAuthorizerTokensOnDatabaseStores(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		sealer, err := models.NewSealer(bytes.Repeat([]byte{2}, 32))
		if err != nil {
			t.Fatal(err)
		}
		sim := wechattest.Start(t)
		comp, err := sim.AddComponent(wechattest.ComponentSpec{Token: "t", AESKey: compKey})
		if err != nil {
			t.Fatal(err)
		}
		cfg := sim.Config(wechattest.LoopbackOnly(t), models.NewWechatTokenStore(db, sealer))
		cfg.Component = wechat.Component{AppID: comp.AppID, Secret: comp.Secret}
		cfg.Timeout = 5 * time.Second
		c := wechat.New(cfg)
		ctx := context.Background()
		ticket, _ := sim.NewVerifyTicket(comp.AppID)
		if err := c.SaveVerifyTicket(ctx, ticket); err != nil {
			t.Fatal(err)
		}
		oa := sim.MustAddApp(wechattest.AppSpec{Name: "svc", Principal: principal, Followers: 3})
		code, err := sim.Authorize(comp.AppID, oa.AppID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.QueryAuth(ctx, code); err != nil {
			t.Fatal(err)
		}
		app := wechat.App{AppID: oa.AppID, Authorized: true}
		for i := range 2 {
			sim.ExpireTokens(oa.AppID)
			start := time.Now()
			if _, err := c.UserList(ctx, app, ""); err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("round %d took %s: the refresh waited on a lock", i, d)
			}
		}
		if n := sim.Calls("cgi-bin/component/api_authorizer_token"); n != 2 {
			t.Fatalf("api_authorizer_token calls = %d, want 2", n)
		}
	})
}
