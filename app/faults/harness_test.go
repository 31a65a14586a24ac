package faults_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/app/wechat/wechattest"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// long reports whether the long versions run (make faults: ONEID_LONG=1).
func long() bool { return os.Getenv("ONEID_LONG") == "1" }

// pick is short in CI, long under make faults.
func pick[T any](short, long_ T) T {
	if long() {
		return long_
	}
	return short
}

var (
	binDir   string
	buildMu  sync.Mutex
	binPath  string
	buildErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "oneid-faults")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// oneidBinary builds the oneid command once per test run.
func oneidBinary(t testing.TB) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if binPath == "" && buildErr == nil {
		path := filepath.Join(binDir, "oneid")
		start := time.Now()
		out, err := exec.Command("go", "build", "-o", path, "oneid/app").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build oneid/app: %v\n%s", err, out)
		} else {
			binPath = path
			t.Logf("built oneid in %v", time.Since(start).Round(time.Millisecond))
		}
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freeAddr is a loopback address nobody listens on (just now).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// logBuffer keeps a process's output for the test to search.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLine is one JSON line of a process's log.
type logLine map[string]any

func (b *logBuffer) lines() []logLine {
	var out []logLine
	for _, l := range strings.Split(b.String(), "\n") {
		var m logLine
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// has reports whether a log line has msg and every attribute given.
func (b *logBuffer) has(msg string, attrs map[string]any) bool {
	for _, l := range b.lines() {
		if l["msg"] != msg {
			continue
		}
		ok := true
		for k, v := range attrs {
			got := fmt.Sprint(l[k])
			if f, ok := l[k].(float64); ok {
				got = strconv.FormatFloat(f, 'f', -1, 64)
			}
			if got != fmt.Sprint(v) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// proc is a running `oneid serve`.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	addr string
	base string
	log  *logBuffer
	done chan struct{}
	err  error // once done
}

// startOneID runs `oneid serve` on a free loopback port with env and waits
// until /readyz answers 200.
func startOneID(t testing.TB, name string, env []string) *proc {
	t.Helper()
	return startOneIDAt(t, name, freeAddr(t), env)
}

func startOneIDAt(t testing.TB, name, addr string, env []string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, addr: addr, base: "http://" + addr, log: &logBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(oneidBinary(t), "serve")
	p.cmd.Env = append(append(os.Environ(), env...), "ONEID_ADDR="+addr)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- log of %s (pid %d), last 4 KB:\n%s", p.name, p.cmd.Process.Pid, tail(p.log.String(), 4096))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready: %v\n%s", name, p.err, tail(p.log.String(), 4096))
		default:
		}
		if status, _ := get(p.base + "/readyz"); status == http.StatusOK {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become ready on %s\n%s", name, addr, tail(p.log.String(), 4096))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to go.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// wait waits up to d for the process to exit; false if it did not.
func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// get is a plain GET: status and body (status 0 on a transport error).
func get(u string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// world is a fresh MySQL database, the WeChat simulator and the settings
// every instance of one test shares.
type world struct {
	t   testing.TB
	db  *gorm.DB
	url string
	sim *wechattest.Sim
	key []byte
}

func newWorld(t testing.TB) *world {
	t.Helper()
	db, u := dbtest.MySQLWithURL(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &world{t: t, db: db, url: u, sim: wechattest.Start(t), key: key}
}

// env is the environment of an instance: the shared database and key, the
// simulator as WeChat, a data folder of its own, and extra settings.
func (w *world) env(extra ...string) []string {
	return append([]string{
		"ONEID_DATABASE_URL=" + w.url,
		"ONEID_SECRET_KEY=" + base64.StdEncoding.EncodeToString(w.key),
		"ONEID_WECHAT_API_BASE=" + w.sim.URL(),
		"ONEID_WECHAT_OPEN_BASE=" + w.sim.URL(),
		"ONEID_WECHAT_MP_BASE=" + w.sim.URL(),
		"ONEID_DATA_DIR=" + w.t.TempDir(),
		"ONEID_LOG_LEVEL=info",
	}, extra...)
}

func (w *world) count(model any, tenantID int64, where string, args ...any) int64 {
	w.t.Helper()
	q := w.db.Model(model).Scopes(models.ForTenant(tenantID))
	if where != "" {
		q = q.Where(where, args...)
	}
	var n int64
	if err := q.Count(&n).Error; err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *world) job(tenantID, id int64) *models.Job {
	w.t.Helper()
	j, err := models.FindJob(w.db, tenantID, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return j
}

// waitJob polls a job until ok says so, for up to d.
func (w *world) waitJob(tenantID, id int64, what string, d time.Duration, ok func(*models.Job) bool) *models.Job {
	w.t.Helper()
	deadline := time.Now().Add(d)
	for {
		j := w.job(tenantID, id)
		if ok(j) {
			return j
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("job %d: waited %v for %s; it is %s, %d of %d, %q", id, d, what, j.State, j.Processed, j.Total, j.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)"`)

// browser is one person's browser: one cookie jar, the CSRF token of the
// last page, and the instances it talks to — each request goes to the next
// one in turn, so consecutive requests never reach the same instance twice.
type browser struct {
	t     testing.TB
	c     *http.Client
	csrf  string
	bases []string
	next  int
	// requests counts the requests sent.
	requests int
	// lastBase is where the last request went.
	lastBase string
}

func newBrowser(t testing.TB, bases ...string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, bases: bases, c: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		Transport:     &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// base is the instance the next request goes to.
func (b *browser) base() string {
	u := b.bases[b.next%len(b.bases)]
	b.next++
	b.requests++
	if u == b.lastBase && len(b.bases) > 1 {
		b.t.Fatalf("two consecutive requests to %s", u)
	}
	b.lastBase = u
	return u
}

type page struct {
	status   int
	body     string
	location string
	header   http.Header
	base     string
}

func (b *browser) do(req *http.Request, base string) *page {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	if m := csrfMeta.FindStringSubmatch(string(body)); m != nil {
		b.csrf = html.UnescapeString(m[1])
	}
	return &page{status: res.StatusCode, body: string(body), location: res.Header.Get("Location"), header: res.Header, base: base}
}

// get fetches path from the next instance.
func (b *browser) get(path string) *page {
	b.t.Helper()
	base := b.base()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	return b.do(req, base)
}

// mustGet is get that wants 200.
func (b *browser) mustGet(path string) *page {
	b.t.Helper()
	p := b.get(path)
	if p.status != http.StatusOK {
		b.t.Fatalf("GET %s%s: %d\n%s", p.base, path, p.status, tail(p.body, 2000))
	}
	return p
}

// post submits a form with the page's CSRF token to the next instance.
func (b *browser) post(path string, form url.Values) *page {
	b.t.Helper()
	base := b.base()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("_csrf", b.csrf)
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req, base)
}

// upload posts a file as the import form does.
func (b *browser) upload(path, name string, data []byte) *page {
	b.t.Helper()
	base := b.base()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("_csrf", b.csrf)
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write(data)
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, base+path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req, base)
}

// redirected wants a 303 and returns where to.
func (p *page) redirected(t testing.TB, what string) string {
	t.Helper()
	if p.status != http.StatusSeeOther {
		t.Fatalf("%s: %d, want 303\n%s", what, p.status, tail(p.body, 3000))
	}
	return p.location
}

// workspace is a tenant made by signing up through the portal.
type workspace struct {
	id       int64
	slug     string
	email    string
	password string
}

func (ws *workspace) path(p string) string { return "/t/" + ws.slug + "/" + p }

const principal = "故障测试科技（上海）有限公司"

// signUp creates a workspace and its admin through the sign-up form; the
// browser is then signed in.
func signUp(t testing.TB, w *world, b *browser, company string) *workspace {
	t.Helper()
	b.mustGet("/signup")
	ws := &workspace{email: strings.ToLower(strings.ReplaceAll(company, " ", "-")) + "@example.com", password: "fault tolerant 1"}
	p := b.post("/signup", url.Values{"company": {company}, "principal": {principal}, "name": {"Admin"},
		"email": {ws.email}, "password": {ws.password}})
	loc := p.redirected(t, "sign up")
	rest, ok := strings.CutPrefix(loc, "/t/")
	if !ok {
		t.Fatalf("sign up went to %q", loc)
	}
	ws.slug, _, _ = strings.Cut(rest, "/")
	tenant, err := models.FindTenantBySlug(w.db, ws.slug)
	if err != nil {
		t.Fatal(err)
	}
	ws.id = tenant.ID
	return ws
}

// signIn signs the browser in as the workspace's admin.
func signIn(t testing.TB, b *browser, ws *workspace) {
	t.Helper()
	b.mustGet("/signin")
	p := b.post("/signin", url.Values{"email": {ws.email}, "password": {ws.password}})
	p.redirected(t, "sign in")
}

// aesKey is a valid EncodingAESKey (43 characters).
const aesKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

// bindApp declares the simulator's open account and binds a service account
// in it through the self-managed form; it returns the app's row.
func bindApp(t testing.TB, w *world, b *browser, ws *workspace, name string, followers int) (wechattest.AppInfo, *models.App) {
	t.Helper()
	open := w.sim.AddOpenAccount(wechattest.OpenAccountSpec{Name: name + " open", Principal: principal, Verified: true})
	info := w.sim.MustAddApp(wechattest.AppSpec{Name: name, Principal: principal, OpenAppID: open, Followers: followers})
	b.mustGet(ws.path("apps/new"))
	b.post(ws.path("open-accounts"), url.Values{"open_appid": {open}, "open_principal": {principal}, "open_verified": {"yes"}}).
		redirected(t, "declare the open account")
	var acct models.OpenAccount
	if err := w.db.Scopes(models.ForTenant(ws.id)).Where("open_appid = ?", open).First(&acct).Error; err != nil {
		t.Fatalf("the declared open account: %v", err)
	}
	b.mustGet(ws.path("apps/new"))
	p := b.post(ws.path("apps/self-managed"), url.Values{"appid": {info.AppID}, "secret": {info.Secret}, "kind": {"service"},
		"name": {name}, "principal": {principal}, "verified": {"yes"}, "callback_token": {"faulttoken"},
		"aes_key": {aesKey}, "open_account_id": {strconv.FormatInt(acct.ID, 10)}})
	p.redirected(t, "bind the app")
	app, err := models.FindAppByAppID(w.db, ws.id, info.AppID)
	if err != nil {
		t.Fatal(err)
	}
	return info, app
}

// countCSV counts a CSV's records (line ends outside quotes), header included.
func countCSV(b []byte) int {
	n, quoted := 0, false
	for _, c := range b {
		switch {
		case c == '"':
			quoted = !quoted
		case c == '\n' && !quoted:
			n++
		}
	}
	return n
}

// waitFor polls ok for up to d.
func waitFor(t testing.TB, what string, d time.Duration, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > d {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

var errTimeout = errors.New("timeout")

// withTimeout runs fn and gives up waiting after d.
func withTimeout(d time.Duration, fn func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return errTimeout
	}
}
