package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"gorm.io/gorm"

	"oneid/app/wechat/wechattest"
	"oneid/models"
)

// layout places the demo's customers on the simulator's people: person
// base+i for i in these half-open ranges (at scale 1).
//
//	[0, 24000)        follow 示例服务号 (sim followers); OneID knows [0, 23600): the rest followed since the last sync
//	[24000, 25500)    followed 示例服务号 and left (not in its list any more)
//	[16000, 30000)    follow 示例资讯订阅号; OneID knows [16000, 29700)
//	[30000, 31000)    followed 示例资讯订阅号 and left
//	[8000, 34000)     six in ten use 示例商城小程序
//	[40000, 42000)    visited 示例服务号's pages by silent OAuth: an OpenID, no UnionID
//	[42000, 42500)    imported OpenIDs of 示例资讯订阅号, nobody asked WeChat yet
type layout struct {
	base                                int
	svcKnown, svcEnd, svcGone           int
	subStart, subKnown, subEnd, subGone int
	miniStart, miniEnd                  int
	visitStart, visitEnd, importEnd     int
	miniPer10                           uint64
	followersSvc, followersSub          int
}

func newLayout(scale float64) layout {
	n := func(v int) int { return int(float64(v) * scale) }
	l := layout{base: 1 << 32,
		svcKnown: n(23600), svcEnd: n(24000), svcGone: n(25500),
		subStart: n(16000), subKnown: n(29700), subEnd: n(30000), subGone: n(31000),
		miniStart: n(8000), miniEnd: n(34000),
		visitStart: n(40000), visitEnd: n(42000), importEnd: n(42500), miniPer10: 6}
	l.followersSvc, l.followersSub = l.svcKnown, l.subKnown-l.subStart
	return l
}

func in(i, lo, hi int) bool { return i >= lo && i < hi }

// people lists the person numbers (relative to base) that OneID knows.
func (l layout) people() []int {
	var out []int
	for i := 0; i < l.importEnd; i++ {
		if in(i, 0, l.svcKnown) || in(i, l.svcEnd, l.svcGone) || in(i, l.subStart, l.subKnown) || in(i, l.subEnd, l.subGone) ||
			l.usesMini(i) || in(i, l.visitStart, l.importEnd) {
			out = append(out, i)
		}
	}
	return out
}

func (l layout) usesMini(i int) bool {
	return in(i, l.miniStart, l.miniEnd) && mix(uint64(i))%10 < l.miniPer10
}

func mix(v uint64) uint64 {
	v += 0x9e3779b97f4a7c15
	v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9
	v = (v ^ (v >> 27)) * 0x94d049bb133111eb
	return v ^ (v >> 31)
}

var (
	surnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘")
	given    = []string{"小明", "晓雯", "子涵", "欣怡", "浩然", "梓萱", "宇轩", "一诺", "雨桐", "俊杰", "思远", "佳琪", "天佑", "若曦", "嘉怡", "志强", "静", "伟", "芳", "磊", "敏", "洋", "婷", "杰"}
	prefixes = []string{"", "", "", "阿", "小", "Lucky", "Mr.", "Coco"} // no emoji: the screenshots' font has none
	scenes   = []string{"ADD_SCENE_SEARCH", "ADD_SCENE_QR_CODE", "ADD_SCENE_PROFILE_CARD", "ADD_SCENE_ACCOUNT_MIGRATION", "ADD_SCENE_WECHAT_ADVERTISEMENT"}
)

// seed writes the demo's customers (deleting what an interrupted first start
// left), then their masks and the dashboard's figures.
func (d *Demo) seed(ctx context.Context, db *gorm.DB, tenantID int64) (models.SeedResult, error) {
	var res models.SeedResult
	for _, m := range []any{&models.CustomerEvent{}, &models.Identity{}, &models.Customer{}} {
		if err := db.Scopes(models.ForTenant(tenantID)).Delete(m).Error; err != nil {
			return res, fmt.Errorf("demo: clear a half-made workspace: %w", err)
		}
	}
	ids := map[string]int64{}
	for _, name := range []string{ServiceName, SubscriptionName, MiniProgramName} {
		a, err := models.FindAppByAppID(db, tenantID, d.apps[name].AppID)
		if err != nil {
			return res, fmt.Errorf("demo: %s: %w", name, err)
		}
		ids[name] = a.ID
	}
	open, err := models.FindOpenAccountByOpenAppID(db, tenantID, d.open)
	if err != nil {
		return res, fmt.Errorf("demo: the open-platform account: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	people := d.layout.people()
	l := d.layout
	svc, sub, mini := d.apps[ServiceName], d.apps[SubscriptionName], d.apps[MiniProgramName]
	var genErr error
	gen := func(k int) models.SeedCustomer {
		i := people[k]
		p := wechattest.Person(uint64(l.base + i))
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		var c models.SeedCustomer
		if rng.IntN(10) < 7 {
			c.Nickname = prefixes[rng.IntN(len(prefixes))] + string(surnames[rng.IntN(len(surnames))]) + given[rng.IntN(len(given))]
			c.AvatarURL = fmt.Sprintf("https://thirdwx.qlogo.cn/mmopen/demo%08x/132", mix(uint64(i))&0xffffffff)
		}
		ago := func(maxDays int) time.Time {
			return now.Add(-time.Duration(rng.Int64N(int64(maxDays)*86400)+60) * time.Second)
		}
		between := func(a, b time.Time) time.Time {
			if !b.After(a) {
				return a
			}
			return a.Add(time.Duration(rng.Int64N(int64(b.Sub(a))))).Truncate(time.Second)
		}
		follower := func(a wechattest.AppInfo, appID int64) {
			st, _ := d.sim.FollowerState(a.AppID, p)
			if !st.Subscribed && genErr == nil {
				genErr = fmt.Errorf("demo: person %d does not follow %s in the simulator", p, a.Name)
			}
			t := st.SubscribeTime
			c.Identities = append(c.Identities, models.SeedIdentity{AppID: appID, OpenID: d.sim.OpenID(a.AppID, p),
				Subscribed: true, SubscribeTime: &t, SubscribeScene: st.Scene, Source: models.SourceSync,
				FirstSeen: t, LastSeen: between(t, now)})
		}
		former := func(a wechattest.AppInfo, appID int64) {
			left := ago(120)
			t := left.Add(-time.Duration(rng.IntN(3*365*86400)) * time.Second)
			oid := d.sim.OpenID(a.AppID, p)
			c.Identities = append(c.Identities, models.SeedIdentity{AppID: appID, OpenID: oid, SubscribeTime: &t,
				SubscribeScene: scenes[rng.IntN(len(scenes))], UnsubscribedAt: &left, Source: models.SourceSync, FirstSeen: t, LastSeen: left})
			c.Events = append(c.Events, models.SeedEvent{Kind: models.EventUnfollowed, AppID: appID, OpenID: oid, At: left})
		}
		switch {
		case i < l.visitStart:
			u := d.sim.UnionID(d.open, p)
			c.UnionID, c.OpenAccountID = &u, &open.ID
			switch {
			case in(i, 0, l.svcKnown):
				follower(svc, ids[ServiceName])
			case in(i, l.svcEnd, l.svcGone):
				former(svc, ids[ServiceName])
			}
			switch {
			case in(i, l.subStart, l.subKnown):
				follower(sub, ids[SubscriptionName])
			case in(i, l.subEnd, l.subGone):
				former(sub, ids[SubscriptionName])
			}
			if l.usesMini(i) {
				first := ago(400)
				last := between(first, now)
				oid := d.sim.OpenID(mini.AppID, p)
				c.Identities = append(c.Identities, models.SeedIdentity{AppID: ids[MiniProgramName], OpenID: oid,
					Source: models.SourceMiniProgram, FirstSeen: first, LastSeen: last})
				c.Events = append(c.Events, models.SeedEvent{Kind: models.EventMiniSignIn, AppID: ids[MiniProgramName], OpenID: oid, At: last})
			}
		case i < l.visitEnd:
			r := models.UnlinkedSnsapiBase
			c.UnlinkedReason = &r
			first := ago(200)
			last := between(first, now)
			oid := d.sim.OpenID(svc.AppID, p)
			c.Identities = append(c.Identities, models.SeedIdentity{AppID: ids[ServiceName], OpenID: oid, Source: models.SourceOAuth, FirstSeen: first, LastSeen: last})
			c.Events = append(c.Events, models.SeedEvent{Kind: models.EventOAuthSignIn, AppID: ids[ServiceName], OpenID: oid, Detail: "snsapi_base", At: last})
		default:
			r := models.UnlinkedNotAsked
			c.UnlinkedReason = &r
			at := ago(60)
			oid := d.sim.OpenID(sub.AppID, p)
			c.Identities = append(c.Identities, models.SeedIdentity{AppID: ids[SubscriptionName], OpenID: oid, Source: models.SourceImport, FirstSeen: at, LastSeen: at})
			c.Events = append(c.Events, models.SeedEvent{Kind: models.EventImported, AppID: ids[SubscriptionName], OpenID: oid, At: at})
		}
		c.FirstSeen, c.LastSeen = c.Identities[0].FirstSeen, c.Identities[0].LastSeen
		for _, id := range c.Identities[1:] {
			if id.FirstSeen.Before(c.FirstSeen) {
				c.FirstSeen = id.FirstSeen
			}
			if id.LastSeen.After(c.LastSeen) {
				c.LastSeen = id.LastSeen
			}
		}
		if len(c.Identities) > 1 {
			second := c.Identities[1]
			c.Events = append(c.Events, models.SeedEvent{Kind: models.EventLinked, AppID: second.AppID, OpenID: second.OpenID, At: second.FirstSeen})
		}
		return c
	}
	res, err = models.SeedCustomers(ctx, db, tenantID, len(people), gen, nil)
	if err == nil {
		err = genErr
	}
	if err != nil {
		return res, err
	}
	last := now.Add(-26 * time.Hour)
	for name, n := range map[string]int{ServiceName: l.followersSvc, SubscriptionName: l.followersSub} {
		if err := db.Model(&models.App{}).Scopes(models.ForTenant(tenantID)).Where("id = ?", ids[name]).
			Updates(map[string]any{"follower_count": n, "last_sync_at": last}).Error; err != nil {
			return res, err
		}
	}
	if _, err := models.RebuildCustomerMasks(ctx, db, tenantID, nil); err != nil {
		return res, err
	}
	if _, err := models.RefreshDashboard(db, tenantID, time.Now().UTC()); err != nil {
		return res, err
	}
	res.Apps = 3
	return res, nil
}
