// Command bench measures OneID against targets of PRODUCT.md. `bench browse`
// (make bench-browse) boots the real HTTP application on loopback against
// MySQL, in a database of its own seeded once with a large tenant, signs 16
// browsers in and measures the customer list, the profile page and the
// dashboard. Its last line is
//
//	bench-browse customers=N list_p50_ms=A list_p99_ms=B profile_p99_ms=C dashboard_ms=D
//
// `bench load` (make load, load.go) drives mixed portal traffic at a fixed
// rate at a real oneid process on the same database and tenant.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"gorm.io/gorm"

	"oneid/app/bench/benchkit"
	"oneid/app/config"
	"oneid/app/web"
	"oneid/models"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	if len(args) > 0 && args[0] == "load" {
		return runLoad(ctx, args[1:], getenv, out)
	}
	if len(args) == 0 || args[0] != "browse" {
		fmt.Fprintln(out, "Usage: go run ./app/bench browse [--customers N] [--clients 16] [--duration 20s]")
		fmt.Fprintln(out, "       go run ./app/bench load [--rate 200] [--seconds 60] [--customers N] [--sessions 8]")
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("browse", flag.ContinueOnError)
	fs.SetOutput(out)
	n := fs.Int("customers", 1000000, "customers in the benchmark tenant (seeded once, then reused)")
	clients := fs.Int("clients", 16, "concurrent signed-in browsers")
	duration := fs.Duration("duration", 20*time.Second, "how long the list is driven")
	profiles := fs.Int("profiles", 4000, "profile pages requested")
	server := fs.String("mysql", "", "MySQL server URL without a database (default $ONEID_BENCH_MYSQL_URL or mysql://root@127.0.0.1:3306/)")
	dbName := fs.String("database", "oneid_bench_browse", "the benchmark's own database (created if missing)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run (server and clients) to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the run (server and clients) to this file")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *memProfile != "" {
		defer func() {
			if f, err := os.Create(*memProfile); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	stopProfile, err := benchkit.StartCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	b := &bench{out: out, n: *n}
	if err := b.openDatabase(ctx, benchkit.MySQLServer(*server, getenv), *dbName); err != nil {
		return err
	}
	if err := b.ensureTenant(ctx); err != nil {
		return err
	}
	if err := b.startServer(); err != nil {
		return err
	}
	defer b.app.Shutdown()
	return b.measure(ctx, *clients, *duration, *profiles)
}

type bench struct {
	out      io.Writer
	n        int
	keepPool bool // leave innodb_buffer_pool_size as it is
	db       *gorm.DB
	tenant   *models.Tenant
	base     string
	app      interface{ Shutdown() error }
}

const (
	benchSlug     = "bench-browse"
	benchEmail    = "bench-marketer@example.com"
	benchPassword = "bench password 1"
)

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.out, format+"\n", args...)
}

func (b *bench) openDatabase(ctx context.Context, server, name string) error {
	var err error
	b.db, err = benchkit.OpenDatabase(ctx, server, name, !b.keepPool, b.logf)
	return err
}

// ensureTenant finds or makes the benchmark tenant with a marketer to sign in
// as, and seeds it up to n customers.
func (b *bench) ensureTenant(ctx context.Context) error {
	tenant, err := benchkit.EnsureTenant(ctx, b.db, benchkit.Tenant{Slug: benchSlug, Name: "Bench Browse",
		AdminEmail: "bench-admin@example.com", Email: benchEmail, Password: benchPassword})
	if err != nil {
		return err
	}
	b.tenant = tenant
	seeded, err := benchkit.SeedCustomers(ctx, b.db, tenant, b.n, benchSlug, b.logf)
	if err != nil {
		return err
	}
	db := b.db.WithContext(ctx)
	if !seeded {
		// The dashboard's figures (and the list's stats) are computed by the
		// seed; a database seeded by an older version may lack them.
		if stats, err := models.LoadListStats(db, tenant.ID); err != nil || stats == nil {
			start := time.Now()
			if _, err := models.RefreshDashboard(db, tenant.ID, time.Now().UTC()); err != nil {
				return err
			}
			b.logf("computed the dashboard's figures in %.1fs", time.Since(start).Seconds())
		}
		return nil
	}
	_, err = models.RefreshDashboard(db, tenant.ID, time.Now().UTC())
	return err
}

func (b *bench) startServer() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	b.base = "http://" + ln.Addr().String()
	app, err := web.New(web.Deps{
		Config: config.Config{PublicURL: b.base, Addr: ln.Addr().String()},
		DB:     b.db,
		Log:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	go func() { _ = app.Listener(ln) }()
	b.app = app
	return nil
}

// browser is one signed-in client with its own connection and cookies.
type browser struct {
	http *http.Client
	base string
	// buf takes the timed pages' bodies, reused: the clients share the
	// server's process, and garbage of theirs would be collected on its
	// time.
	buf bytes.Buffer
}

func (b *bench) signIn() (*browser, error) {
	jar, _ := cookiejar.New(nil)
	c := &browser{base: b.base, http: &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 2, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	if err := benchkit.SignIn(c.http, b.base, benchEmail, benchPassword); err != nil {
		return nil, err
	}
	return c, nil
}

// timed gets a page and says how long it took; anything but 200 is an error.
func (c *browser) timed(path string) (time.Duration, error) {
	start := time.Now()
	res, err := c.http.Get(c.base + path)
	if err != nil {
		return 0, err
	}
	c.buf.Reset()
	_, err = c.buf.ReadFrom(res.Body)
	res.Body.Close()
	took := time.Since(start)
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %d", path, res.StatusCode)
	}
	return took, err
}

// listFilters are typical views of the list: the default, other sorts, each
// kind of filter and a nickname prefix (bench browse and bench load).
func listFilters(apps []models.BrowseApp) ([]models.CustomerFilter, error) {
	if len(apps) < 3 {
		return nil, fmt.Errorf("the benchmark tenant has %d apps", len(apps))
	}
	now := time.Now()
	day := func(d int) string { return models.DayOf(now.AddDate(0, 0, -d)).String() }
	filters := []url.Values{
		{},
		{"sort": {"first_seen"}},
		{"sort": {"last_seen_asc"}},
		{"app": {strconv.FormatInt(apps[0].ID, 10)}},
		{"app": {strconv.FormatInt(apps[2].ID, 10)}, "sort": {"first_seen"}},
		{"kind": {models.KindMiniProgram}},
		{"sub": {"yes"}},
		{"sub": {"no"}, "kind": {models.KindSubscription}},
		{"linked": {"no"}},
		{"linked": {"yes"}, "app": {strconv.FormatInt(apps[1].ID, 10)}},
		{"source": {models.SourceOAuth}},
		{"last_from": {day(30)}},
		{"first_from": {day(90)}, "first_to": {day(30)}, "sort": {"first_seen"}},
		{"q": {"王"}},
		{"q": {"Lucky"}},
	}
	var out []models.CustomerFilter
	for _, v := range filters {
		f, problems := models.ParseCustomerFilter(v)
		if len(problems) > 0 {
			return nil, fmt.Errorf("bench filter %v: %v", v, problems)
		}
		out = append(out, f)
	}
	return out, nil
}

// listPaths are the typical views of the list and pages further in (by cursor).
func (b *bench) listPaths(ctx context.Context) ([]string, error) {
	db := b.db.WithContext(ctx)
	apps, err := models.BrowseApps(db, b.tenant.ID)
	if err != nil {
		return nil, err
	}
	filters, err := listFilters(apps)
	if err != nil {
		return nil, err
	}
	base := "/t/" + benchSlug + "/customers"
	var paths []string
	for _, f := range filters {
		paths = append(paths, base+"?"+f.Values().Encode())
		// Two pages in, and the way back.
		page, err := models.ListCustomers(db, b.tenant.ID, f, apps, models.ListOptions{Limit: 50})
		for i := 0; err == nil && page.Next != nil && i < 2; i++ {
			paths = append(paths, base+"?"+page.Next.Values().Encode())
			page, err = models.ListCustomers(db, b.tenant.ID, *page.Next, apps, models.ListOptions{Limit: 50})
		}
		if err != nil {
			return nil, err
		}
		if page.Prev != nil {
			paths = append(paths, base+"?"+page.Prev.Values().Encode())
		}
	}
	return paths, nil
}

func (b *bench) measure(ctx context.Context, clients int, duration time.Duration, profiles int) error {
	browsers := make([]*browser, clients)
	for i := range browsers {
		c, err := b.signIn()
		if err != nil {
			return err
		}
		browsers[i] = c
	}
	paths, err := b.listPaths(ctx)
	if err != nil {
		return err
	}
	b.logf("%d list views (%d filters with pages), %d browsers, load before: %s", len(paths), len(paths)/4, clients, benchkit.LoadAvg())

	// Warm up: the tenant's pages into MariaDB's buffer pool, then every
	// list view once.
	warm, err := benchkit.WarmTenant(ctx, b.db, b.tenant.ID, "customers", "identities", "customer_events")
	if err != nil {
		return err
	}
	b.logf("buffer pool warmed with the tenant's customers, identities and timelines in %.1fs", warm.Seconds())
	for _, p := range paths {
		if _, err := browsers[0].timed(p); err != nil {
			return err
		}
	}

	perView := make([][]time.Duration, len(paths))
	var viewMu sync.Mutex
	list, err := drive(clients, func(i, n int) (time.Duration, error) {
		k := (i*7 + n) % len(paths)
		d, err := browsers[i].timed(paths[k])
		viewMu.Lock()
		perView[k] = append(perView[k], d)
		viewMu.Unlock()
		return d, err
	}, nil, duration)
	if err != nil {
		return err
	}
	order := make([]int, len(paths))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return pct(perView[order[a]], 50) > pct(perView[order[b]], 50) })
	for _, k := range order[:min(5, len(order))] {
		b.logf("  slowest views: p50 %.1f ms  %s", ms(pct(perView[k], 50)), paths[k])
	}
	b.logf("list: %d requests in %s, %.0f/s, p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms; load: %s",
		len(list), duration, float64(len(list))/duration.Seconds(), ms(pct(list, 50)), ms(pct(list, 90)), ms(pct(list, 99)), ms(pct(list, 100)), benchkit.LoadAvg())

	// Profiles: customers picked at random over the id range.
	base := "/t/" + benchSlug + "/customers/"
	ids, err := sampleCustomers(b, profiles, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		return err
	}
	var targets []string
	for _, id := range ids {
		targets = append(targets, base+strconv.FormatInt(id, 10))
	}
	var next int
	var mu sync.Mutex
	prof, err := drive(clients, func(i, _ int) (time.Duration, error) {
		mu.Lock()
		p := targets[next%len(targets)]
		next++
		mu.Unlock()
		return browsers[i].timed(p)
	}, func(n int) bool { return n >= profiles }, 0)
	if err != nil {
		return err
	}
	b.logf("profile: %d requests, p50 %.1f ms, p99 %.1f ms, max %.1f ms; load: %s",
		len(prof), ms(pct(prof, 50)), ms(pct(prof, 99)), ms(pct(prof, 100)), benchkit.LoadAvg())

	// The dashboard, one browser, warm.
	dash := "/t/" + benchSlug + "/dashboard"
	if _, err := browsers[0].timed(dash); err != nil {
		return err
	}
	var dts []time.Duration
	for range 20 {
		d, err := browsers[0].timed(dash)
		if err != nil {
			return err
		}
		dts = append(dts, d)
	}
	start := time.Now()
	if _, err := models.ComputeDashboard(b.db.WithContext(ctx), b.tenant.ID, time.Now()); err != nil {
		return err
	}
	b.logf("dashboard: 20 loads, p50 %.1f ms, max %.1f ms (its figures take %.0f ms to compute, in the background)",
		ms(pct(dts, 50)), ms(pct(dts, 100)), ms(time.Since(start)))

	var identities int64
	b.db.Raw("SELECT COUNT(*) FROM identities WHERE app_id IN (SELECT id FROM apps WHERE tenant_id = ?)", b.tenant.ID).Scan(&identities)
	b.logf("tenant: %d customers, %d identities; machine: %d CPUs, load after: %s", b.n, identities, benchkit.CPUs(), benchkit.LoadAvg())
	fmt.Fprintf(b.out, "bench-browse customers=%d list_p50_ms=%.1f list_p99_ms=%.1f profile_p99_ms=%.1f dashboard_ms=%.1f\n",
		b.n, ms(pct(list, 50)), ms(pct(list, 99)), ms(pct(prof, 99)), ms(pct(dts, 50)))
	return nil
}

// sampleCustomers picks k customers of the tenant at random over the id range.
func sampleCustomers(b *bench, k int, rng *rand.Rand) ([]int64, error) {
	var bounds struct{ Lo, Hi int64 }
	if err := b.db.Raw("SELECT MIN(id) AS lo, MAX(id) AS hi FROM customers WHERE tenant_id = ?", b.tenant.ID).Scan(&bounds).Error; err != nil {
		return nil, err
	}
	if bounds.Hi == 0 {
		return nil, errors.New("the benchmark tenant has no customers")
	}
	var ids []int64
	for len(ids) < k {
		var found []int64
		// The hint makes it a range on (tenant_id, id): left to itself the
		// planner reads the tenant's ids from the first (55 ms a pick).
		if err := b.db.Raw("SELECT id FROM customers FORCE INDEX (ix_customers_tenant_id) WHERE tenant_id = ? AND id >= ? ORDER BY id LIMIT 1", b.tenant.ID,
			bounds.Lo+rng.Int64N(bounds.Hi-bounds.Lo+1)).Scan(&found).Error; err != nil {
			return nil, err
		}
		if len(found) == 1 {
			ids = append(ids, found[0])
		}
	}
	return ids, nil
}

// drive runs clients loops of fn until the duration passes (or, with a zero
// duration, until done says so) and returns every request's latency.
func drive(clients int, fn func(client, n int) (time.Duration, error), done func(n int) bool, duration time.Duration) ([]time.Duration, error) {
	var mu sync.Mutex
	var all []time.Duration
	var firstErr error
	var count int
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				mu.Lock()
				stop := firstErr != nil || (duration > 0 && time.Now().After(deadline)) || (duration == 0 && done(count))
				count++
				mu.Unlock()
				if stop {
					return
				}
				d, err := fn(i, n)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				all = append(all, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return all, firstErr
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
