package models

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"gorm.io/gorm"
)

// SeedOptions shapes a generated tenant for development and benchmarks.
type SeedOptions struct {
	Customers int
	// Seed makes the data reproducible; the same seed gives the same people.
	Seed uint64
	Now  time.Time
	// Progress, when set, is told how many customers have been written.
	Progress func(done int)
}

// SeedResult says what Seed wrote.
type SeedResult struct {
	Apps       int
	Customers  int
	Identities int
	Events     int
}

// seedApp is one generated app and how likely a linked customer is to use it.
type seedApp struct {
	kind, name string
	inOpen     bool
	share      float64
}

// The generated tenant: five apps under one open-platform account with realistic
// overlap (on average about three identities a customer), and one official
// account bound to no open-platform account, whose followers stay unlinked.
var seedApps = []seedApp{
	{KindService, "品牌服务号", true, 0.80},
	{KindSubscription, "会员资讯订阅号", true, 0.55},
	{KindMiniProgram, "官方商城小程序", true, 0.75},
	{KindMiniProgram, "门店预约小程序", true, 0.45},
	{KindSubscription, "活动订阅号", true, 0.40},
	{KindSubscription, "区域分公司订阅号", false, 0},
}

var (
	seedSurnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘")
	seedGiven    = []string{"小明", "晓雯", "子涵", "欣怡", "浩然", "梓萱", "宇轩", "一诺", "雨桐", "俊杰", "思远", "佳琪", "天佑", "若曦", "嘉怡", "志强", "静", "伟", "芳", "磊", "敏", "洋", "婷", "杰"}
	seedPrefix   = []string{"", "", "", "阿", "小", "Lucky", "🌸", "Mr.", "Coco"}
	seedScenes   = []string{"ADD_SCENE_SEARCH", "ADD_SCENE_QR_CODE", "ADD_SCENE_PROFILE_CARD", "ADD_SCENE_ACCOUNT_MIGRATION", "ADD_SCENE_WECHAT_ADVERTISEMENT", "ADD_SCENE_OTHERS"}
	seedReasons  = []string{UnlinkedNotFollower, UnlinkedSnsapiBase, UnlinkedNotAsked}
)

// SeedID derives a WeChat-shaped id (28 characters of [A-Za-z0-9_-], starting
// with "o") from its parts, so generated data is reproducible.
func SeedID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "|")))
	return "o" + base64.RawURLEncoding.EncodeToString(sum[:])[:27]
}

func seedAppID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "|")))
	return "wx" + hex.EncodeToString(sum[:8])
}

// Seed writes a large, realistic tenant fast: an open-platform account, several
// apps, customers with overlapping identities, unlinked customers, unsubscribed
// followers and timeline events. It adds to what the tenant already has.
func Seed(ctx context.Context, db *gorm.DB, tenantID int64, opt SeedOptions) (SeedResult, error) {
	var res SeedResult
	if opt.Customers <= 0 {
		return res, fmt.Errorf("models: seed needs a positive number of customers")
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now().UTC()
	}
	db = db.WithContext(ctx)
	rng := rand.New(rand.NewPCG(opt.Seed, uint64(tenantID)))
	run := fmt.Sprintf("%d-%d-%d", tenantID, opt.Seed, opt.Now.UnixNano())

	var principal string
	if err := CrossTenant(db, "seed reads the tenant's principal").Raw("SELECT principal_name FROM tenants WHERE id = ?", tenantID).Scan(&principal).Error; err != nil {
		return res, fmt.Errorf("models: seed: %w", err)
	}
	if principal == "" {
		return res, ErrNotFound
	}
	open := OpenAccount{TenantID: tenantID, OpenAppID: seedAppID(run, "open"), PrincipalName: principal,
		Verified: true, CreatedVia: "api", CreatedAt: opt.Now, UpdatedAt: opt.Now}
	if err := db.Create(&open).Error; err != nil {
		return res, fmt.Errorf("models: seed open account: %w", err)
	}
	apps := make([]App, len(seedApps))
	for i, sa := range seedApps {
		appid := seedAppID(run, "app", fmt.Sprint(i))
		apps[i] = App{TenantID: tenantID, AppID: appid, BoundAppID: &appid, Kind: sa.kind, Name: sa.name,
			PrincipalName: principal, VerifyType: 0, BindingMode: ModeAuthorized, Status: AppActive,
			GhID: "gh_" + appid[2:14], CallbackKey: seedAppID(run, "cb", fmt.Sprint(i))[2:],
			CreatedAt: opt.Now, UpdatedAt: opt.Now}
		if sa.inOpen {
			apps[i].OpenAccountID = &open.ID
		}
	}
	if err := db.Create(&apps).Error; err != nil {
		return res, fmt.Errorf("models: seed apps: %w", err)
	}
	res.Apps = len(apps)

	var base struct{ C, I, E int64 }
	cross := CrossTenant(db, "seed reserves id ranges")
	if err := cross.Raw("SELECT COALESCE(MAX(id), 0) AS c FROM customers").Scan(&base.C).Error; err != nil {
		return res, err
	}
	if err := cross.Raw("SELECT COALESCE(MAX(id), 0) AS i FROM identities").Scan(&base.I).Error; err != nil {
		return res, err
	}
	if err := cross.Raw("SELECT COALESCE(MAX(id), 0) AS e FROM customer_events").Scan(&base.E).Error; err != nil {
		return res, err
	}

	w := newSeedWriter(db, tenantID)
	followers := make([]int64, len(apps))
	const chunk = 2000
	for start := 0; start < opt.Customers; start += chunk {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		end := min(start+chunk, opt.Customers)
		for p := start; p < end; p++ {
			base.C++
			cid := base.C
			person := fmt.Sprintf("%s-%d", run, p)
			// First seen within the last two years, more of them recently.
			age := time.Duration(rng.ExpFloat64()*180*24) * time.Hour
			if age > 730*24*time.Hour {
				age = time.Duration(rng.IntN(730*24)) * time.Hour
			}
			first := opt.Now.Add(-age).Truncate(time.Second)
			last := first.Add(time.Duration(rng.Float64() * float64(opt.Now.Sub(first)))).Truncate(time.Second)
			nick := ""
			if rng.IntN(10) < 7 {
				nick = seedPrefix[rng.IntN(len(seedPrefix))] + string(seedSurnames[rng.IntN(len(seedSurnames))]) + seedGiven[rng.IntN(len(seedGiven))]
			}
			avatar := ""
			if nick != "" {
				avatar = "https://thirdwx.qlogo.cn/mmopen/" + SeedID(person, "avatar")[1:] + "/132"
			}
			var memberOf []int
			unlinked := rng.IntN(100) < 9
			if unlinked {
				// One identity, no UnionID: either the app outside the open account,
				// or a non-follower / silent-OAuth visitor of an app inside it.
				if rng.IntN(2) == 0 {
					memberOf = []int{len(apps) - 1}
				} else {
					memberOf = []int{rng.IntN(len(apps) - 1)}
				}
			} else {
				for i, sa := range seedApps {
					if sa.inOpen && rng.Float64() < sa.share {
						memberOf = append(memberOf, i)
					}
				}
				if len(memberOf) == 0 {
					memberOf = []int{rng.IntN(len(apps) - 1)}
				}
			}
			var unionid *string
			var reason *string
			if !unlinked {
				u := SeedID(open.OpenAppID, person)
				unionid = &u
			} else {
				r := UnlinkedNoOpenAccount
				if memberOf[0] != len(apps)-1 {
					r = seedReasons[rng.IntN(len(seedReasons))]
				}
				reason = &r
			}
			var openAcct *int64
			if unionid != nil {
				openAcct = &open.ID
			}
			w.customer(cid, openAcct, unionid, reason, nick, avatar, first, last)
			for _, ai := range memberOf {
				app := &apps[ai]
				base.I++
				oid := SeedID(app.AppID, person)
				seen := first.Add(time.Duration(rng.Float64() * float64(last.Sub(first)))).Truncate(time.Second)
				source, subscribed, scene := SourceMiniProgram, false, ""
				var subTime, unsubAt *time.Time
				if app.IsOfficialAccount() {
					source = SourceSync
					if unlinked && reason != nil && *reason == UnlinkedSnsapiBase {
						source = SourceOAuth
					} else {
						st := seen
						subTime = &st
						scene = seedScenes[rng.IntN(len(seedScenes))]
						subscribed = rng.IntN(100) >= 15 && !(reason != nil && *reason == UnlinkedNotFollower)
						if !subscribed {
							u := last
							unsubAt = &u
						} else {
							followers[ai]++
						}
					}
				}
				w.identity(base.I, app.ID, cid, oid, unionid, openAcct, reason, subscribed, subTime, scene, unsubAt, source, nick, avatar, seen, last)
				// A follow found by a sync is shown from the identity itself
				// (CustomerTimeline derives it), so only other sources store one.
				if subTime != nil && source != SourceSync {
					base.E++
					w.event(base.E, cid, EventFollowed, app.ID, oid, scene, *subTime)
				}
				if unsubAt != nil {
					base.E++
					w.event(base.E, cid, EventUnfollowed, app.ID, oid, "", *unsubAt)
				}
			}
			if unionid != nil && len(memberOf) > 1 {
				base.E++
				w.event(base.E, cid, EventLinked, apps[memberOf[1]].ID, SeedID(apps[memberOf[1]].AppID, person), "", first.Add(time.Minute))
			}
		}
		if err := w.flush(); err != nil {
			return res, err
		}
		if opt.Progress != nil {
			opt.Progress(end)
		}
	}
	for i := range apps {
		if err := db.Model(&App{}).Scopes(ForTenant(tenantID)).Where("id = ?", apps[i].ID).
			Updates(map[string]any{"follower_count": followers[i], "last_sync_at": opt.Now}).Error; err != nil {
			return res, err
		}
	}
	res.Customers, res.Identities, res.Events = w.customers, w.identities, w.events
	return res, nil
}

// seedWriter buffers rows and writes them as multi-row INSERTs in one
// transaction a chunk: the fastest portable way in through GORM.
type seedWriter struct {
	db                            *gorm.DB
	tenantID                      int64
	cRows, iRows, eRows           []any
	nC, nI, nE                    int
	customers, identities, events int
}

func newSeedWriter(db *gorm.DB, tenantID int64) *seedWriter {
	return &seedWriter{db: db, tenantID: tenantID}
}

func (w *seedWriter) customer(id int64, open *int64, unionid, reason *string, nick, avatar string, first, last time.Time) {
	w.cRows = append(w.cRows, id, w.tenantID, open, unionid, reason, nick, avatar, first, last, first, last)
	w.nC++
}

// identity carries the customer's namespace and unlinked reason, as Resolve
// keeps them on every identity.
func (w *seedWriter) identity(id, appID, cid int64, openid string, unionid *string, open *int64, reason *string, subscribed bool, subTime *time.Time, scene string, unsub *time.Time, source, nick, avatar string, first, last time.Time) {
	w.iRows = append(w.iRows, id, w.tenantID, appID, cid, openid, unionid, open, reason, subscribed, subTime, scene, unsub, source, nick, avatar, first, last, first, last)
	w.nI++
}

func (w *seedWriter) event(id, cid int64, kind string, appID int64, openid, detail string, at time.Time) {
	w.eRows = append(w.eRows, id, w.tenantID, cid, kind, appID, openid, detail, at, at)
	w.nE++
}

const (
	seedCustomerCols = "id, tenant_id, open_account_id, unionid, unlinked_reason, nickname, avatar_url, first_seen_at, last_seen_at, created_at, updated_at"
	seedIdentityCols = "id, tenant_id, app_id, customer_id, openid, unionid, open_account_id, unlinked_reason, subscribed, subscribe_time, subscribe_scene, unsubscribed_at, source, nickname, avatar_url, first_seen_at, last_seen_at, created_at, updated_at"
	seedEventCols    = "id, tenant_id, customer_id, kind, app_id, openid, detail, occurred_at, created_at"
)

func (w *seedWriter) flush() error {
	err := w.db.Transaction(func(tx *gorm.DB) error {
		if err := insertRows(tx, "customers", seedCustomerCols, 11, w.cRows); err != nil {
			return err
		}
		if err := insertRows(tx, "identities", seedIdentityCols, 19, w.iRows); err != nil {
			return err
		}
		return insertRows(tx, "customer_events", seedEventCols, 9, w.eRows)
	})
	if err != nil {
		return fmt.Errorf("models: seed: %w", err)
	}
	w.customers += w.nC
	w.identities += w.nI
	w.events += w.nE
	w.cRows, w.iRows, w.eRows = w.cRows[:0], w.iRows[:0], w.eRows[:0]
	w.nC, w.nI, w.nE = 0, 0, 0
	return nil
}

// insertRows writes flat row values as INSERT statements of at most 1,000
// rows. The pure-Go SQLite driver binds parameters in time quadratic in their
// number, so there a statement carries at most about 400 parameters.
func insertRows(tx *gorm.DB, table, cols string, width int, vals []any) error {
	perStmt := 1000
	if Dialect(tx) == DialectSQLite {
		perStmt = max(400/width, 1)
	}
	group := "(" + strings.TrimSuffix(strings.Repeat("?,", width), ",") + ")"
	for start := 0; start < len(vals); start += perStmt * width {
		end := min(start+perStmt*width, len(vals))
		n := (end - start) / width
		sql := "INSERT INTO " + table + " (" + cols + ") VALUES " + strings.TrimSuffix(strings.Repeat(group+",", n), ",")
		if err := tx.Exec(sql, vals[start:end]...).Error; err != nil {
			return fmt.Errorf("insert %s: %w", table, err)
		}
	}
	return nil
}
