package ingest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/app/ingest"
	"oneid/app/jobs"
	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/models"
)

// syncWorld is a tenant on a real database with official accounts bound in
// self-managed mode to apps of a simulator, and a Syncer aimed at it.
type syncWorld struct {
	t      testing.TB
	db     *gorm.DB
	sim    *wechattest.Sim
	sealer *models.Sealer
	key    []byte
	wx     *wechat.Client
	tenant int64
	open   string // the simulator's open account
	openID int64  // its row
	admin  ingest.SyncActor
}

// syncApp is an app of the world: the simulator's side and OneID's row.
type syncApp struct {
	wechattest.AppInfo
	ID int64
}

func newSyncWorld(t testing.TB, db *gorm.DB, sim *wechattest.Sim) *syncWorld {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := models.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	w := &syncWorld{t: t, db: db, sim: sim, sealer: sealer, key: key, wx: sim.Client(t, nil)}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := "Sync " + hex.EncodeToString(suffix)
	tenant, admin, err := models.CreateTenant(db, models.NewTenant{Name: name, PrincipalName: "模拟科技（深圳）有限公司",
		Admin: models.User{Email: "admin-" + hex.EncodeToString(suffix) + "@example.com", Name: "Admin", PasswordHash: "x", Locale: "en"}})
	if err != nil {
		t.Fatal(err)
	}
	w.tenant = tenant.ID
	w.admin = ingest.SyncActor{UserID: admin.ID, Email: admin.Email, IP: "127.0.0.1"}
	w.open = sim.AddOpenAccount(wechattest.OpenAccountSpec{Name: name, Principal: "模拟科技（深圳）有限公司", Verified: true})
	oa := models.OpenAccount{OpenAppID: w.open, PrincipalName: "模拟科技（深圳）有限公司", Verified: true, CreatedVia: models.OpenViaDeclared}
	if err := models.CreateOpenAccount(db, w.tenant, &oa); err != nil {
		t.Fatal(err)
	}
	w.openID = oa.ID
	return w
}

// app adds an official account with n followers to the simulator and binds
// it; inOpen puts it in the world's open-platform account (unionids).
// unsubPermille of the listed followers answer subscribe=0 in batchget.
func (w *syncWorld) app(name string, n int, inOpen bool, unsubPermille int) syncApp {
	w.t.Helper()
	spec := wechattest.AppSpec{Name: name + "-" + fmt.Sprint(w.tenant), Principal: "模拟科技（深圳）有限公司", Followers: n,
		UnsubscribedPermille: &unsubPermille}
	if inOpen {
		spec.OpenAppID = w.open
	}
	info := w.sim.MustAddApp(spec)
	sealed, err := models.SealAppSecret(w.sealer, w.tenant, info.AppID, models.ColAppSecret, info.Secret)
	if err != nil {
		w.t.Fatal(err)
	}
	row := &models.App{AppID: info.AppID, Kind: models.KindService, Name: info.Name, PrincipalName: info.Principal,
		BindingMode: models.ModeSelfManaged, Declared: true, GhID: info.UserName, SecretSealed: sealed}
	if inOpen {
		row.OpenAccountID = &w.openID
	}
	if err := models.BindApp(w.db, w.tenant, row); err != nil {
		w.t.Fatal(err)
	}
	return syncApp{AppInfo: info, ID: row.ID}
}

func (w *syncWorld) syncer(cfg ingest.SyncConfig) *ingest.Syncer {
	cfg.DB, cfg.WeChat, cfg.Sealer = w.db, w.wx, w.sealer
	return ingest.NewSyncer(cfg)
}

func (w *syncWorld) runner(owner string, s *ingest.Syncer) *jobs.Runner {
	r := jobs.New(jobs.Config{DB: w.db, Owner: owner, Lease: 2 * time.Second, Heartbeat: 100 * time.Millisecond,
		Poll: 20 * time.Millisecond, Backoff: func(int) time.Duration { return 50 * time.Millisecond }})
	r.Register(s.Kind())
	return r
}

// start enqueues a sync of the app as the world's admin.
func (w *syncWorld) start(a syncApp) *models.Job {
	w.t.Helper()
	j, err := ingest.StartSync(w.db, w.tenant, a.ID, w.admin, time.Now().UTC())
	if err != nil {
		w.t.Fatalf("start sync: %v", err)
	}
	return j
}

// syncNow runs a sync of the app to its end in this goroutine.
func (w *syncWorld) syncNow(a syncApp, s *ingest.Syncer) *models.Job {
	w.t.Helper()
	j := w.start(a)
	if err := w.runner("now", s).Drain(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	return w.job(j.ID)
}

func (w *syncWorld) job(id int64) *models.Job {
	w.t.Helper()
	j, err := models.FindJob(w.db, w.tenant, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return j
}

func (w *syncWorld) waitJob(id int64, what string, cond func(*models.Job) bool) *models.Job {
	w.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		j := w.job(id)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s: %+v", what, j)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// follower is what the simulator says of generated follower k.
type follower struct {
	openID, unionID string
	person          wechattest.Person
}

func (w *syncWorld) followers(a syncApp, inOpen bool) []follower {
	out := make([]follower, a.Followers)
	for k := range out {
		p := w.sim.Follower(a.AppID, k)
		out[k] = follower{openID: w.sim.OpenID(a.AppID, p), person: p}
		if inOpen {
			out[k].unionID = w.sim.UnionID(w.open, p)
		}
	}
	return out
}

// identityRow is an identity as the checks compare it.
type identityRow struct {
	OpenID       string  `gorm:"column:openid"`
	UnionID      *string `gorm:"column:unionid"`
	Subscribed   bool
	CustomerID   int64
	LastSyncPass int64
}

func (w *syncWorld) identities(a syncApp) map[string]identityRow {
	w.t.Helper()
	var rows []identityRow
	err := w.db.Model(&models.Identity{}).Scopes(models.ForTenant(w.tenant)).Where("app_id = ?", a.ID).
		Select("openid", "unionid", "subscribed", "customer_id", "last_sync_pass").Find(&rows).Error
	if err != nil {
		w.t.Fatal(err)
	}
	out := make(map[string]identityRow, len(rows))
	for _, r := range rows {
		if _, dup := out[r.OpenID]; dup {
			w.t.Fatalf("openid %s stored twice", r.OpenID)
		}
		out[r.OpenID] = r
	}
	return out
}

// checkMatches fails unless the app's identities are exactly the followers,
// each with its unionid (nil when none is expected), and subscribed.
func (w *syncWorld) checkMatches(a syncApp, want []follower) {
	w.t.Helper()
	got := w.identities(a)
	if len(got) != len(want) {
		w.t.Errorf("%d identities for %d followers", len(got), len(want))
	}
	bad := 0
	for _, f := range want {
		r, ok := got[f.openID]
		u := ""
		if ok && r.UnionID != nil {
			u = *r.UnionID
		}
		if !ok || u != f.unionID || !r.Subscribed {
			if bad++; bad <= 5 {
				w.t.Errorf("follower %s: stored=%v unionid=%q (want %q) subscribed=%v", f.openID, ok, u, f.unionID, r.Subscribed)
			}
		}
	}
	if bad > 5 {
		w.t.Errorf("… %d followers in all are wrong", bad)
	}
}

// table dumps a tenant table in a stable order, leaving out columns a
// re-sync may move (the pass mark).
func (w *syncWorld) table(name string, skip ...string) string {
	w.t.Helper()
	rows, err := w.db.Raw("SELECT * FROM "+name+" WHERE tenant_id = ? ORDER BY id", w.tenant).Rows()
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			w.t.Fatal(err)
		}
		for i, v := range vals {
			if contains(skip, cols[i]) {
				continue
			}
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			fmt.Fprintf(&out, "%s=%v ", cols[i], v)
		}
		out.WriteByte('\n')
	}
	return out.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (w *syncWorld) count(model any, where string, args ...any) int64 {
	w.t.Helper()
	var n int64
	q := w.db.Model(model).Scopes(models.ForTenant(w.tenant))
	if where != "" {
		q = q.Where(where, args...)
	}
	if err := q.Count(&n).Error; err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *syncWorld) auditActions() []string {
	w.t.Helper()
	page, err := models.ListAudit(w.db, w.tenant, 0, 100)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for i := len(page.Events) - 1; i >= 0; i-- {
		if strings.HasPrefix(page.Events[i].Action, "sync_") {
			out = append(out, page.Events[i].Action)
		}
	}
	return out
}
