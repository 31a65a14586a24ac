package wechattest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"oneid/app/wechat"
)

// BenchResult is what BenchSync measured.
type BenchResult struct {
	Followers       int
	WithUnionID     int
	Elapsed         time.Duration
	FollowersPerSec float64
}

// BenchSync starts a simulator with one official account of n followers
// (bound to an open account), then pages cgi-bin/user/get and fetches every
// follower through user/info/batchget with the real client, workers batches at
// a time, as a full sync does. Its last line of output is
// `bench-wxsim followers=N followers_per_s=X`.
func BenchSync(ctx context.Context, n, workers int, stdout io.Writer) (BenchResult, error) {
	if workers <= 0 {
		workers = 4
	}
	s, err := New()
	if err != nil {
		return BenchResult{}, err
	}
	defer s.Close()
	open := s.AddOpenAccount(OpenAccountSpec{Name: "bench-open", Principal: "模拟科技（深圳）有限公司", Verified: true})
	a, err := s.AddApp(AppSpec{Name: "bench", Principal: "模拟科技（深圳）有限公司", OpenAppID: open, Followers: n})
	if err != nil {
		return BenchResult{}, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = workers + 2
	c := wechat.New(wechat.Config{APIBase: s.URL(), HTTPClient: &http.Client{Transport: loopbackTransport{base: tr}}, Tokens: wechat.NewMemoryStore()})
	app := wechat.App{AppID: a.AppID, Secret: a.Secret}

	batches := make(chan []string, workers*4)
	var got, unioned atomic.Int64
	var firstErr error
	var errOnce sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				users, err := c.UserInfoBatch(ctx, app, b, "zh_CN")
				if err != nil {
					fail(err)
					continue
				}
				got.Add(int64(len(users)))
				for i := range users {
					if users[i].UnionID != "" {
						unioned.Add(1)
					}
				}
			}
		}()
	}
	start := time.Now()
	next := ""
	listed := 0
	for ctx.Err() == nil {
		page, err := c.UserList(ctx, app, next)
		if err != nil {
			fail(err)
			break
		}
		ids := page.Data.OpenIDs
		listed += len(ids)
		for i := 0; i < len(ids); i += wechat.MaxBatchGet {
			select {
			case batches <- ids[i:min(i+wechat.MaxBatchGet, len(ids))]:
			case <-ctx.Done():
			}
		}
		if page.Done() {
			break
		}
		next = page.NextOpenID
	}
	close(batches)
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return BenchResult{}, fmt.Errorf("wxsim bench: %w", firstErr)
	}
	if listed != n || int(got.Load()) != n {
		return BenchResult{}, fmt.Errorf("wxsim bench: listed %d and fetched %d of %d followers", listed, got.Load(), n)
	}
	r := BenchResult{Followers: n, WithUnionID: int(unioned.Load()), Elapsed: elapsed, FollowersPerSec: float64(n) / elapsed.Seconds()}
	fmt.Fprintf(stdout, "paged %d followers (%d with unionid) in %s with %d workers\n", n, r.WithUnionID, elapsed.Round(time.Millisecond), workers)
	fmt.Fprintf(stdout, "bench-wxsim followers=%d followers_per_s=%.0f\n", n, r.FollowersPerSec)
	return r, nil
}
