package binding_test

import (
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

	"oneid/app/binding"
	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/migrations/dbtest"
	"oneid/models"
)

const (
	principal = "示例科技（上海）有限公司"
	compKey   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg"
	aesKey    = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
)

// world is the simulator with OneID's component, a database, the binding
// service and two tenants.
type world struct {
	t      *testing.T
	sim    *wechattest.Sim
	comp   wechattest.ComponentSpec
	db     *gorm.DB
	wx     *wechat.Client
	svc    *binding.Service
	sealer *models.Sealer
	a, b   int64 // tenants
	admin  binding.Actor
	adminB binding.Actor
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, sim: wechattest.Start(t), db: dbtest.MySQL(t)}
	var err error
	w.comp, err = w.sim.AddComponent(wechattest.ComponentSpec{Token: "comptoken", AESKey: compKey})
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	w.sealer, _ = models.NewSealer(key)
	store := binding.ObserveTokens(models.NewWechatTokenStore(w.db, w.sealer), w.db, nil)
	cfg := w.sim.Config(wechattest.LoopbackOnly(t), store)
	cfg.Component = wechat.Component{AppID: w.comp.AppID, Secret: w.comp.Secret, Token: w.comp.Token, AESKey: w.comp.AESKey}
	w.wx = wechat.New(cfg)
	w.svc = binding.New(binding.Config{DB: w.db, WeChat: w.wx, Sealer: w.sealer})

	// Pushes reach the service as they reach the portal's endpoint.
	rx := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		q := wechat.ParseCallbackQuery(r.URL.Query().Get)
		if _, err := w.svc.HandleComponentPush(r.Context(), q, body); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(rw, "success")
	}))
	t.Cleanup(rx.Close)
	w.sim.SetComponentCallback(w.comp.AppID, rx.URL)
	if _, d, err := w.sim.PushVerifyTicket(w.comp.AppID); err != nil || !d.OK {
		t.Fatalf("verify ticket push: %+v, %v", d, err)
	}

	w.a, w.admin = w.tenant("alpha")
	w.b, w.adminB = w.tenant("bravo")
	return w
}

func (w *world) tenant(name string) (int64, binding.Actor) {
	w.t.Helper()
	tn, u, err := models.CreateTenant(w.db, models.NewTenant{Name: name, PrincipalName: principal,
		Admin: models.User{Email: name + "-" + strings.ToLower(w.t.Name()[4:12]) + "@example.com", Name: name, PasswordHash: "x", Locale: "en"}})
	if err != nil {
		w.t.Fatal(err)
	}
	return tn.ID, binding.Actor{UserID: u.ID, Email: u.Email, IP: "127.0.0.1"}
}

// authorize takes the admin to the authorisation page and back, as the
// portal's two handlers do, and returns the bound app or the refusal.
func (w *world) authorize(tenant int64, who binding.Actor, appID string) (*models.App, error) {
	w.t.Helper()
	ctx := context.Background()
	var state string
	page, err := w.svc.StartAuthorization(ctx, tenant, who.UserID, func(s string) string {
		state = s
		return "https://oneid.example/t/x/apps/authorized?state=" + s
	})
	if err != nil {
		w.t.Fatalf("start authorization: %v", err)
	}
	if !strings.HasPrefix(page, w.sim.URL()+"/cgi-bin/componentloginpage?") || !strings.Contains(page, url.QueryEscape(state)) {
		w.t.Fatalf("authorisation page %s", page)
	}
	code, err := w.sim.Authorize(w.comp.AppID, appID)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.svc.CompleteAuthorization(ctx, tenant, who, state, code)
}

func (w *world) rows(table string, tenant int64) int64 {
	w.t.Helper()
	var n int64
	if err := w.db.Table(table).Scopes(models.ForTenant(tenant)).Count(&n).Error; err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *world) audited(tenant int64, action, target string) bool {
	w.t.Helper()
	page, err := models.ListAudit(w.db, tenant, 0, 100)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, e := range page.Events {
		if e.Action == action && e.Target == target {
			return true
		}
	}
	return false
}

func refusal(t *testing.T, err error, reason string) *binding.Refusal {
	t.Helper()
	r, ok := binding.AsRefusal(err)
	if !ok || r.Reason != reason {
		t.Fatalf("got %v, want the refusal %q", err, reason)
	}
	return r
}

func TestAuthorizedBinding(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	open := w.sim.AddOpenAccount(wechattest.OpenAccountSpec{Principal: principal, Verified: true})
	oa := w.sim.MustAddApp(wechattest.AppSpec{Name: "示例服务号", Principal: principal, OpenAppID: open})
	mp := w.sim.MustAddApp(wechattest.AppSpec{Name: "示例小程序", Type: wechattest.TypeMiniProgram, Principal: principal})

	t.Run("BindsTheAppWithItsPrincipalAndOpenAccount", func(t *testing.T) {
		app, err := w.authorize(w.a, w.admin, oa.AppID)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := models.FindApp(w.db, w.a, app.ID)
		if got.Kind != models.KindService || got.Name != "示例服务号" || got.PrincipalName != principal || got.Declared ||
			got.BindingMode != models.ModeAuthorized || got.Status != models.AppActive || got.GhID != oa.UserName || got.OpenAccountID == nil {
			t.Fatalf("bound app %+v", got)
		}
		acct, _ := models.FindOpenAccount(w.db, w.a, *got.OpenAccountID)
		if acct.OpenAppID != open || acct.CreatedVia != models.OpenViaExisting || acct.PrincipalName != principal {
			t.Fatalf("open account %+v", acct)
		}
		if !w.audited(w.a, models.AuditAppBound, oa.AppID) || !w.audited(w.a, models.AuditOpenAccountCreated, open) {
			t.Fatal("binding not audited")
		}
	})

	t.Run("AStateWorksOnceForItsTenantAndAdmin", func(t *testing.T) {
		var state string
		if _, err := w.svc.StartAuthorization(ctx, w.a, w.admin.UserID, func(s string) string { state = s; return "https://x/?state=" + s }); err != nil {
			t.Fatal(err)
		}
		code, _ := w.sim.Authorize(w.comp.AppID, mp.AppID)
		for name, try := range map[string]func() error{
			"AnotherTenant": func() error { _, err := w.svc.CompleteAuthorization(ctx, w.b, w.adminB, state, code); return err },
			"AnotherPerson": func() error {
				_, err := w.svc.CompleteAuthorization(ctx, w.a, binding.Actor{UserID: w.adminB.UserID}, state, code)
				return err
			},
		} {
			if err := try(); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("%s: %v, want ErrNotFound", name, err)
			}
		}
		if w.rows("apps", w.b) != 0 {
			t.Fatal("another tenant got the app")
		}
		app, err := w.svc.CompleteAuthorization(ctx, w.a, w.admin, state, code)
		if err != nil || app.Kind != models.KindMiniProgram || app.OpenAccountID != nil {
			t.Fatalf("mini-program: %+v, %v", app, err)
		}
		if _, err := w.svc.CompleteAuthorization(ctx, w.a, w.admin, state, code); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("replayed state: %v", err)
		}
	})

	t.Run("RefusesAnAppAnotherTenantHolds", func(t *testing.T) {
		_, err := w.authorize(w.b, w.adminB, oa.AppID)
		refusal(t, err, binding.RefuseHeldElsewhere)
		if w.rows("apps", w.b) != 0 || w.rows("open_accounts", w.b) != 0 {
			t.Fatal("the refused binding wrote rows")
		}
	})

	t.Run("AuthorizationEventsUpdateTheStatus", func(t *testing.T) {
		app, _ := models.FindAppByAppID(w.db, w.a, oa.AppID)
		if d, err := w.sim.Unauthorize(w.comp.AppID, oa.AppID); err != nil || !d.OK {
			t.Fatalf("unauthorized push: %+v, %v", d, err)
		}
		got, _ := models.FindApp(w.db, w.a, app.ID)
		if got.Status != models.AppRevoked || !w.audited(w.a, models.AuditAppAuthorizationRevoked, oa.AppID) {
			t.Fatalf("after unauthorized: %s", got.Status)
		}
		// The admin binds it again through the page: active, same row.
		again, err := w.authorize(w.a, w.admin, oa.AppID)
		if err != nil || again.ID != app.ID {
			t.Fatalf("re-authorized: %+v, %v", again, err)
		}
		waitFor(t, func() bool { return w.audited(w.a, models.AuditAppAuthorized, oa.AppID) })
		got, _ = models.FindApp(w.db, w.a, app.ID)
		if got.Status != models.AppActive {
			t.Fatalf("after authorized: %s", got.Status)
		}
		if _, err := w.wx.AccessToken(ctx, wechat.App{AppID: oa.AppID, Authorized: true}); err != nil {
			t.Fatalf("the new authorization gives no token: %v", err)
		}
	})

	t.Run("StoresTheVerifyTicket", func(t *testing.T) {
		tok, err := models.NewWechatTokenStore(w.db, w.sealer).Get(ctx, w.comp.AppID, wechat.KindVerifyTicket)
		if err != nil || !strings.HasPrefix(tok.Value, "ticket@@@") {
			t.Fatalf("ticket %+v, %v", tok, err)
		}
	})
}

func TestAuthorizedRefusals(t *testing.T) {
	w := newWorld(t)
	cases := []struct {
		name   string
		spec   wechattest.AppSpec
		setup  func(appID string)
		reason string
	}{
		{"Unverified", wechattest.AppSpec{Name: "未认证服务号", Principal: principal, VerifyType: wechattest.Unverified}, nil, binding.RefuseAppUnverified},
		{"Individual", wechattest.AppSpec{Name: "个人订阅号", Type: wechattest.TypeSubscription, Principal: "个人"}, nil, binding.RefuseIndividual},
		{"PrincipalMismatch", wechattest.AppSpec{Name: "北京服务号", Principal: "示例科技（北京）有限公司"}, func(appID string) {
			// The tenant knows the open account as Shanghai's; WeChat has this app in it.
			open := w.sim.AddOpenAccount(wechattest.OpenAccountSpec{Principal: principal, Verified: true})
			if err := w.sim.BindOpen(appID, open); err != nil {
				t.Fatal(err)
			}
			if _, err := w.svc.DeclareOpenAccount(context.Background(), w.a, w.admin, binding.DeclaredOpenAccount{OpenAppID: open, Principal: principal, Verified: true}); err != nil {
				t.Fatal(err)
			}
		}, binding.RefusePrincipalMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			app := w.sim.MustAddApp(c.spec)
			if c.setup != nil {
				c.setup(app.AppID)
			}
			apps, opens := w.rows("apps", w.a), w.rows("open_accounts", w.a)
			_, err := w.authorize(w.a, w.admin, app.AppID)
			r := refusal(t, err, c.reason)
			if r.AppPrincipal != c.spec.Principal {
				t.Errorf("refusal names principal %q", r.AppPrincipal)
			}
			if c.reason == binding.RefusePrincipalMismatch && r.OpenPrincipal != principal {
				t.Errorf("refusal names the open account's principal %q", r.OpenPrincipal)
			}
			if w.rows("apps", w.a) != apps || w.rows("open_accounts", w.a) != opens {
				t.Fatal("the refused binding wrote rows")
			}
			if tok, _ := models.NewWechatTokenStore(w.db, w.sealer).Get(context.Background(), app.AppID, wechat.KindAuthorizerRefresh); tok.Value != "" {
				t.Fatal("OneID kept the refused app's refresh token")
			}
		})
	}
}

func TestOpenPlatformAccounts(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	first := w.sim.MustAddApp(wechattest.AppSpec{Name: "first", Principal: principal})
	second := w.sim.MustAddApp(wechattest.AppSpec{Name: "second", Type: wechattest.TypeMiniProgram, Principal: principal})
	// Equal to OneID after normalisation, not to WeChat, which compares as is.
	third := w.sim.MustAddApp(wechattest.AppSpec{Name: "third", Type: wechattest.TypeMiniProgram, Principal: "示例科技(上海)有限公司"})
	apps := map[string]*models.App{}
	for _, spec := range []wechattest.AppInfo{first, second, third} {
		app, err := w.authorize(w.a, w.admin, spec.AppID)
		if err != nil || app.OpenAccountID != nil {
			t.Fatalf("bind %s: %+v, %v", spec.Name, app, err)
		}
		apps[spec.Name] = app
	}

	open, err := w.svc.CreateOpenAccount(ctx, w.a, w.admin, apps["first"].ID)
	if err != nil {
		t.Fatal(err)
	}
	if open.Verified || open.CreatedVia != models.OpenViaAPI || w.sim.OpenAppIDOf(first.AppID) != open.OpenAppID {
		t.Fatalf("created %+v; WeChat has %s", open, w.sim.OpenAppIDOf(first.AppID))
	}
	if !w.audited(w.a, models.AuditOpenAccountCreated, open.OpenAppID) || !w.audited(w.a, models.AuditAppOpenBound, first.AppID) {
		t.Fatal("open/create not audited")
	}
	_, err = w.svc.CreateOpenAccount(ctx, w.a, w.admin, apps["first"].ID)
	refusal(t, err, binding.RefuseHasOpenAccount)

	err = w.svc.BindToOpenAccount(ctx, w.a, w.admin, apps["second"].ID, open.ID)
	refusal(t, err, binding.RefuseOpenUnverified)

	if _, err := w.svc.DeclareOpenAccount(ctx, w.a, w.admin, binding.DeclaredOpenAccount{OpenAppID: open.OpenAppID, Principal: principal, Verified: true}); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.BindToOpenAccount(ctx, w.a, w.admin, apps["second"].ID, open.ID); err != nil {
		t.Fatal(err)
	}
	if w.sim.OpenAppIDOf(second.AppID) != open.OpenAppID {
		t.Fatal("WeChat did not bind the second app")
	}

	err = w.svc.BindToOpenAccount(ctx, w.a, w.admin, apps["third"].ID, open.ID)
	r := refusal(t, err, binding.RefusePrincipalMismatch)
	if r.Code != wechat.CodeNotSameContractor || r.AppPrincipal != third.Principal || r.OpenPrincipal != principal {
		t.Fatalf("89001 refusal %+v", r)
	}
	got, _ := models.FindApp(w.db, w.a, apps["third"].ID)
	if got.OpenAccountID != nil {
		t.Fatal("the refused app joined the account")
	}

	if _, err := w.svc.DeclareOpenAccount(ctx, w.b, w.adminB, binding.DeclaredOpenAccount{OpenAppID: open.OpenAppID, Principal: principal, Verified: true}); err == nil {
		t.Fatal("another tenant declared the same open account")
	} else {
		refusal(t, err, binding.RefuseOpenHeldElsewhere)
	}
}

func selfManaged(app wechattest.AppInfo) binding.SelfManaged {
	return binding.SelfManaged{AppID: app.AppID, Secret: app.Secret, Kind: models.KindService, Name: app.Name,
		Principal: app.Principal, Verified: true, CallbackToken: "cbtoken123", AESKey: aesKey}
}

func TestSelfManagedBinding(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	oa := w.sim.MustAddApp(wechattest.AppSpec{Name: "自管服务号", Principal: principal})

	t.Run("Refusals", func(t *testing.T) {
		open, err := w.svc.DeclareOpenAccount(ctx, w.a, w.admin, binding.DeclaredOpenAccount{OpenAppID: "wx00000000000000aa", Principal: "另一家公司", Verified: true})
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name   string
			edit   func(*binding.SelfManaged)
			reason string
		}{
			{"WrongSecret", func(in *binding.SelfManaged) { in.Secret = strings.Repeat("0", 32) }, binding.RefuseWrongSecret},
			{"Individual", func(in *binding.SelfManaged) { in.Principal = "个人" }, binding.RefuseIndividual},
			{"Unverified", func(in *binding.SelfManaged) { in.Verified = false }, binding.RefuseAppUnverified},
			{"PrincipalMismatch", func(in *binding.SelfManaged) { in.OpenAccountID = open.ID }, binding.RefusePrincipalMismatch},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				in := selfManaged(oa)
				c.edit(&in)
				_, err := w.svc.BindSelfManaged(ctx, w.a, w.admin, in)
				refusal(t, err, c.reason)
				if w.rows("apps", w.a) != 0 {
					t.Fatal("the refused binding wrote a row")
				}
			})
		}
		t.Run("MalformedEncodingAESKey", func(t *testing.T) {
			in := selfManaged(oa)
			in.AESKey = aesKey[:42] + "!"
			_, err := w.svc.BindSelfManaged(ctx, w.a, w.admin, in)
			var p binding.ProblemsError
			if !errors.As(err, &p) || p["aes_key"] != binding.ProblemAESKey {
				t.Fatalf("%v", err)
			}
		})
	})

	var app *models.App
	t.Run("SavesOnceTheSecretObtainsAToken", func(t *testing.T) {
		calls := w.sim.Calls("cgi-bin/stable_token")
		var err error
		app, err = w.svc.BindSelfManaged(ctx, w.a, w.admin, selfManaged(oa))
		if err != nil {
			t.Fatal(err)
		}
		if w.sim.Calls("cgi-bin/stable_token") != calls+1 {
			t.Fatal("the secret was not proven with stable_token")
		}
		got, _ := models.FindApp(w.db, w.a, app.ID)
		if !got.Declared || got.BindingMode != models.ModeSelfManaged || got.OpenAccountID != nil {
			t.Fatalf("saved %+v", got)
		}
		for col, want := range map[string]string{models.ColAppSecret: oa.Secret, models.ColCallbackToken: "cbtoken123", models.ColAESKey: aesKey} {
			if v, err := models.OpenAppSecret(w.sealer, got, col); err != nil || v != want {
				t.Errorf("%s = %q, %v", col, v, err)
			}
		}
		var raw string
		w.db.Raw("SELECT CAST(secret_sealed AS CHAR) FROM apps WHERE id = ? AND tenant_id = ?", app.ID, w.a).Scan(&raw)
		if strings.Contains(raw, oa.Secret) {
			t.Fatal("the secret is stored in the clear")
		}
		if !w.audited(w.a, models.AuditAppBound, oa.AppID) {
			t.Fatal("not audited")
		}
	})

	t.Run("RefusesTheSameAppTwice", func(t *testing.T) {
		_, err := w.svc.BindSelfManaged(ctx, w.a, w.admin, selfManaged(oa))
		refusal(t, err, binding.RefuseAlreadyBound)
		_, err = w.svc.BindSelfManaged(ctx, w.b, w.adminB, selfManaged(oa))
		refusal(t, err, binding.RefuseHeldElsewhere)
		if w.rows("apps", w.b) != 0 {
			t.Fatal("another tenant got a row")
		}
	})

	t.Run("ACredentialErrorMarksTheAppFailingUntilATokenWorks", func(t *testing.T) {
		w.sim.FailNext("cgi-bin/stable_token", wechat.CodeInvalidSecret, 1)
		if _, err := w.wx.AccessToken(ctx, wechat.App{AppID: oa.AppID, Secret: oa.Secret}); err == nil {
			t.Fatal("the injected failure did not fail")
		}
		got, _ := models.FindApp(w.db, w.a, app.ID)
		if got.Status != models.AppFailing {
			t.Fatalf("status %s, want failing", got.Status)
		}
		h, err := w.svc.Health(ctx, got)
		if err != nil || len(h.Errors) != 1 || h.Errors[0].Code != wechat.CodeInvalidSecret {
			t.Fatalf("health %+v, %v", h, err)
		}
		if _, err := w.wx.AccessToken(ctx, wechat.App{AppID: oa.AppID, Secret: oa.Secret}); err != nil {
			t.Fatal(err)
		}
		got, _ = models.FindApp(w.db, w.a, app.ID)
		if got.Status != models.AppActive {
			t.Fatalf("status %s after a good token, want active", got.Status)
		}
	})

	t.Run("HealthWarnsOfAnotherSystemRefreshingTheSecret", func(t *testing.T) {
		a := wechat.App{AppID: oa.AppID, Secret: oa.Secret}
		for i := 0; i < 2; i++ {
			w.sim.ForceRefreshStable(oa.AppID) // another system, force_refresh
			if _, err := w.wx.UserList(ctx, a, ""); err != nil {
				t.Fatal(err)
			}
		}
		w.sim.ExhaustQuota(oa.AppID, "cgi-bin/user/get", wechat.CodeDailyQuota)
		_, err := w.wx.UserList(ctx, a, "")
		if !wechat.IsQuota(err) {
			t.Fatalf("quota: %v", err)
		}
		_ = models.NoteWechatError(w.db, oa.AppID, wechat.Code(err), time.Now()) // as the sync job does
		got, _ := models.FindApp(w.db, w.a, app.ID)
		h, err := w.svc.Health(ctx, got)
		if err != nil {
			t.Fatal(err)
		}
		if !h.SharedSecret || h.Stats.Rejections < 2 || h.Stats.LastRefreshAt.IsZero() {
			t.Fatalf("health %+v", h)
		}
		quota := false
		for _, e := range h.Errors {
			quota = quota || e.Code == wechat.CodeDailyQuota
		}
		if !quota {
			t.Fatalf("no quota error in %+v", h.Errors)
		}
	})

	t.Run("ReplaceSecretNeedsAWorkingSecret", func(t *testing.T) {
		err := w.svc.ReplaceSecret(ctx, w.a, w.admin, app.ID, strings.Repeat("1", 32))
		refusal(t, err, binding.RefuseWrongSecret)
		if w.audited(w.a, models.AuditAppSecretReplaced, oa.AppID) {
			t.Fatal("a refused secret was audited as replaced")
		}
		if err := w.svc.ReplaceSecret(ctx, w.a, w.admin, app.ID, oa.Secret); err != nil {
			t.Fatal(err)
		}
		if !w.audited(w.a, models.AuditAppSecretReplaced, oa.AppID) {
			t.Fatal("replacement not audited")
		}
		if err := w.svc.ReplaceSecret(ctx, w.b, w.adminB, app.ID, oa.Secret); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("another tenant: %v", err)
		}
	})

	t.Run("ASelfManagedAppIsDeclaredInAnOpenAccount", func(t *testing.T) {
		other, err := w.svc.DeclareOpenAccount(ctx, w.a, w.admin, binding.DeclaredOpenAccount{OpenAppID: "wx00000000000000bb", Principal: "示例科技（北京）有限公司", Verified: true})
		if err != nil {
			t.Fatal(err)
		}
		r := refusal(t, w.svc.BindToOpenAccount(ctx, w.a, w.admin, app.ID, other.ID), binding.RefusePrincipalMismatch)
		if !r.AppDeclared || !r.OpenDeclared {
			t.Fatalf("the refusal does not say both names are declared: %+v", r)
		}
		same, err := w.svc.DeclareOpenAccount(ctx, w.a, w.admin, binding.DeclaredOpenAccount{OpenAppID: "wx00000000000000cc", Principal: "示例科技(上海)有限公司", Verified: true})
		if err != nil {
			t.Fatal(err)
		}
		calls := w.sim.Calls("cgi-bin/open/bind")
		if err := w.svc.BindToOpenAccount(ctx, w.a, w.admin, app.ID, same.ID); err != nil {
			t.Fatal(err)
		}
		got, _ := models.FindApp(w.db, w.a, app.ID)
		if got.OpenAccountID == nil || *got.OpenAccountID != same.ID || w.sim.Calls("cgi-bin/open/bind") != calls {
			t.Fatalf("declared in: %v (open/bind calls %d → %d)", got.OpenAccountID, calls, w.sim.Calls("cgi-bin/open/bind"))
		}
		refusal(t, w.svc.BindToOpenAccount(ctx, w.a, w.admin, app.ID, same.ID), binding.RefuseHasOpenAccount)
	})

	t.Run("UnbindKeepsTheRowAndFreesTheAppID", func(t *testing.T) {
		if _, err := w.svc.Unbind(ctx, w.b, w.adminB, app.ID); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("another tenant: %v", err)
		}
		if _, err := w.svc.Unbind(ctx, w.a, w.admin, app.ID); err != nil {
			t.Fatal(err)
		}
		got, _ := models.FindApp(w.db, w.a, app.ID)
		if got.IsBound() || got.Status != models.AppUnbound || got.SecretSealed != nil || !w.audited(w.a, models.AuditAppUnbound, oa.AppID) {
			t.Fatalf("unbound %+v", got)
		}
		if _, err := w.svc.BindSelfManaged(ctx, w.b, w.adminB, selfManaged(oa)); err != nil {
			t.Fatalf("another tenant after the unbinding: %v", err)
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
