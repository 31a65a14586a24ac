// Package demo is `oneid serve --demo`: an in-process WeChat simulator with a
// small company's world (an open-platform account, two official accounts and
// a mini-program of one principal, and an official account of another), the
// portal's WeChat client pointed at it, and a demo workspace made once on the
// embedded database: a signed-in admin, the three apps bound through the real
// authorization flow, and tens of thousands of customers written to agree with
// the simulator's follower lists. It only adds: nothing here changes how the
// portal behaves without --demo.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"gorm.io/gorm"

	"oneid/app/binding"
	"oneid/app/config"
	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/models"
)

// The demo world. Names are what a Chinese company's accounts look like.
const (
	TenantName     = "示例科技"
	Principal      = "示例科技（上海）有限公司"
	OtherPrincipal = "示例科技（深圳）有限公司"
	Email          = "demo@example.com"

	ServiceName      = "示例服务号"
	SubscriptionName = "示例资讯订阅号"
	MiniProgramName  = "示例商城小程序"
	OtherName        = "示例深圳订阅号"

	simSeed = "oneid-demo"
)

// Config is what the demo needs from the process.
type Config struct {
	DB      *gorm.DB
	Sealer  *models.Sealer
	Log     *slog.Logger
	DataDir string // where demo.json (the sign-in, mode 0600) is kept
	// Scale multiplies the number of customers (1 when zero: about 35,000).
	Scale float64
	// SyncLatency is added to every user/info/batchget call, so that a sync
	// of the demo's 24,000 followers lasts long enough (about 10 s) for its
	// progress bar to be watched (default 500 ms; <0: none).
	SyncLatency time.Duration
}

// Demo is a running simulator with the demo world.
type Demo struct {
	cfg    Config
	sim    *wechattest.Sim
	open   string
	apps   map[string]wechattest.AppInfo // by name
	comp   wechattest.ComponentSpec
	layout layout
	stop   context.CancelFunc
}

// Start starts the simulator on a free loopback port and creates its world.
// The world is the same at every start (same appids), bar what a previous run
// changed in it: WeChat's side of the demo lives in memory.
func Start(cfg Config) (*Demo, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Scale <= 0 {
		cfg.Scale = 1
	}
	if cfg.SyncLatency == 0 {
		cfg.SyncLatency = 500 * time.Millisecond
	}
	sim, err := wechattest.New(wechattest.WithSeed(simSeed))
	if err != nil {
		return nil, err
	}
	d := &Demo{cfg: cfg, sim: sim, apps: map[string]wechattest.AppInfo{}, layout: newLayout(cfg.Scale), stop: func() {}}
	if err := d.world(); err != nil {
		sim.Close()
		return nil, err
	}
	if cfg.SyncLatency > 0 {
		sim.SetLatency("cgi-bin/user/info/batchget", cfg.SyncLatency)
	}
	return d, nil
}

func (d *Demo) world() error {
	l := d.layout
	d.open = d.sim.AddOpenAccount(wechattest.OpenAccountSpec{Name: "demo", Principal: Principal, Verified: true})
	none := 0
	first := func(i int) *uint64 { p := uint64(l.base + i); return &p }
	specs := []wechattest.AppSpec{
		{Name: ServiceName, Type: wechattest.TypeService, Principal: Principal, OpenAppID: d.open,
			Followers: l.svcEnd, FirstPerson: first(0), UnsubscribedPermille: &none},
		{Name: SubscriptionName, Type: wechattest.TypeSubscription, Principal: Principal, OpenAppID: d.open,
			Followers: l.subEnd - l.subStart, FirstPerson: first(l.subStart), UnsubscribedPermille: &none},
		{Name: MiniProgramName, Type: wechattest.TypeMiniProgram, Principal: Principal, OpenAppID: d.open},
		// Another principal: offered on the authorisation page, bound without
		// an open-platform account, refused when joined to the company's.
		{Name: OtherName, Type: wechattest.TypeSubscription, Principal: OtherPrincipal, Followers: 800},
	}
	for _, s := range specs {
		a, err := d.sim.AddApp(s)
		if err != nil {
			return err
		}
		d.apps[s.Name] = a
	}
	// The third-party platform's message token and key are new at every
	// start: they are platform configuration, never stored.
	comp, err := d.sim.AddComponent(wechattest.ComponentSpec{Token: randomText(24), AESKey: randomText(43)})
	if err != nil {
		return err
	}
	d.comp = comp
	return nil
}

// SimURL is the simulator's base URL (API, authorisation pages, control API).
func (d *Demo) SimURL() string { return d.sim.URL() }

// WeChat is the portal's WeChat configuration in demo mode: every host is the
// simulator, and OneID's third-party platform is the simulator's.
func (d *Demo) WeChat() config.WeChat {
	return config.WeChat{APIBase: d.sim.URL(), OpenBase: d.sim.URL(), MPBase: d.sim.URL(),
		ComponentAppID: d.comp.AppID, ComponentSecret: d.comp.Secret, ComponentToken: d.comp.Token, ComponentAESKey: d.comp.AESKey}
}

// Transport wraps the WeChat client's transport so that it refuses any host
// that is not loopback: in demo mode nothing leaves the machine.
func (d *Demo) Transport(base http.RoundTripper) http.RoundTripper {
	return wechattest.LoopbackTransport(nil, base)
}

// Close stops the simulator and its verify tickets.
func (d *Demo) Close() {
	d.stop()
	d.sim.Close()
}

// Ready is what Prepare made or found.
type Ready struct {
	Slug     string
	Email    string
	Password string
	Created  bool // the workspace was made by this start
	Seeded   models.SeedResult
	Took     time.Duration
	// A former follower of 示例服务号: FollowCommand makes them follow again
	// (a signed push to the portal) and CustomerPath is their profile, where
	// the follow appears.
	FollowCommand string
	CustomerPath  string
	SimURL        string
}

// Prepare makes the demo workspace if it is absent and brings the simulator
// in step with it. portal is the portal's loopback base URL (pushes go
// there); wx is the portal's WeChat client. Run it once the portal listens.
func (d *Demo) Prepare(ctx context.Context, portal string, wx *wechat.Client) (*Ready, error) {
	start := time.Now()
	db := d.cfg.DB.WithContext(ctx)
	// WeChat pushes a verify ticket every 10 minutes to the platform's
	// authorisation-event URL; the portal needs one before any authorization.
	d.sim.SetComponentCallback(d.comp.AppID, portal+"/wechat/component")
	if _, del, err := d.sim.PushVerifyTicket(d.comp.AppID); err != nil || !del.OK {
		return nil, fmt.Errorf("demo: the portal did not take the simulator's verify ticket (%v, %+v)", err, del)
	}
	tctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	d.stop = stop
	go func() {
		select {
		case <-tctx.Done():
			return
		case <-time.After(10 * time.Minute):
		}
		d.sim.RunVerifyTickets(tctx, d.comp.AppID, 10*time.Minute)
	}()

	st, err := loadState(d.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	tenant, user, created, err := d.workspace(ctx, db, st)
	if err != nil {
		return nil, err
	}
	r := &Ready{Slug: tenant.Slug, Email: user.Email, Password: st.Password, Created: created, SimURL: d.sim.URL()}

	svc := binding.New(binding.Config{DB: d.cfg.DB, WeChat: wx, Sealer: d.cfg.Sealer, Log: d.cfg.Log})
	if err := d.bindApps(ctx, db, svc, tenant.ID, user); err != nil {
		return nil, err
	}
	if err := d.restore(ctx, db, tenant.ID, portal); err != nil {
		return nil, err
	}
	if !st.Seeded {
		if r.Seeded, err = d.seed(ctx, db, tenant.ID); err != nil {
			return nil, err
		}
		st.Seeded = true
		if err := st.save(d.cfg.DataDir); err != nil {
			return nil, err
		}
	}
	if err := d.followHint(ctx, db, tenant, r); err != nil {
		return nil, err
	}
	r.Took = time.Since(start)
	return r, nil
}

// workspace finds the demo tenant and its admin, or makes them.
func (d *Demo) workspace(ctx context.Context, db *gorm.DB, st *state) (*models.Tenant, *models.User, bool, error) {
	var tenant *models.Tenant
	if st.Slug != "" {
		t, err := models.FindTenantBySlug(db, st.Slug)
		switch {
		case err == nil:
			tenant = t
		case !errors.Is(err, models.ErrNotFound):
			return nil, nil, false, err
		}
	}
	user, err := models.FindUserByEmail(db, Email)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return nil, nil, false, err
	}
	if tenant == nil && user != nil {
		// demo.json was lost or belongs to another database: the demo
		// admin's own workspace is the demo's.
		ws, err := models.WorkspacesOf(db, user.ID)
		if err != nil {
			return nil, nil, false, err
		}
		for _, w := range ws {
			if w.Name == TenantName && w.Role == models.RoleAdmin {
				if tenant, err = models.FindTenant(db, w.TenantID); err != nil {
					return nil, nil, false, err
				}
				break
			}
		}
	}
	hasher := models.NewPasswordHasher(1)
	created := false
	if tenant == nil {
		// A new workspace: whatever demo.json said is for another database.
		st.Slug, st.Seeded = "", false
		if st.Password == "" || user == nil {
			st.Password = randomText(16)
		}
		nt := models.NewTenant{Name: TenantName, PrincipalName: Principal}
		if user != nil {
			nt.AdminUserID = user.ID
		} else {
			hash, err := hasher.Hash(ctx, st.Password)
			if err != nil {
				return nil, nil, false, err
			}
			nt.Admin = models.User{Email: Email, Name: "示例管理员", PasswordHash: hash, Locale: "zh-CN"}
		}
		t, admin, err := models.CreateTenant(db, nt)
		if err != nil {
			return nil, nil, false, fmt.Errorf("demo: create the workspace: %w", err)
		}
		if err := models.RecordAudit(db, t.ID, models.AuditEvent{Actor: "demo", Action: models.AuditTenantCreated, Target: t.Name, Detail: "oneid serve --demo"}); err != nil {
			return nil, nil, false, err
		}
		tenant, user, created = t, admin, true
	}
	// The printed password must sign in: when it is not known (demo.json
	// lost) or no longer matches, the demo admin gets a new one.
	if st.Password == "" || hasher.Verify(ctx, user.PasswordHash, st.Password) != nil {
		st.Password = randomText(16)
		hash, err := hasher.Hash(ctx, st.Password)
		if err != nil {
			return nil, nil, false, err
		}
		if err := db.Model(&models.User{}).Where("id = ?", user.ID).Update("password_hash", hash).Error; err != nil {
			return nil, nil, false, err
		}
	}
	st.Slug = tenant.Slug
	if err := st.save(d.cfg.DataDir); err != nil {
		return nil, nil, false, err
	}
	return tenant, user, created, nil
}

// bindApps binds the company's three apps through the real authorization
// flow (the admin's consent on the simulator's page, api_query_auth,
// authorizer info, open/get), unless they are bound already.
func (d *Demo) bindApps(ctx context.Context, db *gorm.DB, svc *binding.Service, tenantID int64, user *models.User) error {
	for _, name := range []string{ServiceName, SubscriptionName, MiniProgramName} {
		info := d.apps[name]
		app, err := models.FindAppByAppID(db, tenantID, info.AppID)
		if err == nil && app.IsBound() {
			continue
		}
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			return err
		}
		state, err := models.CreateBindingState(db, tenantID, user.ID, time.Now().UTC())
		if err != nil {
			return err
		}
		code, err := d.sim.Authorize(d.comp.AppID, info.AppID)
		if err != nil {
			return err
		}
		if _, err := svc.CompleteAuthorization(ctx, tenantID, binding.Actor{UserID: user.ID, Email: user.Email, IP: "127.0.0.1"}, state, code); err != nil {
			return fmt.Errorf("demo: bind %s: %w", name, err)
		}
	}
	return nil
}

// restore tells the fresh simulator what WeChat would remember: the
// authorizations OneID holds refresh tokens for, and where each bound
// official account's pushes go (signed and sealed with the platform's token
// and key, or the app's own for a self-managed one).
func (d *Demo) restore(ctx context.Context, db *gorm.DB, tenantID int64, portal string) error {
	apps, err := models.ListApps(db, tenantID)
	if err != nil {
		return err
	}
	tokens := models.NewWechatTokenStore(d.cfg.DB, d.cfg.Sealer)
	for i := range apps {
		a := &apps[i]
		if !a.IsBound() {
			continue
		}
		if _, ok := d.sim.App(a.AppID); !ok {
			continue // not an app of the demo world
		}
		cb := wechattest.Callback{URL: portal + "/wechat/callback/" + a.CallbackKey}
		if a.BindingMode == models.ModeAuthorized {
			t, err := tokens.Get(ctx, a.AppID, wechat.KindAuthorizerRefresh)
			if err != nil {
				return err
			}
			if t.Value != "" {
				if err := d.sim.RestoreGrant(d.comp.AppID, a.AppID, t.Value); err != nil {
					return err
				}
			}
			cb.Token, cb.AESKey, cb.CryptAppID = d.comp.Token, d.comp.AESKey, d.comp.AppID
		} else {
			if cb.Token, err = models.OpenAppSecret(d.cfg.Sealer, a, models.ColCallbackToken); err != nil {
				return err
			}
			if cb.AESKey, err = models.OpenAppSecret(d.cfg.Sealer, a, models.ColAESKey); err != nil {
				return err
			}
			cb.Plaintext = cb.AESKey == ""
		}
		if a.IsOfficialAccount() && cb.Token != "" {
			if err := d.sim.SetCallback(a.AppID, cb); err != nil {
				return err
			}
		}
	}
	return nil
}

// followHint picks a former follower of 示例服务号 (linked, so their profile
// keeps its id when they come back) and says how to make them follow again.
func (d *Demo) followHint(ctx context.Context, db *gorm.DB, tenant *models.Tenant, r *Ready) error {
	svc := d.apps[ServiceName]
	app, err := models.FindAppByAppID(db, tenant.ID, svc.AppID)
	if err != nil {
		return err
	}
	var row struct {
		CustomerID int64
		OpenID     string `gorm:"column:openid"`
	}
	err = db.Model(&models.Identity{}).Scopes(models.ForTenant(tenant.ID)).
		Where("app_id = ? AND subscribed = ? AND unsubscribed_at IS NOT NULL AND unionid IS NOT NULL", app.ID, false).
		Order("id").Limit(1).Select("customer_id, openid").Scan(&row).Error
	if err != nil || row.CustomerID == 0 {
		return err
	}
	p, ok := d.sim.PersonOf(svc.AppID, row.OpenID)
	if !ok {
		return nil
	}
	r.FollowCommand = fmt.Sprintf(`curl -s -X POST %s/_sim/follow -d '{"appid":"%s","person":%d}'`, d.sim.URL(), svc.AppID, p)
	r.CustomerPath = fmt.Sprintf("/t/%s/customers/%d", tenant.Slug, row.CustomerID)
	return nil
}

func randomText(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	s := base64.RawURLEncoding.EncodeToString(b)
	s = strings.NewReplacer("-", "x", "_", "y").Replace(s)
	return s[:n]
}
