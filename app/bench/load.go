package main

// `bench load` (make load) drives mixed portal traffic at a fixed rate at a
// real oneid process: `oneid serve` built from this checkout, on loopback,
// against the browse benchmark's database and tenant (seeded once with N
// customers by ensureTenant). Several people are signed in, each with their
// own session: marketers read the customer list (typical filters, and the
// next pages by the keyset links the pages carry, as htmx fetches them),
// profiles and the dashboard; an admin reads the members page and the audit
// log and writes: invitations made and revoked, a member's role changed back
// and forth, and small CSV imports of identities the tenant already holds. Every
// form carries the session's CSRF token.
//
// The load is open: request i is due at start + i/rate whatever happened to
// the ones before, and its latency runs from when it was due, not from when
// it was sent, so a server that stalls is charged for the requests that
// queued behind the stall (no coordinated omission). A request succeeds when
// it answers the expected status with the expected page within 10 s. The
// last line is
//
//	load rate=R seconds=S p50_ms=A p90_ms=B p99_ms=C success=X

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"oneid/app/bench/benchkit"
	"oneid/models"
)

// Request kinds of the mix, and their weights out of 1000.
const (
	kindList      = "list"      // a first page of a typical filter
	kindListNext  = "list_next" // the next page, by the link the last page of that filter carried (htmx)
	kindProfile   = "profile"
	kindDashboard = "dashboard"
	kindMembers   = "members"
	kindAudit     = "audit"
	kindInvite    = "invite" // POST an invitation (admin)
	kindRevoke    = "revoke" // POST the revocation of one made earlier
	kindRole      = "role"   // POST a member's role, viewer and marketer in turn
	kindImport    = "import" // POST a CSV of 10 identities the tenant holds
)

type mixEntry struct {
	kind   string
	weight int
}

var loadMix = []mixEntry{
	{kindList, 400}, {kindListNext, 200}, {kindProfile, 250}, {kindDashboard, 80},
	{kindMembers, 10}, {kindAudit, 20},
	{kindInvite, 12}, {kindRevoke, 12}, {kindRole, 8}, {kindImport, 8},
}

const (
	loadAdminEmail = "bench-load-admin@example.com"
	loadRoleEmail  = "bench-load-rotating@example.com" // the member whose role the admin changes
	loadTimeout    = 10 * time.Second
)

func loadMarketerEmail(i int) string { return fmt.Sprintf("bench-load-marketer-%d@example.com", i) }

type loadOptions struct {
	rate, seconds, sessions int
	mix                     []mixEntry
}

// parseMix reads "list=1,profile=3"; "" is loadMix.
func parseMix(s string) ([]mixEntry, error) {
	if s == "" {
		return loadMix, nil
	}
	known := map[string]bool{}
	for _, m := range loadMix {
		known[m.kind] = true
	}
	var mix []mixEntry
	for _, part := range strings.Split(s, ",") {
		kind, weight, _ := strings.Cut(part, "=")
		n, err := strconv.Atoi(weight)
		if !known[kind] || err != nil || n < 0 {
			return nil, fmt.Errorf("load: --mix %q: %q is not kind=weight of a known kind", s, part)
		}
		mix = append(mix, mixEntry{kind, n})
	}
	return mix, nil
}

func runLoad(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(out)
	n := fs.Int("customers", 1000000, "customers in the benchmark tenant (seeded once, then reused)")
	rate := fs.Int("rate", 200, "requests a second, sent on schedule whatever the answers")
	seconds := fs.Int("seconds", 60, "how long the load runs")
	sessions := fs.Int("sessions", 8, "signed-in marketers (each its own session), besides the admin")
	server := fs.String("mysql", "", "MySQL server URL without a database (default $ONEID_BENCH_MYSQL_URL or mysql://root@127.0.0.1:3306/)")
	dbName := fs.String("database", "oneid_bench_browse", "the benchmark's own database (created if missing; shared with bench browse)")
	binary := fs.String("oneid", "", "the oneid binary to serve with (default: go build ./app into a temporary folder)")
	pool := fs.Bool("buffer-pool", true, "raise innodb_buffer_pool_size to the 2 GB PRODUCT.md's targets assume")
	mixFlag := fs.String("mix", "", "other weights, kind=weight,… (to find which kind costs what; default: the portal's mix)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate <= 0 || *seconds <= 0 || *sessions <= 0 || *n <= 0 {
		return errors.New("load: --rate, --seconds, --sessions and --customers must be positive")
	}
	mix, err := parseMix(*mixFlag)
	if err != nil {
		return err
	}
	serverURL := benchkit.MySQLServer(*server, getenv)
	b := &bench{out: out, n: *n, keepPool: !*pool}
	if err := b.openDatabase(ctx, serverURL, *dbName); err != nil {
		return err
	}
	defer func() {
		if sqlDB, err := b.db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}()
	if err := b.ensureTenant(ctx); err != nil {
		return err
	}
	w, err := newLoadWorld(ctx, b, *sessions)
	if err != nil {
		return err
	}
	if *binary == "" {
		path, cleanup, err := benchkit.BuildOneID(ctx, out)
		if err != nil {
			return err
		}
		defer cleanup()
		*binary = path
	}
	// The server logs every request with its duration (info, as in
	// production): the report compares the time inside the server with the
	// time the driver saw.
	w.serverLog = newServerLog(benchSlug)
	proc, err := benchkit.StartOneIDLogging(ctx, *binary, serverURL+*dbName, w.serverLog, "ONEID_LOG_LEVEL=info")
	if err != nil {
		return err
	}
	defer proc.Stop()
	w.base = proc.Base
	return w.run(ctx, proc, loadOptions{rate: *rate, seconds: *seconds, sessions: *sessions, mix: mix})
}

// loadWorld is what the requests need: the tenant's data to ask for, the
// signed-in sessions, and the state the writes carry between requests.
type loadWorld struct {
	b         *bench
	base      string
	filters   []string       // first pages of typical filters
	next      []atomic.Value // per filter: the next page's URL from its latest page
	profiles  []string       // profile paths of customers picked at random
	imports   [][2]string    // (appid, openid) the tenant holds
	roleID    int64          // membership whose role flips
	roleFlip  atomic.Int64   // even: viewer, odd: marketer
	invited   chan int64     // invitations made, waiting to be revoked
	runID     string         // tells this run's invitations apart
	seq       atomic.Int64   // invitation emails
	readers   []*loadSession // marketers
	serverLog *serverLog
	admin     *loadSession
	mu        sync.Mutex
	rng       *rand.Rand
}

type loadSession struct {
	http *http.Client
	csrf string
}

func newLoadWorld(ctx context.Context, b *bench, sessions int) (*loadWorld, error) {
	db := b.db.WithContext(ctx)
	w := &loadWorld{b: b, invited: make(chan int64, 100000), rng: rand.New(rand.NewPCG(7, 11)),
		runID: strconv.FormatInt(time.Now().UnixNano()%1e9, 36)}
	hash, err := models.NewPasswordHasher(1).Hash(ctx, benchPassword)
	if err != nil {
		return nil, err
	}
	for i := 1; i <= sessions; i++ {
		if _, err := ensureMember(b, hash, loadMarketerEmail(i), models.RoleMarketer); err != nil {
			return nil, err
		}
	}
	if _, err := ensureMember(b, hash, loadAdminEmail, models.RoleAdmin); err != nil {
		return nil, err
	}
	m, err := ensureMember(b, hash, loadRoleEmail, models.RoleViewer)
	if err != nil {
		return nil, err
	}
	w.roleID = m.ID
	// Invitations a run made and had no time to revoke: revoked now, so the
	// members page stays the same size run after run.
	var left []int64
	if err := db.Model(&models.Invitation{}).Scopes(models.ForTenant(b.tenant.ID)).
		Where("email LIKE ? AND revoked_at IS NULL AND accepted_at IS NULL", "load-%@example.com").Pluck("id", &left).Error; err != nil {
		return nil, err
	}
	for _, id := range left {
		if _, err := models.RevokeInvitation(db, b.tenant.ID, id, time.Now()); err != nil {
			return nil, err
		}
	}

	apps, err := models.BrowseApps(db, b.tenant.ID)
	if err != nil {
		return nil, err
	}
	filters, err := listFilters(apps)
	if err != nil {
		return nil, err
	}
	for _, f := range filters {
		w.filters = append(w.filters, "/t/"+benchSlug+"/customers?"+f.Values().Encode())
	}
	w.next = make([]atomic.Value, len(w.filters))

	ids, err := sampleCustomers(b, 2000, rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		w.profiles = append(w.profiles, "/t/"+benchSlug+"/customers/"+strconv.FormatInt(id, 10))
	}
	var rows []struct {
		AppID  string `gorm:"column:appid"`
		OpenID string `gorm:"column:openid"`
	}
	if err := db.Raw("SELECT a.appid, i.openid FROM identities i JOIN apps a ON a.id = i.app_id AND a.tenant_id = i.tenant_id"+
		" WHERE i.tenant_id = ? AND i.customer_id IN ? AND a.bound_appid IS NOT NULL ORDER BY i.id", b.tenant.ID, ids[:min(len(ids), 500)]).
		Scan(&rows).Error; err != nil {
		return nil, err
	}
	if len(rows) < 10 {
		return nil, fmt.Errorf("load: the tenant has %d identities to import again", len(rows))
	}
	for _, r := range rows {
		w.imports = append(w.imports, [2]string{r.AppID, r.OpenID})
	}
	return w, nil
}

// ensureMember makes (or finds) a person with the benchmark's password and
// the given role in the benchmark tenant.
func ensureMember(b *bench, hash, email, role string) (*models.Membership, error) {
	return benchkit.EnsureMember(b.db, b.tenant.ID, hash, email, strings.SplitN(email, "@", 2)[0], role)
}

var (
	nextLink    = regexp.MustCompile(`href="([^"]*)"[^>]*data-testid="page-next"`)
	revokeLinkF = `(?s)<div>%s</div>.*?/invitations/(\d+)/revoke`
)

// signIn signs a person in with a session of their own and reads its CSRF
// token from a page.
func (w *loadWorld) signIn(email string) (*loadSession, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: loadTimeout,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if err := benchkit.SignIn(c, w.base, email, benchPassword); err != nil {
		return nil, err
	}
	token, err := benchkit.CSRFToken(c, w.base+"/t/"+benchSlug+"/dashboard")
	if err != nil {
		return nil, err
	}
	return &loadSession{http: c, csrf: token}, nil
}

// call makes one request and checks its status and that the body holds want.
func (s *loadSession) call(req *http.Request, status int, want string) ([]byte, error) {
	res, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != status {
		return body, fmt.Errorf("%s %s: %d, want %d", req.Method, req.URL.Path, res.StatusCode, status)
	}
	if want != "" && !bytes.Contains(body, []byte(want)) {
		return body, fmt.Errorf("%s %s: the page lacks %s", req.Method, req.URL.Path, want)
	}
	return body, nil
}

func (w *loadWorld) get(ctx context.Context, s *loadSession, path string, htmx bool, want string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.base+path, nil)
	if err != nil {
		return nil, err
	}
	if htmx {
		req.Header.Set("HX-Request", "true")
	}
	return s.call(req, http.StatusOK, want)
}

func (w *loadWorld) post(ctx context.Context, s *loadSession, path string, form url.Values, status int, want string) ([]byte, error) {
	form.Set("_csrf", s.csrf)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return s.call(req, status, want)
}

// remember keeps the next-page link of a list page of filter k; the walk
// starts again from the first page when the last page is reached.
func (w *loadWorld) remember(k int, body []byte) {
	if m := nextLink.FindSubmatch(body); m != nil {
		w.next[k].Store(html.UnescapeString(string(m[1])))
	} else {
		w.next[k].Store(w.filters[k])
	}
}

func (w *loadWorld) intn(n int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rng.IntN(n)
}

// do runs one request of a kind as the i-th of the run, and says which kind
// it ran (a revocation with nothing to revoke yet invites instead).
func (w *loadWorld) do(ctx context.Context, kind string, i int) (string, int, error) {
	filter := -1
	err := w.request(ctx, &kind, &filter, i)
	return kind, filter, err
}

// request makes the request; for the list it says which filter it asked for.
func (w *loadWorld) request(ctx context.Context, kind *string, filter *int, i int) error {
	tenant := "/t/" + benchSlug
	reader := w.readers[i%len(w.readers)]
	switch *kind {
	case kindList:
		k := w.intn(len(w.filters))
		*filter = k
		body, err := w.get(ctx, reader, w.filters[k], false, `data-testid="customer-results"`)
		if err == nil {
			w.remember(k, body)
		}
		return err
	case kindListNext:
		k := w.intn(len(w.filters))
		*filter = k
		path, _ := w.next[k].Load().(string)
		if path == "" {
			path = w.filters[k]
		}
		body, err := w.get(ctx, reader, path, true, `data-testid="customer-results"`)
		if err == nil {
			w.remember(k, body)
		}
		return err
	case kindProfile:
		_, err := w.get(ctx, reader, w.profiles[w.intn(len(w.profiles))], false, `data-testid="profile"`)
		return err
	case kindDashboard:
		_, err := w.get(ctx, reader, tenant+"/dashboard", false, `data-testid="as-of"`)
		return err
	case kindMembers:
		_, err := w.get(ctx, w.admin, tenant+"/members", false, `data-testid="invite-form"`)
		return err
	case kindAudit:
		_, err := w.get(ctx, w.admin, tenant+"/audit", false, "")
		return err
	case kindRevoke:
		select {
		case id := <-w.invited:
			_, err := w.post(ctx, w.admin, tenant+"/invitations/"+strconv.FormatInt(id, 10)+"/revoke", url.Values{}, http.StatusSeeOther, "")
			return err
		default: // nothing to revoke yet: invite instead
			*kind = kindInvite
		}
		fallthrough
	case kindInvite:
		email := fmt.Sprintf("load-%s-%d@example.com", w.runID, w.seq.Add(1))
		body, err := w.post(ctx, w.admin, tenant+"/invitations", url.Values{"email": {email}, "role": {models.RoleViewer}}, http.StatusOK, "")
		if err != nil {
			return err
		}
		m := regexp.MustCompile(fmt.Sprintf(revokeLinkF, regexp.QuoteMeta(html.EscapeString(email)))).FindSubmatch(body)
		if m == nil {
			return fmt.Errorf("invitation of %s not listed on the members page", email)
		}
		id, _ := strconv.ParseInt(string(m[1]), 10, 64)
		select {
		case w.invited <- id:
		default:
		}
		return nil
	case kindRole:
		role := models.RoleViewer
		if w.roleFlip.Add(1)%2 == 1 {
			role = models.RoleMarketer
		}
		_, err := w.post(ctx, w.admin, tenant+"/members/"+strconv.FormatInt(w.roleID, 10)+"/role", url.Values{"role": {role}}, http.StatusSeeOther, "")
		return err
	case kindImport:
		var csv bytes.Buffer
		csv.WriteString("appid,openid,unionid\r\n")
		for range 10 {
			r := w.imports[w.intn(len(w.imports))]
			csv.WriteString(r[0] + "," + r[1] + ",\r\n")
		}
		var form bytes.Buffer
		mw := multipart.NewWriter(&form)
		_ = mw.WriteField("_csrf", w.admin.csrf)
		fw, _ := mw.CreateFormFile("file", "load.csv")
		_, _ = fw.Write(csv.Bytes())
		_ = mw.Close()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.base+tenant+"/imports", &form)
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", mw.FormDataContentType())
		_, err = w.admin.call(req, http.StatusOK, `data-testid="import-done"`)
		return err
	}
	return fmt.Errorf("unknown request kind %q", *kind)
}

type loadResult struct {
	kind    string
	filter  int           // the list's filter, or -1
	latency time.Duration // from when the request was due
	err     error
}

func (w *loadWorld) run(ctx context.Context, proc *benchkit.Process, o loadOptions) error {
	var err error
	for i := 1; i <= o.sessions; i++ {
		s, err := w.signIn(loadMarketerEmail(i))
		if err != nil {
			return err
		}
		w.readers = append(w.readers, s)
	}
	if w.admin, err = w.signIn(loadAdminEmail); err != nil {
		return err
	}
	// Warm up, unmeasured: every filter's first page (which also gives each
	// its next page), a few profiles, the dashboard.
	for k, p := range w.filters {
		body, err := w.get(ctx, w.readers[k%len(w.readers)], p, false, `data-testid="customer-results"`)
		if err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		w.remember(k, body)
	}
	for _, p := range w.profiles[:min(20, len(w.profiles))] {
		if _, err := w.get(ctx, w.readers[0], p, false, `data-testid="profile"`); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}

	// The schedule: a kind for each request, drawn from the mix.
	total := o.rate * o.seconds
	var wheel []string
	for _, m := range o.mix {
		for range m.weight {
			wheel = append(wheel, m.kind)
		}
	}
	if len(wheel) == 0 {
		return errors.New("load: the mix has no weight")
	}
	pick := rand.New(rand.NewPCG(uint64(o.rate), uint64(o.seconds)))
	kinds := make([]string, total)
	for i := range kinds {
		kinds[i] = wheel[pick.IntN(len(wheel))]
	}

	w.serverLog.reset()
	loadBefore := benchkit.LoadAvg()
	cpuBefore, _ := proc.CPUSeconds()
	mysqld := w.mysqldPID()
	mysqlBefore, _ := benchkit.CPUSecondsOf(mysqld)
	selfBefore, _ := benchkit.CPUSecondsOf(os.Getpid())
	b := w.b
	b.logf("load: %d requests at %d/s for %d s against %s (oneid pid %d), %d customers, %d marketers + 1 admin signed in, %d list filters; %d CPUs, load before: %s",
		total, o.rate, o.seconds, w.base, proc.Cmd.Process.Pid, b.n, len(w.readers), len(w.filters), benchkit.CPUs(), loadBefore)
	results := make([]loadResult, total)
	var wg sync.WaitGroup
	var maxLag time.Duration
	start := time.Now().Add(50 * time.Millisecond)
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * time.Second / time.Duration(o.rate))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		} else if -d > maxLag {
			maxLag = -d
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wg.Add(1)
		go func(i int, due time.Time) {
			defer wg.Done()
			rctx, cancel := context.WithDeadline(ctx, due.Add(loadTimeout))
			defer cancel()
			kind, filter, err := w.do(rctx, kinds[i], i)
			results[i] = loadResult{kind: kind, filter: filter, latency: time.Since(due), err: err}
		}(i, due)
	}
	sent := time.Since(start)
	wg.Wait()
	took := time.Since(start)
	cpuAfter, _ := proc.CPUSeconds()
	mysqlAfter, _ := benchkit.CPUSecondsOf(mysqld)
	selfAfter, _ := benchkit.CPUSecondsOf(os.Getpid())
	loadAfter := benchkit.LoadAvg()

	// Per kind, slowest first, then the whole.
	byKind := map[string][]time.Duration{}
	failed := map[string]int{}
	var all []time.Duration
	errs := map[string]int{}
	ok := 0
	for _, r := range results {
		byKind[r.kind] = append(byKind[r.kind], r.latency)
		all = append(all, r.latency)
		if r.err != nil {
			failed[r.kind]++
			msg := r.err.Error()
			if len(msg) > 160 {
				msg = msg[:160]
			}
			errs[msg]++
		} else {
			ok++
		}
	}
	var names []string
	for k := range byKind {
		names = append(names, k)
	}
	sort.Slice(names, func(a, c int) bool { return pct(byKind[names[a]], 99) > pct(byKind[names[c]], 99) })
	for _, k := range names {
		d := byKind[k]
		b.logf("  %-10s %6d requests  p50 %7.1f ms  p90 %7.1f ms  p99 %7.1f ms  max %7.1f ms  failed %d",
			k, len(d), ms(pct(d, 50)), ms(pct(d, 90)), ms(pct(d, 99)), ms(pct(d, 100)), failed[k])
	}
	// The list's filters, slowest first (first and next pages together).
	perFilter := make([][]time.Duration, len(w.filters))
	for _, r := range results {
		if r.filter >= 0 {
			perFilter[r.filter] = append(perFilter[r.filter], r.latency)
		}
	}
	order := make([]int, len(w.filters))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, c int) bool { return pct(perFilter[order[a]], 99) > pct(perFilter[order[c]], 99) })
	for _, k := range order[:min(4, len(order))] {
		d := perFilter[k]
		b.logf("  slowest filters: %5d requests  p50 %7.1f ms  p99 %7.1f ms  %s", len(d), ms(pct(d, 50)), ms(pct(d, 99)), w.filters[k])
	}
	// Inside the server, as its request log has it.
	w.serverLog.mu.Lock()
	var groups []string
	for g := range w.serverLog.took {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		d := w.serverLog.took[g]
		b.logf("  server %-28s %6d requests  p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms (in the handler, from oneid's log)", g, len(d), ms(pct(d, 50)), ms(pct(d, 99)), ms(pct(d, 100)))
	}
	w.serverLog.mu.Unlock()
	// When the slow requests were due.
	perSecond := make([][]time.Duration, o.seconds)
	for i, r := range results {
		sec := i / o.rate
		perSecond[sec] = append(perSecond[sec], r.latency)
	}
	over := 0
	worst := 0
	for sec, d := range perSecond {
		if pct(d, 99) > 200*time.Millisecond {
			over++
		}
		if pct(d, 99) > pct(perSecond[worst], 99) {
			worst = sec
		}
	}
	b.logf("  seconds whose p99 is over 200 ms: %d of %d; the worst, second %d: p50 %.1f ms, p99 %.1f ms",
		over, o.seconds, worst, ms(pct(perSecond[worst], 50)), ms(pct(perSecond[worst], 99)))
	shown := 0
	for msg, count := range errs {
		if shown++; shown > 10 {
			break
		}
		b.logf("  error ×%d: %s", count, msg)
	}
	rss, _ := proc.PeakRSS()
	b.logf("sent in %.1f s (scheduler at most %.1f ms late), all answered after %.1f s; CPU-seconds a second: oneid %.2f, mysqld %.2f (shared with whatever else uses it), this driver %.2f (of %d); oneid peak RSS %.0f MB; load after: %s",
		sent.Seconds(), ms(maxLag), took.Seconds(), (cpuAfter-cpuBefore)/took.Seconds(), (mysqlAfter-mysqlBefore)/took.Seconds(),
		(selfAfter-selfBefore)/took.Seconds(), benchkit.CPUs(), rss, loadAfter)
	success := float64(ok) / float64(total)
	fmt.Fprintf(b.out, "load rate=%d seconds=%d p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f success=%.4f\n",
		o.rate, o.seconds, ms(pct(all, 50)), ms(pct(all, 90)), ms(pct(all, 99)), success)
	return nil
}

// serverLog reads oneid's JSON log: request durations by route, other lines
// of warning or worse passed on to stderr.
type serverLog struct {
	slug string
	mu   sync.Mutex
	buf  []byte
	took map[string][]time.Duration
}

func newServerLog(slug string) *serverLog {
	return &serverLog{slug: slug, took: map[string][]time.Duration{}}
}

func (l *serverLog) reset() {
	l.mu.Lock()
	l.took = map[string][]time.Duration{}
	l.mu.Unlock()
}

var idSegment = regexp.MustCompile(`/\d+(/|$)`)

func (l *serverLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		nl := bytes.IndexByte(l.buf, '\n')
		if nl < 0 {
			return len(p), nil
		}
		line := l.buf[:nl]
		var e struct {
			Level, Msg, Method, Path string
			Duration                 float64 `json:"duration_ms"`
		}
		if json.Unmarshal(line, &e) == nil && e.Msg == "request" {
			route := e.Method + " " + idSegment.ReplaceAllString(strings.TrimPrefix(e.Path, "/t/"+l.slug), "/:id$1")
			l.took[route] = append(l.took[route], time.Duration(e.Duration*float64(time.Millisecond)))
		} else if e.Level != "INFO" && e.Level != "DEBUG" {
			fmt.Fprintf(os.Stderr, "oneid: %s\n", line)
		}
		l.buf = l.buf[nl+1:]
	}
}

// mysqldPID is the database server's process id when it runs on this machine
// (its pid file readable), or 0.
func (w *loadWorld) mysqldPID() int {
	var file string
	if err := w.b.db.Raw("SELECT @@pid_file").Scan(&file).Error; err != nil || file == "" {
		return 0
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	return pid
}
