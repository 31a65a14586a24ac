package faults_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"oneid/app/wechat/wechattest"
	"oneid/models"
)

// result is one request of the steady load.
type result struct {
	at     time.Time
	took   time.Duration
	path   string
	status int // 0: transport error
	dbPage bool
	err    string
}

// load is a few signed-in browsers requesting pages in a loop.
type load struct {
	mu      sync.Mutex
	results []result
	stop    chan struct{}
	wg      sync.WaitGroup
	clients []*http.Client
}

// dbPageMarks are the database-unavailable page's title in both languages.
var dbPageMarks = []string{"The database is unavailable", "数据库暂时不可用"}

func startLoad(t *testing.T, base string, ws *workspace, workers int, paths []string) *load {
	t.Helper()
	l := &load{stop: make(chan struct{})}
	for i := range workers {
		br := newBrowser(t, base)
		signIn(t, br, ws)
		c := br.c
		c.Timeout = 30 * time.Second
		l.clients = append(l.clients, c)
		l.wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-l.stop:
					return
				default:
				}
				path := paths[(i+k)%len(paths)]
				start := time.Now()
				r := result{at: start, path: path}
				res, err := c.Get(base + path)
				if err != nil {
					r.err = err.Error()
				} else {
					var body bytes.Buffer
					_, _ = body.ReadFrom(res.Body)
					res.Body.Close()
					r.status = res.StatusCode
					for _, m := range dbPageMarks {
						if strings.Contains(body.String(), m) {
							r.dbPage = true
						}
					}
				}
				r.took = time.Since(start)
				l.mu.Lock()
				l.results = append(l.results, r)
				l.mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	return l
}

func (l *load) halt() []result {
	close(l.stop)
	l.wg.Wait()
	for _, c := range l.clients {
		c.CloseIdleConnections()
	}
	return l.results
}

func (l *load) since(t time.Time) []result {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []result
	for _, r := range l.results {
		if !r.at.Before(t) {
			out = append(out, r)
		}
	}
	return out
}

// settledGoroutines waits up to d for the goroutine count to fall to at most
// want, and returns the last count.
func settledGoroutines(want int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		runtime.GC()
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// MySQL stopped and started under steady load, OneID running on: while the
// database is gone /readyz answers 503 and every page answers at once with
// the database-unavailable page (no hang, no 500), the background loops
// (callback worker, job runner, sync scheduler, export sweeper) neither
// crash nor spin, and within seconds of the database coming back every
// page, a push and a background export work again — without restarting
// OneID and without a goroutine left behind.
func TestDatabaseStoppedAndStartedUnderLoad(t *testing.T) {
	t.Parallel()
	my := startMariaDB(t)
	dbURL := my.createDatabase("oneid_faults")
	sim := wechattest.Start(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	p := startInProcess(t, dbURL, sim, key, map[string]string{"ONEID_EXPORT_STREAM_MAX": "10"})
	w := &world{t: t, db: p.db, url: dbURL, sim: sim, key: key}

	br := newBrowser(t, p.base)
	ws := signUp(t, w, br, "Fault Outage")
	info, app := bindApp(t, w, br, ws, "停机服务号", 200)
	if _, err := models.Seed(context.Background(), p.db, ws.id, models.SeedOptions{Customers: 2000, Seed: 8}); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetCallback(info.AppID, wechattest.Callback{URL: p.base + "/wechat/callback/" + app.CallbackKey,
		Token: "faulttoken", AESKey: aesKey}); err != nil {
		t.Fatal(err)
	}
	var c models.Customer
	if err := p.db.Scopes(models.ForTenant(ws.id)).Order("id").First(&c).Error; err != nil {
		t.Fatal(err)
	}
	paths := []string{ws.path("customers"), ws.path("customers/" + strconv.FormatInt(c.ID, 10)), ws.path("apps"),
		ws.path("customers?sub=yes"), "/readyz"}
	workers := pick(4, 8)
	// A first round warms every pool; the goroutines are counted after it.
	warm := startLoad(t, p.base, ws, workers, paths)
	time.Sleep(time.Second)
	for _, r := range warm.halt() {
		if r.status != http.StatusOK {
			t.Fatalf("before the fault: %s answered %d %s", r.path, r.status, r.err)
		}
	}
	p.dropIdle()
	time.Sleep(500 * time.Millisecond)
	before := settledGoroutines(0, time.Second)

	rounds := []syscall.Signal{syscall.SIGKILL}
	if long() {
		rounds = []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM, syscall.SIGKILL}
	}
	down := pick(3*time.Second, 15*time.Second)
	l := startLoad(t, p.base, ws, workers, paths)
	time.Sleep(time.Second)
	var worst time.Duration
	for round, sig := range rounds {
		// Down.
		killedAt := time.Now()
		my.stop(sig)
		stoppedAt := time.Now()
		logMark := len(p.log.lines())
		time.Sleep(down)
		// /readyz says so, at once.
		start := time.Now()
		status, body := get(p.base + "/readyz")
		if status != http.StatusServiceUnavailable || time.Since(start) > 1500*time.Millisecond {
			t.Fatalf("round %d: /readyz with the database down: %d %q after %v", round, status, body, time.Since(start))
		}
		// Every page answered fast with the database-unavailable page.
		window := l.since(stoppedAt.Add(200 * time.Millisecond))
		if len(window) < workers {
			t.Fatalf("round %d: only %d requests while the database was down", round, len(window))
		}
		for _, r := range window {
			if r.status != http.StatusServiceUnavailable || (r.path != "/readyz" && !r.dbPage) {
				t.Fatalf("round %d, database down: %s answered %d (database page %v) %s", round, r.path, r.status, r.dbPage, r.err)
			}
		}
		// The background loops: no crash (we are still here), no spinning.
		var background int
		for _, line := range p.log.lines()[logMark:] {
			if msg, _ := line["msg"].(string); msg != "request" && !strings.HasPrefix(msg, "request failed") {
				background++
			}
		}
		rate := float64(background) / down.Seconds()
		if rate > 10 {
			t.Fatalf("round %d: the background loops logged %d lines in %v: spinning?\n%s", round, background, down, tail(p.log.String(), 3000))
		}
		// Up again: service returns within seconds, OneID untouched.
		restartedIn := my.start()
		upAt := time.Now()
		var readyIn time.Duration
		waitFor(t, "/readyz after the restart", 15*time.Second, func() bool {
			s, _ := get(p.base + "/readyz")
			readyIn = time.Since(upAt)
			return s == http.StatusOK
		})
		// Every browser gets its pages again.
		var servedIn time.Duration
		waitFor(t, "every page after the restart", 15*time.Second, func() bool {
			after := l.since(time.Now().Add(-500 * time.Millisecond))
			ok := len(after) >= workers
			for _, r := range after {
				ok = ok && r.status == http.StatusOK
			}
			servedIn = time.Since(upAt)
			return ok
		})
		n := len(window)
		slowest := time.Duration(0)
		for _, r := range window {
			slowest = max(slowest, r.took)
		}
		worst = max(worst, slowest)
		t.Logf("round %d (%v): down %v, %d requests meanwhile, all 503 with the database page, slowest %v; background log %.1f lines/s; mariadbd back in %v, /readyz 200 after %v, all pages 200 after %v",
			round, sig, stoppedAt.Sub(killedAt).Round(time.Millisecond)+down, n, slowest.Round(time.Millisecond), rate,
			restartedIn.Round(time.Millisecond), readyIn.Round(time.Millisecond), servedIn.Round(time.Millisecond))
		time.Sleep(time.Second)
	}
	results := l.halt()
	var statuses = map[int]int{}
	for _, r := range results {
		statuses[r.status]++
		worst = max(worst, r.took)
		if r.status != http.StatusOK && r.status != http.StatusServiceUnavailable {
			t.Errorf("%s answered %d %s", r.path, r.status, r.err)
		}
	}
	if worst > 3*time.Second {
		t.Errorf("the slowest request took %v", worst)
	}
	t.Logf("%d requests: %v; slowest %v", len(results), statuses, worst.Round(time.Millisecond))

	// The callback worker and the job runner work again.
	person := sim.AddPerson()
	if d, err := sim.Follow(info.AppID, person, ""); err != nil || !d.OK {
		t.Fatalf("a push after the restarts: %+v %v", d, err)
	}
	openID := sim.OpenID(info.AppID, person)
	waitFor(t, "the push resolved", 20*time.Second, func() bool {
		return w.count(&models.Identity{}, ws.id, "openid = ? AND unionid IS NOT NULL", openID) == 1
	})
	br.mustGet(ws.path("customers/export"))
	br.post(ws.path("customers/export"), url.Values{"shape": {models.ExportProfiles}}).redirected(t, "an export after the restarts")
	exports, err := models.ListExports(p.db, ws.id, 0, 1)
	if err != nil || len(exports.Exports) != 1 || exports.Exports[0].JobID == nil {
		t.Fatalf("%+v %v", exports, err)
	}
	j := w.waitJob(ws.id, *exports.Exports[0].JobID, "the export after the restarts", time.Minute, func(j *models.Job) bool { return !j.Live() })
	if j.State != models.JobSucceeded {
		t.Fatalf("the export after the restarts: %s %s", j.State, j.Error)
	}

	// No goroutine left behind.
	p.dropIdle()
	after := settledGoroutines(before+5, 15*time.Second)
	if after > before+5 {
		var dump bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&dump, 1)
		t.Fatalf("%d goroutines before the faults, %d after\n%s", before, after, tail(dump.String(), 8000))
	}
	t.Logf("goroutines: %d before the faults, %d after", before, after)
}
