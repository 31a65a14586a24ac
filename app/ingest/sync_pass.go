package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"oneid/app/jobs"
	"oneid/app/wechat"
	"oneid/models"
)

// syncPass is one run of a sync job over the follower list, from its
// checkpoint to the last page.
type syncPass struct {
	s     *Syncer
	j     *jobs.Job
	app   *models.App
	creds wechat.App
	pass  int64
	log   *slog.Logger

	// Where the time goes, for the log at the end of a run: writers busy in
	// page transactions, writers waiting for a page, the lister waiting for
	// room in the pipeline.
	writing, writerIdle, listerBlocked atomic.Int64 // nanoseconds
}

// syncPageWork is a page of the list on its way through the pipeline.
type syncPageWork struct {
	from, to string
	last     bool
	ids      []string
	listedAt time.Time
	infos    [][]wechat.UserInfo // per batch of wechat.MaxBatchGet ids
	pending  atomic.Int32        // batches not fetched yet
}

type syncBatch struct {
	page *syncPageWork
	i    int // batch index in the page
}

func (p *syncPass) run(jobCtx context.Context, cp *syncCheckpoint) error {
	cfg := p.s.cfg
	// ctx stops listing and fetching at the first error; the writers run on
	// the job's own context, so pages fetched in full are still committed
	// when WeChat's quota runs out on a later one.
	g, ctx := errgroup.WithContext(jobCtx)
	slots := make(chan struct{}, cfg.PagesAhead) // pages listed and not yet committed
	batches := make(chan syncBatch, cfg.Fetchers*2)
	ready := make(chan *syncPageWork, cfg.PagesAhead)

	var fetchers sync.WaitGroup
	g.Go(func() error {
		defer close(batches)
		return p.list(ctx, cp, slots, batches, ready)
	})
	for range cfg.Fetchers {
		fetchers.Add(1)
		g.Go(func() error {
			defer fetchers.Done()
			for b := range batches {
				if err := p.fetch(ctx, b); err != nil {
					return err
				}
				if b.page.pending.Add(-1) == 0 {
					select {
					case ready <- b.page:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		fetchers.Wait()
		close(ready)
		return nil
	})
	for range cfg.Writers {
		g.Go(func() error {
			for {
				waited := time.Now()
				page, ok := <-ready
				p.writerIdle.Add(int64(time.Since(waited)))
				if !ok {
					return nil
				}
				began := time.Now()
				if err := p.write(jobCtx, page); err != nil {
					return err
				}
				p.writing.Add(int64(time.Since(began)))
				<-slots
			}
		})
	}
	start := time.Now()
	err := g.Wait()
	p.log.Info("ingest: sync run", "seconds", time.Since(start).Seconds(), "writers", cfg.Writers, "fetchers", cfg.Fetchers,
		"writing_s", time.Duration(p.writing.Load()).Seconds(), "writers_idle_s", time.Duration(p.writerIdle.Load()).Seconds(),
		"lister_blocked_s", time.Duration(p.listerBlocked.Load()).Seconds(), "err", err)
	return err
}

// list pages user/get from the checkpoint's cursor, stepping over pages
// committed already, and hands each page's batches to the fetchers. An empty
// page goes straight to the writers.
func (p *syncPass) list(ctx context.Context, cp *syncCheckpoint, slots chan struct{}, batches chan<- syncBatch, ready chan<- *syncPageWork) error {
	cursor := cp.Cursor
	for {
		if done, ok := cp.skip(cursor); ok {
			if done.Last {
				return nil
			}
			cursor = done.To
			continue
		}
		blocked := time.Now()
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.listerBlocked.Add(int64(time.Since(blocked)))
		list, err := p.s.wx.UserList(ctx, p.creds, cursor)
		if err != nil {
			return p.s.wechatJobError(ctx, p.app.AppID, err)
		}
		p.j.SetTotal(int64(list.Total))
		ids := list.Data.OpenIDs
		last := list.Done()
		if !last && (list.NextOpenID == cursor || len(ids) == 0) {
			return fmt.Errorf("ingest: user/get after %q answered %d ids and next_openid %q: the list does not move on", cursor, len(ids), list.NextOpenID)
		}
		page := &syncPageWork{from: cursor, to: list.NextOpenID, last: last, ids: ids, listedAt: p.s.now()}
		n := (len(ids) + wechat.MaxBatchGet - 1) / wechat.MaxBatchGet
		page.infos = make([][]wechat.UserInfo, n)
		page.pending.Store(int32(n))
		if n == 0 {
			select {
			case ready <- page:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		for i := range n {
			select {
			case batches <- syncBatch{page: page, i: i}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if last {
			return nil
		}
		cursor = list.NextOpenID
	}
}

// fetch asks batchget for one batch of a page. One openid WeChat calls
// invalid (40003) fails the whole batch: then each is asked alone and the
// invalid ones are left out.
func (p *syncPass) fetch(ctx context.Context, b syncBatch) error {
	ids := b.page.ids[b.i*wechat.MaxBatchGet : min((b.i+1)*wechat.MaxBatchGet, len(b.page.ids))]
	infos, err := p.s.wx.UserInfoBatch(ctx, p.creds, ids, "zh_CN")
	if wechat.IsCode(err, wechat.CodeInvalidOpenID) {
		infos, err = p.fetchOneByOne(ctx, ids)
	}
	if err != nil {
		return p.s.wechatJobError(ctx, p.app.AppID, err)
	}
	b.page.infos[b.i] = infos
	return nil
}

func (p *syncPass) fetchOneByOne(ctx context.Context, ids []string) ([]wechat.UserInfo, error) {
	out := make([]wechat.UserInfo, 0, len(ids))
	for _, id := range ids {
		info, err := p.s.wx.UserInfo(ctx, p.creds, id, "zh_CN")
		if wechat.IsCode(err, wechat.CodeInvalidOpenID) {
			p.log.Warn("ingest: sync: WeChat calls a listed openid invalid; left out")
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *info)
	}
	return out, nil
}

// write resolves a page and commits it with the checkpoint that records it,
// in one transaction.
func (p *syncPass) write(ctx context.Context, w *syncPageWork) error {
	obs := p.observations(w)
	page := syncPage{From: w.from, To: w.to, Listed: int64(len(obs)), Last: w.last}
	db := p.s.db.WithContext(ctx)
	err := models.RetryTx(ctx, db, func(tx *gorm.DB) error {
		page.Subscribed, page.Rejected = 0, 0
		if len(obs) > 0 {
			res, err := models.Resolve(tx, p.j.TenantID, obs)
			if err != nil {
				return err
			}
			for i, o := range res.Outcomes {
				switch {
				case o.Change == models.Rejected:
					page.Rejected++
				case obs[i].Subscription == models.Subscribed:
					page.Subscribed++
				}
			}
		}
		return p.j.CommitWith(tx, func(cur string) (string, int64, error) {
			cp, err := parseSyncCheckpoint(cur)
			if err != nil {
				return "", 0, err
			}
			if err := cp.add(page); err != nil {
				return "", 0, err
			}
			return cp.String(), page.Listed, nil
		})
	}, readCommitted(db)...)
	if err != nil {
		return fmt.Errorf("ingest: sync page of %d after %q: %w", len(obs), w.from, err)
	}
	if page.Rejected > 0 {
		p.log.Warn("ingest: sync: resolution refused followers", "refused", page.Rejected)
	}
	return nil
}

// observations turns a page's batchget answers into observations, in the
// list's order. A listed follower missing from the answers is still observed
// as a follower: user/get said so.
func (p *syncPass) observations(w *syncPageWork) []models.Observation {
	obs := make([]models.Observation, 0, len(w.ids))
	for bi, infos := range w.infos {
		ids := w.ids[bi*wechat.MaxBatchGet : min((bi+1)*wechat.MaxBatchGet, len(w.ids))]
		inOrder := len(infos) == len(ids)
		for k := 0; inOrder && k < len(ids); k++ {
			inOrder = infos[k].OpenID == ids[k]
		}
		if inOrder {
			for k := range infos {
				obs = append(obs, p.observation(&infos[k], w.listedAt))
			}
			continue
		}
		byID := make(map[string]*wechat.UserInfo, len(infos))
		for k := range infos {
			byID[infos[k].OpenID] = &infos[k]
		}
		for _, id := range ids {
			info := byID[id]
			if info == nil {
				info = &wechat.UserInfo{OpenID: id, Subscribe: 1}
			}
			obs = append(obs, p.observation(info, w.listedAt))
		}
	}
	return obs
}

// observation is what one user/info record says. A follower (subscribe=1)
// brings the subscription and, for an app in an open-platform account, the
// unionid; someone who left between user/get and batchget (subscribe=0) is
// observed as unsubscribed, without a unionid because WeChat gives none.
func (p *syncPass) observation(u *wechat.UserInfo, at time.Time) models.Observation {
	o := models.Observation{AppID: p.app.ID, OpenID: u.OpenID, Source: models.SourceSync, At: at, SyncPass: p.pass}
	if u.Subscribe == 1 {
		o.Subscription = models.Subscribed
		if u.SubscribeTime > 0 {
			o.SubscribeTime = time.Unix(u.SubscribeTime, 0).UTC()
		}
		o.SubscribeScene = u.SubscribeScene
		o.UnionID = u.UnionID
	} else {
		o.Subscription = models.Unsubscribed
		o.NoUnionIDReason = models.UnlinkedNotFollower
	}
	return o
}
