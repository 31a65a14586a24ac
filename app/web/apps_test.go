package web_test

import (
	"context"
	"crypto/rand"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/app/binding"
	"oneid/app/web"
	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/migrations/dbtest"
	"oneid/models"
	"oneid/views"
)

const (
	appsPrincipal = "示例科技（上海）有限公司"
	appsCompKey   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg"
	appsAESKey    = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
)

func testSealer(t testing.TB) *models.Sealer {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s, err := models.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seedIsolationApps gives an isolation tenant an open-platform account, a
// self-managed app in it, an authorized app in none, and a pending return
// from WeChat's authorisation page.
func seedIsolationApps(t *testing.T, h *harness, w *workspace, it *isoTenant) {
	t.Helper()
	sealer := testSealer(t)
	suffix := strconv.FormatInt(w.tenant.ID, 16)
	open := &models.OpenAccount{OpenAppID: "wx" + strings.Repeat("0", 16-len(suffix)) + suffix, PrincipalName: w.tenant.PrincipalName,
		Verified: true, Declared: true, CreatedVia: models.OpenViaDeclared}
	if err := models.CreateOpenAccount(h.db, w.tenant.ID, open); err != nil {
		t.Fatal(err)
	}
	selfID := "wx" + strings.Repeat("a", 16-len(suffix)) + suffix
	sealed, _ := models.SealAppSecret(sealer, w.tenant.ID, selfID, models.ColAppSecret, "secret-of-"+w.tenant.Slug)
	self := &models.App{AppID: selfID, Kind: models.KindService, Name: w.tenant.Name + " 服务号", PrincipalName: w.tenant.PrincipalName,
		Declared: true, BindingMode: models.ModeSelfManaged, OpenAccountID: &open.ID, SecretSealed: sealed}
	if err := models.BindApp(h.db, w.tenant.ID, self); err != nil {
		t.Fatal(err)
	}
	authID := "wx" + strings.Repeat("b", 16-len(suffix)) + suffix
	auth := &models.App{AppID: authID, Kind: models.KindMiniProgram, Name: w.tenant.Name + " 小程序", PrincipalName: w.tenant.PrincipalName,
		BindingMode: models.ModeAuthorized, GhID: "gh_" + suffix}
	if err := models.BindApp(h.db, w.tenant.ID, auth); err != nil {
		t.Fatal(err)
	}
	state, err := models.CreateBindingState(h.db, w.tenant.ID, w.people[models.RoleAdmin].ID, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	it.ids["open"] = strconv.FormatInt(open.ID, 10)
	it.ids["app"] = strconv.FormatInt(self.ID, 10)
	it.ids["app:authorized"] = strconv.FormatInt(auth.ID, 10)
	it.ids["state"] = state
	it.markers = append(it.markers, open.OpenAppID, selfID, authID, self.Name, auth.Name, self.CallbackKey)
}

// appsWorld is the portal on the WeChat simulator, with OneID's third-party
// platform (its verify ticket already received) and secrets sealed.
type appsWorld struct {
	*harness
	sim    *wechattest.Sim
	comp   wechattest.ComponentSpec
	wx     *wechat.Client
	sealer *models.Sealer
}

func newAppsWorld(t *testing.T, db *gorm.DB) *appsWorld {
	t.Helper()
	h := newHarness(t, db)
	w := &appsWorld{harness: h, sim: wechattest.Start(t), sealer: testSealer(t)}
	var err error
	if w.comp, err = w.sim.AddComponent(wechattest.ComponentSpec{Token: "comptoken", AESKey: appsCompKey}); err != nil {
		t.Fatal(err)
	}
	store := binding.ObserveTokens(models.NewWechatTokenStore(db, w.sealer), db, nil)
	cfg := w.sim.Config(wechattest.LoopbackOnly(t), store)
	cfg.Component = wechat.Component{AppID: w.comp.AppID, Secret: w.comp.Secret, Token: w.comp.Token, AESKey: w.comp.AESKey}
	w.wx = wechat.New(cfg)
	ticket, err := w.sim.NewVerifyTicket(w.comp.AppID)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.wx.SaveVerifyTicket(context.Background(), ticket); err != nil {
		t.Fatal(err)
	}
	srv, err := web.NewServer(web.Deps{
		Config: h.cfg, DB: db, Log: slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Hasher: h.hasher, Now: h.clock.Now, WeChat: w.wx, Sealer: w.sealer,
	})
	if err != nil {
		t.Fatal(err)
	}
	app, err := srv.App()
	if err != nil {
		t.Fatal(err)
	}
	h.srv, h.app = srv, app
	return w
}

var tags = regexp.MustCompile(`<[^>]*>`)

// pageText is a body as a reader sees it: tags dropped, entities decoded.
func pageText(r *response) string { return html.UnescapeString(tags.ReplaceAllString(r.body, "")) }

// message is a catalog message in a language, as a page shows it.
func message(lang, key string, args ...any) string {
	ctx := views.WithLocale(context.Background(), views.Locale(lang))
	if len(args) > 0 {
		return views.Tf(ctx, key, args...)
	}
	return views.T(ctx, key)
}

// speaking makes a client ask for pages in a language.
func speaking(c *client, lang string) *client {
	c.header.Set("Accept-Language", lang)
	return c
}

// authorizeThroughPages is the admin's trip: Bind with WeChat, the
// simulator's authorisation page, consent, and the return to OneID.
func (w *appsWorld) authorizeThroughPages(t *testing.T, c *client, ws *workspace, appID string) *response {
	t.Helper()
	c.get(ws.path("apps"))
	r := c.post(ws.path("apps/authorize"), nil)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), w.sim.URL()+"/cgi-bin/componentloginpage?") {
		t.Fatalf("Bind with WeChat: %d → %q\n%s", r.status, r.location(), r.body)
	}
	hc := wechattest.LoopbackOnly(t)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Get(r.location())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`data-testid="sim-authorize-` + appID + `" href="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("the authorisation page does not offer %s:\n%s", appID, page)
	}
	resp, err = hc.Get(w.sim.URL() + html.UnescapeString(string(m[1])))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || back.Host != "oneid.test" || back.Path != ws.path("apps/authorized") {
		t.Fatalf("consent sends to %q (%d)", resp.Header.Get("Location"), resp.StatusCode)
	}
	return c.get(back.RequestURI())
}

// rawPost posts a body as WeChat does: no cookie, no form, no CSRF token.
func (w *appsWorld) rawPost(t *testing.T, target string, body []byte) *response {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "text/xml")
	res, err := w.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return &response{status: res.StatusCode, header: res.Header, body: string(raw)}
}

// push is a component notice signed and encrypted as WeChat sends it.
func (w *appsWorld) push(t *testing.T, ev wechat.Event, token string) (string, []byte) {
	t.Helper()
	cr, err := wechat.NewCrypter(w.comp.AESKey, w.comp.AppID)
	if err != nil {
		t.Fatal(err)
	}
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), "18273645"
	body, msgSig, err := wechat.SealPush(token, cr, "", ts, nonce, ev.XML())
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"signature": {wechat.Signature(token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce},
		"encrypt_type": {"aes"}, "msg_signature": {msgSig}}
	return "/wechat/component?" + q.Encode(), body
}

// rows counts every row of a table across tenants (a refusal writes none anywhere).
func (w *appsWorld) rows(table string) int64 {
	var n int64
	if err := models.CrossTenant(w.db, "test counts rows").Table(table).Count(&n).Error; err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *appsWorld) snapshotCounts() string {
	return strconv.FormatInt(w.rows("apps"), 10) + "/" + strconv.FormatInt(w.rows("open_accounts"), 10) + "/" + strconv.FormatInt(w.rows("audit_events"), 10)
}

// selfManagedForm is a valid self-managed binding of a simulated app.
func selfManagedForm(a wechattest.AppInfo) url.Values {
	return url.Values{"appid": {a.AppID}, "secret": {a.Secret}, "kind": {models.KindService}, "name": {a.Name},
		"principal": {a.Principal}, "verified": {"yes"}, "callback_token": {"cbtoken123"}, "aes_key": {appsAESKey}}
}

func with(v url.Values, pairs ...string) url.Values {
	out := cloneValues(v)
	for i := 0; i+1 < len(pairs); i += 2 {
		out.Set(pairs[i], pairs[i+1])
	}
	return out
}

func TestAppsRefusalsOverHTTP(t *testing.T) {
	w := newAppsWorld(t, dbtest.MySQL(t))
	ws := w.workspace("Refusal Co")
	other := w.workspace("Holder Co")
	oa := w.sim.MustAddApp(wechattest.AppSpec{Name: "上海服务号", Principal: appsPrincipal})
	held := w.sim.MustAddApp(wechattest.AppSpec{Name: "已被占用", Principal: appsPrincipal})
	unverified := w.sim.MustAddApp(wechattest.AppSpec{Name: "未认证服务号", Principal: appsPrincipal, VerifyType: wechattest.Unverified})
	personal := w.sim.MustAddApp(wechattest.AppSpec{Name: "个人订阅号", Type: wechattest.TypeSubscription, Principal: "个人"})
	beijing := w.sim.MustAddApp(wechattest.AppSpec{Name: "北京服务号", Principal: "示例科技（北京）有限公司"})

	ctx := context.Background()
	svc := binding.New(binding.Config{DB: w.db, WeChat: w.wx, Sealer: w.sealer})
	holder := binding.Actor{UserID: other.people[models.RoleAdmin].ID, Email: "holder"}
	if _, err := svc.BindSelfManaged(ctx, other.tenant.ID, holder, binding.SelfManaged{AppID: held.AppID, Secret: held.Secret,
		Kind: models.KindMiniProgram, Name: "Holder's app", Principal: appsPrincipal, Verified: true}); err != nil {
		t.Fatal(err)
	}
	admin := binding.Actor{UserID: ws.people[models.RoleAdmin].ID, Email: "admin"}
	shanghai, err := svc.DeclareOpenAccount(ctx, ws.tenant.ID, admin, binding.DeclaredOpenAccount{OpenAppID: "wx00000000000000a1", Principal: appsPrincipal, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	bj, err := svc.DeclareOpenAccount(ctx, ws.tenant.ID, admin, binding.DeclaredOpenAccount{OpenAppID: "wx00000000000000b2", Principal: "示例科技（北京） 有限公司", Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	// WeChat has the Beijing app in an open account the tenant knows as Shanghai's.
	simOpen := w.sim.AddOpenAccount(wechattest.OpenAccountSpec{Principal: appsPrincipal, Verified: true})
	if err := w.sim.BindOpen(beijing.AppID, simOpen); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DeclareOpenAccount(ctx, ws.tenant.ID, admin, binding.DeclaredOpenAccount{OpenAppID: simOpen, Principal: appsPrincipal, Verified: true}); err != nil {
		t.Fatal(err)
	}

	type refusalCase struct {
		name   string
		send   func(c *client) *response
		reason string // data-reason of the refusal, or
		field  string // the field whose error is shown
		shows  []string
	}
	selfManaged := func(form url.Values) func(c *client) *response {
		return func(c *client) *response {
			c.get(ws.path("apps/new"))
			return c.post(ws.path("apps/self-managed"), form)
		}
	}
	cases := []refusalCase{
		{name: "PrincipalMismatch", send: selfManaged(with(selfManagedForm(oa), "open_account_id", strconv.FormatInt(bj.ID, 10))),
			reason: "mismatch", shows: []string{appsPrincipal, "示例科技（北京） 有限公司", `<mark class="diff" data-testid="diff-mark">上海</mark>`, `<mark class="diff" data-testid="diff-mark">北京</mark>`}},
		{name: "Unverified", send: selfManaged(with(selfManagedForm(oa), "verified", "no")), reason: "app_unverified", shows: []string{appsPrincipal}},
		{name: "OpenAccountUnverified", send: func(c *client) *response {
			c.get(ws.path("apps/new"))
			c.post(ws.path("open-accounts"), url.Values{"open_appid": {shanghai.OpenAppID}, "open_principal": {appsPrincipal}, "open_verified": {"no"}})
			defer c.post(ws.path("open-accounts"), url.Values{"open_appid": {shanghai.OpenAppID}, "open_principal": {appsPrincipal}, "open_verified": {"yes"}})
			return selfManaged(with(selfManagedForm(oa), "open_account_id", strconv.FormatInt(shanghai.ID, 10)))(c)
		}, reason: "open_unverified", shows: []string{appsPrincipal, shanghai.OpenAppID}},
		{name: "Individual", send: selfManaged(with(selfManagedForm(oa), "principal", "个人")), reason: "individual", shows: []string{"个人"}},
		{name: "HeldByAnotherTenant", send: selfManaged(selfManagedForm(held)), reason: "held_elsewhere"},
		{name: "WrongSecret", send: selfManaged(with(selfManagedForm(oa), "secret", strings.Repeat("0", 32))), reason: "wrong_secret"},
		{name: "MalformedEncodingAESKey", send: selfManaged(with(selfManagedForm(oa), "aes_key", appsAESKey[:42]+"!")), field: "aes_key"},
		{name: "ShortEncodingAESKey", send: selfManaged(with(selfManagedForm(oa), "aes_key", appsAESKey[:40])), field: "aes_key"},
		{name: "AuthorizedUnverified", send: func(c *client) *response { return w.authorizeThroughPages(t, c, ws, unverified.AppID) },
			reason: "app_unverified", shows: []string{unverified.Name}},
		{name: "AuthorizedIndividual", send: func(c *client) *response { return w.authorizeThroughPages(t, c, ws, personal.AppID) },
			reason: "individual", shows: []string{"个人"}},
		{name: "AuthorizedPrincipalMismatch", send: func(c *client) *response { return w.authorizeThroughPages(t, c, ws, beijing.AppID) },
			reason: "mismatch", shows: []string{"示例科技（北京）有限公司", appsPrincipal, simOpen}},
		{name: "AuthorizedHeldByAnotherTenant", send: func(c *client) *response { return w.authorizeThroughPages(t, c, ws, held.AppID) },
			reason: "held_elsewhere"},
	}
	for _, lang := range []string{"en", "zh-CN"} {
		t.Run(lang, func(t *testing.T) {
			c := speaking(w.signedIn(ws.people[models.RoleAdmin]), lang)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					before := w.snapshotCounts()
					r := tc.send(c)
					if r.status != http.StatusUnprocessableEntity {
						t.Fatalf("%d, want 422\n%s", r.status, r.body)
					}
					text := pageText(r)
					if tc.reason != "" {
						if !strings.Contains(r.body, `data-reason="`+tc.reason+`"`) || !strings.Contains(text, message(lang, "apps.refused."+tc.reason)) {
							t.Fatalf("the page does not say %q in %s:\n%s", tc.reason, lang, r.body)
						}
					} else {
						want := message(lang, "apps.error."+tc.field)
						if !regexp.MustCompile(`data-testid="error-`+tc.field+`"`).MatchString(r.body) || !strings.Contains(text, want) {
							t.Fatalf("no %s error (%q):\n%s", tc.field, want, r.body)
						}
					}
					for _, s := range tc.shows {
						if !strings.Contains(r.body, s) && !strings.Contains(text, s) {
							t.Errorf("the refusal does not show %q", s)
						}
					}
					for _, leak := range []string{"Holder Co", "Holder's app", oa.Secret, appsAESKey, "cbtoken123"} {
						if strings.Contains(text, leak) {
							t.Errorf("the page shows %q", leak)
						}
					}
					if after := w.snapshotCounts(); after != before && tc.name != "OpenAccountUnverified" {
						t.Fatalf("rows (apps/open accounts/audit) %s → %s", before, after)
					}
					if n, _ := models.ListApps(w.db, ws.tenant.ID); len(n) != 0 {
						t.Fatalf("the refused binding wrote %d apps", len(n))
					}
				})
			}
		})
	}
}

func TestAppsFormsRefuseBadInput(t *testing.T) {
	w := newAppsWorld(t, dbtest.MySQL(t))
	ws := w.workspace("Forms Co")
	oa := w.sim.MustAddApp(wechattest.AppSpec{Name: "表单服务号", Principal: appsPrincipal})
	good := selfManagedForm(oa)
	mini := with(good, "kind", models.KindMiniProgram, "callback_token", "", "aes_key", "")
	existing := w.sim.MustAddApp(wechattest.AppSpec{Name: "已绑定服务号", Principal: appsPrincipal})
	svc := binding.New(binding.Config{DB: w.db, WeChat: w.wx, Sealer: w.sealer})
	app, err := svc.BindSelfManaged(context.Background(), ws.tenant.ID, binding.Actor{Email: "setup"}, binding.SelfManaged{AppID: existing.AppID,
		Secret: existing.Secret, Kind: models.KindMiniProgram, Name: existing.Name, Principal: appsPrincipal, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	appPath := "apps/" + strconv.FormatInt(app.ID, 10)

	cases := []struct {
		name, path string
		form       url.Values
		errors     map[string]string // field → message key
	}{
		{"SelfManagedEmpty", "apps/self-managed", url.Values{}, map[string]string{"appid": "error.required", "secret": "error.required",
			"kind": "apps.error.kind", "name": "error.required", "principal": "error.required", "verified": "apps.error.verified"}},
		{"AppIDShape", "apps/self-managed", with(good, "appid", "wx123"), map[string]string{"appid": "apps.error.appid"}},
		{"AppIDUpperCase", "apps/self-managed", with(good, "appid", strings.ToUpper(oa.AppID)), map[string]string{"appid": "apps.error.appid"}},
		{"SecretShape", "apps/self-managed", with(good, "secret", "not a secret!"), map[string]string{"secret": "apps.error.secret"}},
		{"Kind", "apps/self-managed", with(good, "kind", "enterprise"), map[string]string{"kind": "apps.error.kind"}},
		{"NameTooLong", "apps/self-managed", with(good, "name", strings.Repeat("名", 101)), map[string]string{"name": "error.too_long"}},
		{"VerificationNotChosen", "apps/self-managed", with(good, "verified", "maybe"), map[string]string{"verified": "apps.error.verified"}},
		{"CallbackTokenMissing", "apps/self-managed", with(good, "callback_token", ""), map[string]string{"callback_token": "error.required"}},
		{"CallbackTokenShape", "apps/self-managed", with(good, "callback_token", "a!"), map[string]string{"callback_token": "apps.error.callback_token"}},
		{"AESKeyMissing", "apps/self-managed", with(good, "aes_key", ""), map[string]string{"aes_key": "error.required"}},
		{"AESKeyTooLong", "apps/self-managed", with(good, "aes_key", appsAESKey+"x"), map[string]string{"aes_key": "apps.error.aes_key"}},
		{"OpenAccountNotANumber", "apps/self-managed", with(mini, "open_account_id", "first"), map[string]string{"open_account_id": "apps.error.open_account"}},
		{"DeclareEmpty", "open-accounts", url.Values{}, map[string]string{"open_appid": "error.required", "open_principal": "error.required", "open_verified": "apps.error.verified"}},
		{"DeclareOpenAppIDShape", "open-accounts", url.Values{"open_appid": {"open123"}, "open_principal": {appsPrincipal}, "open_verified": {"yes"}},
			map[string]string{"open_appid": "apps.error.appid"}},
		{"ReplaceSecretEmpty", appPath + "/secret", url.Values{"secret": {""}}, map[string]string{"secret": "error.required"}},
		{"ReplaceSecretShape", appPath + "/secret", url.Values{"secret": {"short"}}, map[string]string{"secret": "apps.error.secret"}},
	}
	for _, lang := range []string{"zh-CN", "en"} {
		t.Run(lang, func(t *testing.T) {
			c := speaking(w.signedIn(ws.people[models.RoleAdmin]), lang)
			c.get(ws.path("apps/new"))
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					before, calls := w.snapshotCounts(), w.sim.Calls("cgi-bin/stable_token")
					r := c.post(ws.path(tc.path), tc.form)
					if r.status != http.StatusUnprocessableEntity {
						t.Fatalf("%d, want 422\n%s", r.status, r.body)
					}
					text := pageText(r)
					for field, key := range tc.errors {
						if !strings.Contains(r.body, `data-testid="error-`+field+`"`) || !strings.Contains(text, message(lang, key)) {
							t.Errorf("%s: no %q in %s", field, message(lang, key), lang)
						}
					}
					if secret := tc.form.Get("secret"); secret != "" && strings.Contains(r.body, secret) {
						t.Error("the form echoes the AppSecret back")
					}
					if key := tc.form.Get("aes_key"); key != "" && strings.Contains(r.body, key) {
						t.Error("the form echoes the EncodingAESKey back")
					}
					if after := w.snapshotCounts(); after != before {
						t.Errorf("rows %s → %s", before, after)
					}
					if w.sim.Calls("cgi-bin/stable_token") != calls {
						t.Error("a malformed form reached WeChat")
					}
				})
			}
		})
	}

	t.Run("UnbindNeedsTheConfirmation", func(t *testing.T) {
		c := w.signedIn(ws.people[models.RoleAdmin]).fresh()
		r := c.post(ws.path(appPath+"/unbind"), url.Values{})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="unbind-confirm"`) {
			t.Fatalf("%d", r.status)
		}
		got, _ := models.FindApp(w.db, ws.tenant.ID, app.ID)
		if !got.IsBound() {
			t.Fatal("unbound without confirmation")
		}
	})
}

func TestAppsPages(t *testing.T) {
	w := newAppsWorld(t, dbtest.MySQL(t))
	ws := w.workspace("Pages Co")
	admin := speaking(w.signedIn(ws.people[models.RoleAdmin]), "en")
	open := w.sim.AddOpenAccount(wechattest.OpenAccountSpec{Principal: appsPrincipal, Verified: true})
	authorized := w.sim.MustAddApp(wechattest.AppSpec{Name: "授权服务号", Principal: appsPrincipal, OpenAppID: open})
	mini := w.sim.MustAddApp(wechattest.AppSpec{Name: "授权小程序", Type: wechattest.TypeMiniProgram, Principal: appsPrincipal})
	self := w.sim.MustAddApp(wechattest.AppSpec{Name: "自管订阅号", Type: wechattest.TypeSubscription, Principal: appsPrincipal})

	t.Run("AuthorizedBindingLandsOnTheAppsPage", func(t *testing.T) {
		r := w.authorizeThroughPages(t, admin, ws, authorized.AppID)
		if r.status != http.StatusSeeOther || r.location() != ws.path("apps")+"?done=bound" {
			t.Fatalf("return: %d → %q\n%s", r.status, r.location(), r.body)
		}
		r = admin.get(r.location())
		text := pageText(r)
		for _, want := range []string{authorized.Name, authorized.AppID, appsPrincipal, open, "Service account", "Authorized via WeChat", "The app is bound."} {
			if !strings.Contains(text, want) {
				t.Errorf("the Apps page does not show %q", want)
			}
		}
		if !w.audited(ws.tenant.ID, models.AuditAppBound, authorized.AppID) {
			t.Error("not audited")
		}
		if strings.Contains(w.logs.String(), "auth_code") || strings.Contains(w.logs.String(), "state=") {
			t.Error("the auth code or state reached the log")
		}
	})

	t.Run("AnAppInNoOpenAccountIsListedApartAndCanCreateOne", func(t *testing.T) {
		w.authorizeThroughPages(t, admin, ws, mini.AppID)
		r := admin.get(ws.path("apps"))
		if !strings.Contains(r.body, `data-testid="unlinked-apps"`) || !strings.Contains(pageText(r), message("en", "apps.unlinked_note")) {
			t.Fatal("the app in no open-platform account is not listed apart with the statement")
		}
		app, _ := models.FindAppByAppID(w.db, ws.tenant.ID, mini.AppID)
		r = admin.post(ws.path("apps/"+strconv.FormatInt(app.ID, 10)+"/open/create"), url.Values{})
		if r.status != http.StatusSeeOther {
			t.Fatalf("open/create: %d\n%s", r.status, r.body)
		}
		if w.sim.OpenAppIDOf(mini.AppID) == "" {
			t.Fatal("WeChat did not create the open-platform account")
		}
		r = admin.get(r.location())
		if !strings.Contains(pageText(r), w.sim.OpenAppIDOf(mini.AppID)) || !strings.Contains(pageText(r), "Not verified") {
			t.Fatal("the app page does not show the new, unverified open-platform account")
		}
	})

	var selfID int64
	t.Run("SelfManagedShowsTheCallbackURLAndNeverTheSecret", func(t *testing.T) {
		admin.get(ws.path("apps/new"))
		form := with(selfManagedForm(self), "kind", models.KindSubscription)
		r := admin.post(ws.path("apps/self-managed"), form)
		if r.status != http.StatusSeeOther || !strings.Contains(r.location(), "?done=bound") {
			t.Fatalf("%d → %q\n%s", r.status, r.location(), r.body)
		}
		app, err := models.FindAppByAppID(w.db, ws.tenant.ID, self.AppID)
		if err != nil {
			t.Fatal(err)
		}
		selfID = app.ID
		page := admin.get(r.location())
		want := "http://oneid.test/wechat/callback/" + app.CallbackKey
		if !strings.Contains(page.body, `value="`+want+`"`) {
			t.Fatalf("no callback URL %s", want)
		}
		for _, secret := range []string{self.Secret, "cbtoken123", appsAESKey} {
			if strings.Contains(page.body, secret) || strings.Contains(admin.get(ws.path("apps")).body, secret) {
				t.Fatalf("a secret is shown again")
			}
		}
		if strings.Count(page.body, `data-testid="declared"`) < 2 {
			t.Error("the declared principal and verification are not marked as declared")
		}
		if !strings.Contains(admin.get(ws.path("apps")).body, `data-testid="declared"`) {
			t.Error("the list does not mark declared values")
		}
		if w.sim.Calls("cgi-bin/stable_token") == 0 {
			t.Error("the secret was not proven")
		}
		for _, secret := range []string{self.Secret, "cbtoken123", appsAESKey} {
			if strings.Contains(w.logs.String(), secret) {
				t.Error("a secret reached the log")
			}
		}
	})

	t.Run("ReplaceSecretAndUnbindAreAudited", func(t *testing.T) {
		p := ws.path("apps/" + strconv.FormatInt(selfID, 10))
		admin.get(p)
		r := admin.post(p+"/secret", url.Values{"secret": {strings.Repeat("9", 32)}})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-reason="wrong_secret"`) {
			t.Fatalf("wrong replacement: %d", r.status)
		}
		if r := admin.post(p+"/secret", url.Values{"secret": {self.Secret}}); r.status != http.StatusSeeOther {
			t.Fatalf("replacement: %d\n%s", r.status, r.body)
		}
		if !w.audited(ws.tenant.ID, models.AuditAppSecretReplaced, self.AppID) {
			t.Error("secret change not audited")
		}
		if r := admin.get(p + "/unbind"); r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="unbind-confirm"`) {
			t.Fatalf("confirmation page: %d", r.status)
		}
		r = admin.post(p+"/unbind", url.Values{"confirm": {"yes"}})
		if r.status != http.StatusSeeOther {
			t.Fatalf("unbind: %d", r.status)
		}
		list := admin.get(r.location())
		if !strings.Contains(list.body, `data-testid="unbound-apps"`) || !strings.Contains(list.body, self.AppID) {
			t.Error("the unbound app is not listed as unbound")
		}
		if !w.audited(ws.tenant.ID, models.AuditAppUnbound, self.AppID) {
			t.Error("unbinding not audited")
		}
		if r := admin.get(p + "/unbind"); r.status != http.StatusNotFound {
			t.Errorf("unbinding an unbound app: %d", r.status)
		}
	})

	t.Run("MarketersAndViewersReadButDoNotAct", func(t *testing.T) {
		for _, role := range []string{models.RoleMarketer, models.RoleViewer} {
			c := speaking(w.signedIn(ws.people[role]), "en")
			r := c.get(ws.path("apps"))
			if r.status != http.StatusOK || !strings.Contains(pageText(r), authorized.Name) {
				t.Fatalf("%s: %d", role, r.status)
			}
			if strings.Contains(r.body, `data-testid="bind-wechat"`) || strings.Contains(r.body, `data-testid="open-create"`) {
				t.Errorf("%s sees the admin's actions", role)
			}
			app, _ := models.FindAppByAppID(w.db, ws.tenant.ID, authorized.AppID)
			if r := c.get(ws.path("apps/" + strconv.FormatInt(app.ID, 10))); r.status != http.StatusOK || strings.Contains(r.body, `data-testid="unbind-link"`) {
				t.Errorf("%s: app page %d", role, r.status)
			}
			if r := c.fresh().post(ws.path("apps/authorize"), url.Values{}); r.status != http.StatusForbidden {
				t.Errorf("%s may bind: %d", role, r.status)
			}
		}
	})

	t.Run("TheReturnFromWeChatWorksOnce", func(t *testing.T) {
		admin.get(ws.path("apps"))
		r := admin.post(ws.path("apps/authorize"), nil)
		start, _ := url.Parse(r.location())
		back, _ := url.Parse(start.Query().Get("redirect_uri"))
		state := back.Query().Get("state")
		code, err := w.sim.Authorize(w.comp.AppID, authorized.AppID)
		if err != nil {
			t.Fatal(err)
		}
		other := w.workspace("Replay Co")
		intruder := w.signedIn(other.people[models.RoleAdmin])
		if r := intruder.get(other.path("apps/authorized?state=" + url.QueryEscape(state) + "&auth_code=" + url.QueryEscape(code))); r.status != http.StatusNotFound {
			t.Fatalf("the state in another workspace: %d", r.status)
		}
		if n, _ := models.ListApps(w.db, other.tenant.ID); len(n) != 0 {
			t.Fatal("the other workspace got the app")
		}
		uri := ws.path("apps/authorized?state=" + url.QueryEscape(state) + "&auth_code=" + url.QueryEscape(code))
		if r := admin.get(uri); r.status != http.StatusSeeOther {
			t.Fatalf("the right workspace: %d\n%s", r.status, r.body)
		}
		if r := admin.get(uri); r.status != http.StatusNotFound {
			t.Fatalf("replayed: %d", r.status)
		}
	})
}

func TestComponentEndpoint(t *testing.T) {
	w := newAppsWorld(t, dbtest.MySQL(t))
	ws := w.workspace("Push Co")
	oa := w.sim.MustAddApp(wechattest.AppSpec{Name: "推送服务号", Principal: appsPrincipal})
	admin := w.signedIn(ws.people[models.RoleAdmin])
	w.authorizeThroughPages(t, admin, ws, oa.AppID)
	app, err := models.FindAppByAppID(w.db, ws.tenant.ID, oa.AppID)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store := models.NewWechatTokenStore(w.db, w.sealer)

	t.Run("StoresTheVerifyTicket", func(t *testing.T) {
		target, body := w.push(t, wechat.Event{AppID: w.comp.AppID, CreateTime: time.Now().Unix(), InfoType: wechat.InfoVerifyTicket, ComponentVerifyTicket: "ticket@@@pushed-now"}, w.comp.Token)
		if r := w.rawPost(t, target, body); r.status != http.StatusOK || r.body != "success" {
			t.Fatalf("%d %q", r.status, r.body)
		}
		if tok, _ := store.Get(ctx, w.comp.AppID, wechat.KindVerifyTicket); tok.Value != "ticket@@@pushed-now" {
			t.Fatalf("ticket %q", tok.Value)
		}
	})

	t.Run("RefusesAPushThatDoesNotVerify", func(t *testing.T) {
		before := w.snapshotCounts()
		target, body := w.push(t, wechat.Event{AppID: w.comp.AppID, CreateTime: time.Now().Unix(), InfoType: wechat.InfoUnauthorized, AuthorizerAppID: oa.AppID}, "not-the-token")
		if r := w.rawPost(t, target, body); r.status != http.StatusBadRequest {
			t.Fatalf("%d", r.status)
		}
		target, _ = w.push(t, wechat.Event{AppID: w.comp.AppID, InfoType: wechat.InfoUnauthorized, AuthorizerAppID: oa.AppID}, w.comp.Token)
		if r := w.rawPost(t, target, []byte("<xml>garbage</xml>")); r.status != http.StatusBadRequest {
			t.Fatalf("garbage: %d", r.status)
		}
		got, _ := models.FindApp(w.db, ws.tenant.ID, app.ID)
		if got.Status != models.AppActive || w.snapshotCounts() != before {
			t.Fatal("a push that does not verify changed something")
		}
	})

	t.Run("AuthorizationEventsUpdateTheStatus", func(t *testing.T) {
		for _, step := range []struct {
			info, status, action string
		}{
			{wechat.InfoUnauthorized, models.AppRevoked, models.AuditAppAuthorizationRevoked},
			{wechat.InfoAuthorized, models.AppActive, models.AuditAppAuthorized},
			{wechat.InfoUpdateAuthorized, models.AppActive, models.AuditAppAuthorizationUpdated},
		} {
			target, body := w.push(t, wechat.Event{AppID: w.comp.AppID, CreateTime: time.Now().Unix(), InfoType: step.info, AuthorizerAppID: oa.AppID}, w.comp.Token)
			if r := w.rawPost(t, target, body); r.status != http.StatusOK {
				t.Fatalf("%s: %d", step.info, r.status)
			}
			got, _ := models.FindApp(w.db, ws.tenant.ID, app.ID)
			if got.Status != step.status || !w.audited(ws.tenant.ID, step.action, oa.AppID) {
				t.Fatalf("after %s: %s", step.info, got.Status)
			}
		}
		r := admin.get(ws.path("apps/" + strconv.FormatInt(app.ID, 10)))
		if !strings.Contains(r.body, `data-status="active"`) {
			t.Fatal("the page does not show the status")
		}
	})

	t.Run("ThePushFromTheSimulatorReachesIt", func(t *testing.T) {
		// The simulator pushes over HTTP; serve the portal on a loopback port for it.
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			res := w.rawPost(t, r.URL.RequestURI(), body)
			rw.WriteHeader(res.status)
			_, _ = io.WriteString(rw, res.body)
		}))
		defer srv.Close()
		w.sim.SetComponentCallback(w.comp.AppID, srv.URL+"/wechat/component")
		if d, err := w.sim.Unauthorize(w.comp.AppID, oa.AppID); err != nil || !d.OK {
			t.Fatalf("delivery %+v, %v", d, err)
		}
		got, _ := models.FindApp(w.db, ws.tenant.ID, app.ID)
		if got.Status != models.AppRevoked {
			t.Fatalf("status %s", got.Status)
		}
		page := pageText(speaking(admin, "zh-CN").get(ws.path("apps")))
		if !strings.Contains(page, "授权已取消") {
			t.Fatal("the Apps page does not say the authorization was revoked")
		}
	})
}
