package ingest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"oneid/app/config"
	"oneid/app/web"
	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// The callback target (PRODUCT.md): ≥ 2,000 events/s, acknowledgement p99
// < 50 ms. This load program runs the real HTTP application on loopback
// against MySQL, with the worker resolving events (user/info from the
// simulator) while pushes arrive, and drives it with WeChat-shaped pushes:
// signed, AES-encrypted subscribe/unsubscribe events of the simulator's
// followers, each sent over keep-alive connections, a tenth of them retried.
//
//	ONEID_LOAD=1 go test ./app/ingest -run TestCallbackLoad -v -timeout 10m
//
// Knobs: ONEID_LOAD_EVENTS (default 40000), ONEID_LOAD_RATE (events/s of the
// paced phase, default 2000), ONEID_LOAD_CLIENTS (default 64).
// It prints one line per phase:
//
//	callback-load phase=paced rate=2000 events=… acks_per_s=… p50_ms=… p99_ms=… max_ms=… errors=0
//	callback-load phase=flood clients=64 events=… acks_per_s=… p50_ms=… p99_ms=…
//	callback-load phase=resolve events=… resolved_per_s=… backlog_drained_s=…
func TestCallbackLoad(t *testing.T) {
	if os.Getenv("ONEID_LOAD") == "" {
		t.Skip("set ONEID_LOAD=1 to run the callback load program")
	}
	events := envInt("ONEID_LOAD_EVENTS", 40000)
	rate := envInt("ONEID_LOAD_RATE", 2000)
	clients := envInt("ONEID_LOAD_CLIENTS", 64)

	db := dbtest.MySQL(t)
	sim := wechattest.Start(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, _ := models.NewSealer(key)
	tenant, _, err := models.CreateTenant(db, models.NewTenant{Name: "Load Co", PrincipalName: "压测科技（深圳）有限公司",
		Admin: models.User{Email: "load-admin@example.com", Name: "Admin", PasswordHash: "x", Locale: "en"}})
	if err != nil {
		t.Fatal(err)
	}
	openAppID := sim.AddOpenAccount(wechattest.OpenAccountSpec{Name: "load", Principal: "压测科技（深圳）有限公司", Verified: true})
	open := models.OpenAccount{OpenAppID: openAppID, PrincipalName: "压测科技（深圳）有限公司", Verified: true, CreatedVia: models.OpenViaDeclared}
	if err := models.CreateOpenAccount(db, tenant.ID, &open); err != nil {
		t.Fatal(err)
	}

	// Four official accounts with followers enough for every event.
	const apps = 4
	const token = "loadtoken"
	type loadApp struct {
		info wechattest.AppInfo
		key  string
		cr   *wechat.Crypter
	}
	var las []loadApp
	for i := 0; i < apps; i++ {
		info := sim.MustAddApp(wechattest.AppSpec{Name: fmt.Sprintf("load-oa-%d", i), Principal: "压测科技（深圳）有限公司",
			OpenAppID: openAppID, Followers: events})
		a := &models.App{AppID: info.AppID, Kind: models.KindService, Name: info.Name, PrincipalName: info.Principal,
			Declared: true, BindingMode: models.ModeSelfManaged, OpenAccountID: &open.ID, GhID: info.UserName}
		a.SecretSealed, _ = models.SealAppSecret(sealer, tenant.ID, info.AppID, models.ColAppSecret, info.Secret)
		a.CallbackTokenSealed, _ = models.SealAppSecret(sealer, tenant.ID, info.AppID, models.ColCallbackToken, token)
		a.AESKeySealed, _ = models.SealAppSecret(sealer, tenant.ID, info.AppID, models.ColAESKey, ingestLoadAESKey)
		if err := models.BindApp(db, tenant.ID, a); err != nil {
			t.Fatal(err)
		}
		cr, err := wechat.NewCrypter(ingestLoadAESKey, info.AppID)
		if err != nil {
			t.Fatal(err)
		}
		las = append(las, loadApp{info: info, key: a.CallbackKey, cr: cr})
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	wx := wechat.New(sim.Config(wechattest.LoopbackOnly(t), models.NewWechatTokenStore(db, sealer)))
	deps := web.Deps{Config: config.Config{PublicURL: base, Addr: ln.Addr().String()}, DB: db, Log: log, Sealer: sealer, WeChat: wx}
	deps.Callbacks = web.NewCallbacks(deps)
	app, err := web.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	ctx, stop := context.WithCancel(context.Background())
	workerDone := make(chan struct{})
	go func() { defer close(workerDone); _ = deps.Callbacks.Run(ctx) }()
	t.Cleanup(func() { _ = app.Shutdown(); deps.Callbacks.Close(); stop(); <-workerDone })

	// Every push prepared up front, so the clock measures OneID, not the
	// client's AES. Follower k of each app follows (half of them later
	// unfollow); one push in ten is sent twice, as WeChat's retry.
	type push struct {
		target string
		body   []byte
		dedup  string
	}
	now := time.Now().Unix()
	prepare := func(first, n int) []push {
		out := make([]push, 0, n+n/10)
		for i := 0; i < n; i++ {
			k := first + i
			la := las[k%apps]
			// Round m of app k%apps: even rounds bring follower m, odd
			// rounds see follower m-1 leave a second later.
			m := k / apps
			created := now + int64(k/1000)*2
			ev := wechat.Event{ToUserName: la.info.UserName, MsgType: "event", Event: wechat.EventSubscribe}
			if m%2 == 1 {
				m, ev.Event, created = m-1, wechat.EventUnsubscribe, now+int64((k-apps)/1000)*2+1
			}
			ev.FromUserName, ev.CreateTime = sim.OpenID(la.info.AppID, sim.Follower(la.info.AppID, m)), created
			ts, nonce := strconv.FormatInt(now, 10), strconv.Itoa(k)
			body, msgSig, err := wechat.SealPush(token, la.cr, la.info.UserName, ts, nonce, ev.XML())
			if err != nil {
				t.Fatal(err)
			}
			q := url.Values{"signature": {wechat.Signature(token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce},
				"openid": {ev.FromUserName}, "encrypt_type": {"aes"}, "msg_signature": {msgSig}}
			p2 := push{target: base + "/wechat/callback/" + la.key + "?" + q.Encode(), body: body,
				dedup: models.CallbackDedupKey(ev.FromUserName, ev.CreateTime, ev.Event)}
			out = append(out, p2)
			if k%10 == 0 {
				out = append(out, p2)
			}
		}
		return out
	}
	half := events / 2
	paced, flood := prepare(0, half), prepare(half, events-half)

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients * 2, MaxConnsPerHost: clients * 2,
		DisableCompression: true}, Timeout: 10 * time.Second}
	var outcomes sync.Map // dedup key → the last answer, to explain a missing event
	send := func(p push) (time.Duration, error) {
		start := time.Now()
		resp, err := hc.Post(p.target, "text/xml", bytes.NewReader(p.body))
		if err != nil {
			return 0, err
		}
		reply, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		outcomes.Store(p.dedup, fmt.Sprintf("%d %s", resp.StatusCode, reply))
		if resp.StatusCode != http.StatusOK || string(reply) != "success" {
			return took, fmt.Errorf("%d %q", resp.StatusCode, reply)
		}
		return took, nil
	}
	// Warm the connections and the app cache.
	for _, la := range las {
		ts, nonce := strconv.FormatInt(now, 10), "1"
		resp, err := hc.Get(base + "/wechat/callback/" + la.key + "?" + url.Values{"signature": {wechat.Signature(token, ts, nonce)},
			"timestamp": {ts}, "nonce": {nonce}, "echostr": {"x"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	// Phase 1: paced at the target rate (open loop: each push leaves on
	// schedule whatever the answers before it did).
	var lat []time.Duration
	var mu sync.Mutex
	var errs atomic.Int64
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	loadStart := start
	for i, p := range paced {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			took, err := send(p)
			if err != nil {
				errs.Add(1)
				return
			}
			mu.Lock()
			lat = append(lat, took)
			mu.Unlock()
		}()
	}
	wg.Wait()
	pacedTook := time.Since(start)
	report(t, fmt.Sprintf("phase=paced rate=%d", rate), lat, pacedTook, errs.Load())

	// Phase 2: flood, closed loop, as fast as clients go.
	lat, errs = lat[:0], atomic.Int64{}
	var next atomic.Int64
	start = time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				i := int(next.Add(1)) - 1
				if i >= len(flood) {
					break
				}
				took, err := send(flood[i])
				if err != nil {
					errs.Add(1)
					continue
				}
				mine = append(mine, took)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	floodTook := time.Since(start)
	report(t, fmt.Sprintf("phase=flood clients=%d", clients), lat, floodTook, errs.Load())

	// Phase 3: the worker drains what is left.
	backlog, _ := models.CallbackBacklog(db)
	drain := time.Now()
	for {
		n, err := models.CallbackBacklog(db)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Since(drain) > 5*time.Minute {
			t.Fatalf("backlog of %d after 5 min", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var stored, identities int64
	models.CrossTenant(db, "load test").Model(&models.CallbackEvent{}).Count(&stored)
	db.Model(&models.Identity{}).Scopes(models.ForTenant(tenant.ID)).Count(&identities)
	drained := time.Since(drain)
	fmt.Printf("callback-load phase=resolve events=%d backlog_after_flood=%d drained_s=%.2f drain_per_s=%.0f all_resolved_after_s=%.2f identities=%d\n",
		stored, backlog, drained.Seconds(), float64(backlog)/drained.Seconds(), time.Since(loadStart).Seconds(), identities)
	if stored != int64(events) {
		t.Errorf("%d events stored for %d distinct pushes", stored, events)
		var keys []string
		models.CrossTenant(db, "load test").Model(&models.CallbackEvent{}).Pluck("dedup_key", &keys)
		have := map[string]bool{}
		for _, k := range keys {
			have[k] = true
		}
		want := map[string]int{}
		for _, p := range append(paced, flood...) {
			want[p.dedup]++
		}
		n := 0
		for k := range want {
			if !have[k] && n < 5 {
				o, _ := outcomes.Load(k)
				t.Logf("missing %s (answered %v)", k, o)
				n++
			}
		}
	}
}

const ingestLoadAESKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

func report(t *testing.T, phase string, lat []time.Duration, took time.Duration, errs int64) {
	t.Helper()
	if len(lat) == 0 {
		t.Fatalf("%s: no answers (%d errors)", phase, errs)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	fmt.Printf("callback-load %s events=%d acks_per_s=%.0f p50_ms=%.1f p99_ms=%.1f max_ms=%.1f errors=%d\n",
		phase, len(lat), float64(len(lat))/took.Seconds(), pct(0.50), pct(0.99), pct(1), errs)
	if errs > 0 {
		t.Errorf("%s: %d pushes not acknowledged", phase, errs)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
