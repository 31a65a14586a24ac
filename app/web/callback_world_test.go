package web_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/app/ingest"
	"oneid/app/web"
	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/models"
)

// ingestWorld is the portal listening on a real loopback port (the
// simulator pushes to it and its pages send browsers back to it), on the
// WeChat simulator, with one workspace whose open-platform account exists in
// both. Callback events are resolved when the test calls process.
type ingestWorld struct {
	*harness
	sim    *wechattest.Sim
	wx     *wechat.Client
	sealer *models.Sealer
	cb     *ingest.Callbacks
	base   string // http://127.0.0.1:port
	ws     *workspace
	open   *models.OpenAccount
	http   *http.Client // loopback only, does not follow redirects
}

type ingestOptions struct {
	ackBudget  time.Duration
	apiRate    web.RateLimit
	inlineRows int
	component  wechat.Component // OneID's third-party platform, for authorized apps' pushes
}

func newIngestWorld(t *testing.T, db *gorm.DB, opts ...func(*ingestOptions)) *ingestWorld {
	t.Helper()
	o := ingestOptions{apiRate: web.RateLimit{PerSecond: 1000, Burst: 1000}}
	for _, f := range opts {
		f(&o)
	}
	h := newHarness(t, db)
	w := &ingestWorld{harness: h, sim: wechattest.Start(t), sealer: testSealer(t)}
	w.http = wechattest.LoopbackOnly(t)
	w.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	store := models.NewWechatTokenStore(db, w.sealer)
	w.wx = wechat.New(w.sim.Config(wechattest.LoopbackOnly(t), store))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.base = "http://" + ln.Addr().String()
	cfg := h.cfg
	cfg.PublicURL = w.base
	cfg.WeChat.OpenBase = w.sim.URL()
	cfg.WeChat.ComponentAppID, cfg.WeChat.ComponentToken, cfg.WeChat.ComponentAESKey = o.component.AppID, o.component.Token, o.component.AESKey
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w.cb = ingest.NewCallbacks(ingest.CallbacksConfig{DB: db, WeChat: w.wx, Sealer: w.sealer, Log: log, Now: h.clock.Now,
		AckBudget: o.ackBudget, Component: o.component})
	srv, err := web.NewServer(web.Deps{Config: cfg, DB: db, Log: log, Hasher: h.hasher, Now: h.clock.Now,
		WeChat: w.wx, Sealer: w.sealer, Callbacks: w.cb, APIRate: o.apiRate, ImportInlineRows: o.inlineRows})
	if err != nil {
		t.Fatal(err)
	}
	app, err := srv.App()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() {
		_ = app.ShutdownWithTimeout(5 * time.Second)
		w.cb.Close()
	})
	h.srv, h.app = srv, app
	w.ws = h.workspace("Ingest Co")
	w.open = w.openAccount(t, w.ws)
	return w
}

// openAccount gives a workspace an open-platform account that exists in the
// simulator too, so UnionIDs link.
func (w *ingestWorld) openAccount(t *testing.T, ws *workspace) *models.OpenAccount {
	t.Helper()
	openAppID := w.sim.AddOpenAccount(wechattest.OpenAccountSpec{Name: ws.tenant.Slug, Principal: ws.tenant.PrincipalName, Verified: true})
	open := &models.OpenAccount{OpenAppID: openAppID, PrincipalName: ws.tenant.PrincipalName, Verified: true,
		Declared: true, CreatedVia: models.OpenViaDeclared}
	if err := models.CreateOpenAccount(w.db, ws.tenant.ID, open); err != nil {
		t.Fatal(err)
	}
	return open
}

const ingestAESKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

// appSetup says how an app is bound.
type appSetup struct {
	kind      string // models.KindService (default) or KindMiniProgram
	plaintext bool   // no EncodingAESKey: pushes come in plain XML
	noOpen    bool   // not in the open-platform account
	ws        *workspace
	open      *models.OpenAccount
}

// bindApp creates an app in the simulator, binds it (self-managed, sealed
// secrets) in the workspace and points its pushes at OneID.
func (w *ingestWorld) bindApp(t *testing.T, name string, s appSetup) (wechattest.AppInfo, *models.App) {
	t.Helper()
	if s.ws == nil {
		s.ws, s.open = w.ws, w.open
	}
	if s.kind == "" {
		s.kind = models.KindService
	}
	spec := wechattest.AppSpec{Name: name, Principal: s.ws.tenant.PrincipalName, Type: wechattest.TypeService}
	if s.kind == models.KindMiniProgram {
		spec.Type = wechattest.TypeMiniProgram
	}
	if !s.noOpen {
		spec.OpenAppID = s.open.OpenAppID
	}
	info := w.sim.MustAddApp(spec)
	tid := s.ws.tenant.ID
	token := "tok" + strconv.FormatInt(tid, 10) + strings.ReplaceAll(name, " ", "")
	a := &models.App{AppID: info.AppID, Kind: s.kind, Name: name, PrincipalName: info.Principal,
		Declared: true, BindingMode: models.ModeSelfManaged, GhID: info.UserName}
	if !s.noOpen {
		a.OpenAccountID = &s.open.ID
	}
	var err error
	if a.SecretSealed, err = models.SealAppSecret(w.sealer, tid, info.AppID, models.ColAppSecret, info.Secret); err != nil {
		t.Fatal(err)
	}
	if s.kind != models.KindMiniProgram {
		if a.CallbackTokenSealed, err = models.SealAppSecret(w.sealer, tid, info.AppID, models.ColCallbackToken, token); err != nil {
			t.Fatal(err)
		}
		if !s.plaintext {
			if a.AESKeySealed, err = models.SealAppSecret(w.sealer, tid, info.AppID, models.ColAESKey, ingestAESKey); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := models.BindApp(w.db, tid, a); err != nil {
		t.Fatal(err)
	}
	if s.kind != models.KindMiniProgram {
		cb := wechattest.Callback{URL: w.base + "/wechat/callback/" + a.CallbackKey, Token: token, Plaintext: s.plaintext}
		if !s.plaintext {
			cb.AESKey = ingestAESKey
		}
		if err := w.sim.SetCallback(info.AppID, cb); err != nil {
			t.Fatal(err)
		}
	}
	return info, a
}

// process resolves every stored event, as the worker would.
func (w *ingestWorld) process(t *testing.T) {
	t.Helper()
	if err := w.cb.ProcessAll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// identity is the stored identity of (app, openid), or nil.
func (w *ingestWorld) identity(t *testing.T, tenantID, appID int64, openID string) *models.Identity {
	t.Helper()
	var ids []models.Identity
	if err := w.db.Scopes(models.ForTenant(tenantID)).Where("app_id = ? AND openid = ?", appID, openID).Find(&ids).Error; err != nil {
		t.Fatal(err)
	}
	if len(ids) == 0 {
		return nil
	}
	return &ids[0]
}

func (w *ingestWorld) customer(t *testing.T, tenantID, id int64) *models.Customer {
	t.Helper()
	c, err := models.FindCustomer(w.db, tenantID, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rows counts every row of a table across tenants.
func (w *ingestWorld) rows(table string) int64 {
	var n int64
	if err := models.CrossTenant(w.db, "test counts rows").Table(table).Count(&n).Error; err != nil {
		w.t.Fatal(err)
	}
	return n
}

// fetch is a GET over the loopback (redirects not followed).
func (w *ingestWorld) fetch(t *testing.T, target string) (int, http.Header, string) {
	t.Helper()
	if strings.HasPrefix(target, "/") {
		target = w.base + target
	}
	resp, err := w.http.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// send is a request over the loopback with a body and headers.
func (w *ingestWorld) send(t *testing.T, method, target, body string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, w.base+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := w.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

// seedIsolationIngest gives an isolation tenant what the push, OAuth and API
// probes aim at: its app's callback key and appid, and a pending OAuth state.
func seedIsolationIngest(t *testing.T, h *harness, w *workspace, it *isoTenant) {
	t.Helper()
	id, _ := strconv.ParseInt(it.ids["app"], 10, 64)
	a, err := models.FindApp(h.db, w.tenant.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	state, err := models.CreateOAuthState(h.db, w.tenant.ID, a.ID, wechat.ScopeBase, "", h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	it.ids["callback-key"], it.ids["appid"], it.ids["oauth-state"] = a.CallbackKey, a.AppID, state
	file := "isolation-" + w.tenant.Slug + ".csv"
	job, err := models.EnqueueJob(h.db, w.tenant.ID, models.NewJob{Kind: ingest.ImportKind, Subject: "file:" + w.tenant.Slug,
		Params: `{"file":"` + file + `"}`, Actor: w.people[models.RoleAdmin].Email}, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	it.ids["import"] = strconv.FormatInt(job.ID, 10)
	it.markers = append(it.markers, file)
}
