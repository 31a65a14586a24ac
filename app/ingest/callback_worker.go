package ingest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"oneid/app/jobs"
	"oneid/app/wechat"
	"oneid/models"
)

// Run is the callback worker: it resolves stored events until ctx ends,
// woken by this process's inserts and polling for those of other instances,
// and purges settled events after the retention time. Several instances may
// run it: each claims its batches under a lease.
func (c *Callbacks) Run(ctx context.Context) error {
	purge := time.NewTicker(10 * time.Minute)
	defer purge.Stop()
	c.purge(ctx)
	failures := 0
	for {
		n, err := c.ProcessPending(ctx)
		if err != nil && ctx.Err() == nil {
			c.log.Error("ingest: resolve callback events", "err", err)
		}
		if err == nil && n >= c.cfg.ClaimBatch {
			failures = 0
			continue // more are waiting
		}
		// While the database fails, look less often (up to 10 s); a push
		// stored by this instance still wakes the worker at once.
		if err != nil && ctx.Err() == nil {
			failures++
		} else {
			failures = 0
		}
		wait := jobs.PollWait(c.cfg.Poll, failures)
		select {
		case <-ctx.Done():
			return nil
		case <-purge.C:
			c.purge(ctx)
		case <-time.After(wait):
		case <-c.wake:
			// Let the pushes arriving alongside join this batch: fewer,
			// larger transactions leave the database's commits (and the
			// CPU) to the acknowledgements.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(c.cfg.Gather):
			}
		}
	}
}

func (c *Callbacks) purge(ctx context.Context) {
	before := c.now().Add(-c.cfg.Retention)
	for ctx.Err() == nil {
		n, err := models.PurgeCallbackEvents(c.db.WithContext(ctx), before, 5000)
		if err != nil {
			c.log.Warn("ingest: purge callback events", "err", err)
			return
		}
		if n < 5000 {
			return
		}
	}
}

// ProcessPending claims one batch of stored events and resolves it, tenant
// by tenant; it returns how many events it claimed.
func (c *Callbacks) ProcessPending(ctx context.Context) (int, error) {
	db := c.db.WithContext(ctx)
	events, err := models.ClaimCallbackEvents(db, c.now(), c.cfg.Lease, c.cfg.ClaimBatch)
	if err != nil || len(events) == 0 {
		return 0, err
	}
	byTenant := map[int64][]models.CallbackEvent{}
	var tenantIDs []int64
	for _, e := range events {
		if byTenant[e.TenantID] == nil {
			tenantIDs = append(tenantIDs, e.TenantID)
		}
		byTenant[e.TenantID] = append(byTenant[e.TenantID], e)
	}
	var errs []error
	for _, t := range tenantIDs {
		evs := byTenant[t]
		if err := c.resolveEvents(ctx, t, evs); err != nil {
			errs = append(errs, err)
			ids := eventIDs(evs)
			if rerr := models.ReleaseCallbackEvents(db, t, ids, err, c.now(), 5*time.Second); rerr != nil {
				errs = append(errs, rerr)
			}
		}
	}
	return len(events), errors.Join(errs...)
}

// ProcessAll resolves every pending event (tests, and a drain at shutdown).
func (c *Callbacks) ProcessAll(ctx context.Context) error {
	for {
		n, err := c.ProcessPending(ctx)
		if err != nil || n == 0 {
			return err
		}
	}
}

func eventIDs(evs []models.CallbackEvent) []int64 {
	ids := make([]int64, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}

// resolveEvents turns one tenant's events into observations, asking WeChat
// for the UnionID of those who (re)followed or scanned, and resolves them in
// one call.
func (c *Callbacks) resolveEvents(ctx context.Context, tenantID int64, evs []models.CallbackEvent) error {
	db := c.db.WithContext(ctx)
	apps := map[int64]*models.App{}
	for _, e := range evs {
		if _, ok := apps[e.AppID]; ok {
			continue
		}
		a, err := models.FindApp(db, tenantID, e.AppID)
		if errors.Is(err, models.ErrNotFound) {
			apps[e.AppID] = nil // deleted meanwhile: its events are dropped below
			continue
		}
		if err != nil {
			return err
		}
		apps[e.AppID] = a
	}
	infos := c.userInfos(ctx, apps, evs)
	obs := make([]models.Observation, 0, len(evs))
	for i := range evs {
		e := &evs[i]
		if apps[e.AppID] == nil {
			continue
		}
		obs = append(obs, observationOf(e, infos[e.AppID][e.OpenID], c.now()))
	}
	res, err := models.Resolve(db, tenantID, obs)
	if err != nil {
		return err
	}
	for i, rej := range res.Rejections() {
		c.log.Warn("ingest: callback event refused by resolution", "tenant_id", tenantID, "app_id", obs[i].AppID, "err", rej)
	}
	return models.FinishCallbackEvents(db, tenantID, eventIDs(evs), c.now())
}

// observationOf is what an event (and user/info, when asked) says.
func observationOf(e *models.CallbackEvent, info *wechat.UserInfo, now time.Time) models.Observation {
	at := time.Unix(e.CreateTime, 0).UTC()
	if e.CreateTime <= 0 || at.After(now.Add(time.Hour)) {
		at = now // a clock WeChat would not send; keep the arrival
	}
	o := models.Observation{AppID: e.AppID, OpenID: e.OpenID, Source: models.SourceEvent, At: at,
		SubscribeScene: sceneOf(e)}
	if info != nil {
		if info.Subscribe == 1 {
			o.UnionID = info.UnionID
			if info.SubscribeScene != "" {
				o.SubscribeScene = info.SubscribeScene
			}
		} else {
			o.NoUnionIDReason = models.UnlinkedNotFollower
		}
	}
	switch e.Event {
	case wechat.EventSubscribe:
		o.Subscription, o.SubscribeTime = models.Subscribed, at
	case wechat.EventUnsubscribe:
		o.Subscription, o.SubscribeScene, o.UnionID, o.NoUnionIDReason = models.Unsubscribed, "", "", ""
	case wechat.EventScan:
		// A scan comes from a follower; user/info says since when.
		if info != nil && info.Subscribe == 1 {
			o.Subscription = models.Subscribed
			if info.SubscribeTime > 0 {
				o.SubscribeTime = time.Unix(info.SubscribeTime, 0).UTC()
			}
		}
		if info == nil || info.SubscribeScene == "" {
			o.SubscribeScene = ""
		}
	}
	return o
}

// userInfoParallel bounds concurrent user/info/batchget calls per batch.
const userInfoParallel = 4

// userInfos asks WeChat (user/info/batchget, 100 at a time) about the people
// who followed or scanned, on apps bound to an open-platform account: that
// is where their UnionID comes from. Failures are logged and leave the
// events without a UnionID; the next follower sync or event brings it.
func (c *Callbacks) userInfos(ctx context.Context, apps map[int64]*models.App, evs []models.CallbackEvent) map[int64]map[string]*wechat.UserInfo {
	out := map[int64]map[string]*wechat.UserInfo{}
	if c.wx == nil {
		return out
	}
	wanted := map[int64][]string{}
	seen := map[int64]map[string]bool{}
	for _, e := range evs {
		a := apps[e.AppID]
		if a == nil || a.OpenAccountID == nil || !a.IsBound() || e.Event == wechat.EventUnsubscribe {
			continue
		}
		if seen[e.AppID] == nil {
			seen[e.AppID] = map[string]bool{}
		}
		if !seen[e.AppID][e.OpenID] {
			seen[e.AppID][e.OpenID] = true
			wanted[e.AppID] = append(wanted[e.AppID], e.OpenID)
		}
	}
	type call struct {
		appID int64
		app   wechat.App
		ids   []string
	}
	var calls []call
	appIDs := make([]int64, 0, len(wanted))
	for id := range wanted {
		appIDs = append(appIDs, id)
	}
	sort.Slice(appIDs, func(i, j int) bool { return appIDs[i] < appIDs[j] })
	for _, id := range appIDs {
		creds, err := CredentialsOf(c.sealer, apps[id])
		if err != nil {
			c.log.Warn("ingest: app credentials do not open", "app_id", id, "err", err)
			continue
		}
		ids := wanted[id]
		for start := 0; start < len(ids); start += wechat.MaxBatchGet {
			calls = append(calls, call{appID: id, app: creds, ids: ids[start:min(start+wechat.MaxBatchGet, len(ids))]})
		}
		out[id] = map[string]*wechat.UserInfo{}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, userInfoParallel)
	for _, cl := range calls {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			list, err := c.wx.UserInfoBatch(ctx, cl.app, cl.ids, "zh_CN")
			if err != nil {
				c.log.Warn("ingest: user/info for callback events", "app_id", cl.appID, "openids", len(cl.ids), "errcode", wechat.Code(err), "err", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for i := range list {
				u := list[i]
				out[cl.appID][u.OpenID] = &u
			}
		}()
	}
	wg.Wait()
	return out
}

// CredentialsOf is how OneID calls WeChat for an app: through the
// third-party platform when the app authorized it, else with its AppSecret.
func CredentialsOf(sealer *models.Sealer, a *models.App) (wechat.App, error) {
	if a.BindingMode == models.ModeAuthorized {
		return wechat.App{AppID: a.AppID, Authorized: true}, nil
	}
	secret, err := models.OpenAppSecret(sealer, a, models.ColAppSecret)
	if err != nil {
		return wechat.App{}, err
	}
	if secret == "" {
		return wechat.App{}, fmt.Errorf("ingest: app %s has no AppSecret", a.AppID)
	}
	return wechat.App{AppID: a.AppID, Secret: secret}, nil
}
