package demo_test

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"oneid/app/web/browsertest"
	"oneid/models"
)

// TestREADME follows the README as a newcomer would: its first command
// (`go run ./app serve --demo`, here the same program built once) started as
// a real process on 127.0.0.1 with a fresh data folder, the URL and sign-in
// read from what it prints; then, in headless Chromium, sign in, the
// customers, a follow event pushed by the simulator landing on a profile, a
// follower sync whose progress bar moves, the principal refusal and a CSV
// export read back. A second start finds the workspace and duplicates
// nothing. With ONEID_UPDATE_DOCS=1 it rewrites the README's screenshots
// (static/docs/*.png).
func TestREADME(t *testing.T) {
	root := moduleRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// The README's two commands are the ones this test and CI run.
	for _, cmd := range []string{"go run ./app serve --demo", "make test"} {
		if !strings.Contains(string(readme), "\n    "+cmd+"\n") && !strings.Contains(string(readme), "\n"+cmd+"\n") {
			t.Errorf("README.md does not show the command %q on a line of its own", cmd)
		}
	}
	if ci, err := os.ReadFile(filepath.Join(root, ".ci/run")); err != nil || !strings.Contains(string(ci), "\nmake test\n") {
		t.Errorf(".ci/run should run `make test` (%v)", err)
	}

	bin := filepath.Join(t.TempDir(), "oneid")
	build := exec.Command("go", "build", "-o", bin, "./app")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./app: %v\n%s", err, out)
	}
	data := t.TempDir()
	addr := freeAddr(t)

	first := startDemo(t, bin, data, addr)
	t.Logf("first start: %.1fs to the printed sign-in (%s)", first.took.Seconds(), first.summary)
	if !strings.Contains(first.summary, "made the demo workspace") {
		t.Fatalf("the first start should make the workspace: %q", first.summary)
	}
	if fi, err := os.Stat(filepath.Join(data, "demo.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("demo.json should exist with mode 0600: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(data, "secret.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret.key should exist with mode 0600: %v %v", fi, err)
	}
	// The sign-in page answers, as `curl` would see it.
	if res, err := http.Get(first.url + "/signin"); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /signin: %v %v", res, err)
	} else {
		res.Body.Close()
	}

	t.Run("browser", func(t *testing.T) { walkThrough(t, root, first) })

	first.stop(t)
	before := counts(t, data)

	second := startDemo(t, bin, data, addr)
	t.Logf("second start: %.1fs (%s)", second.took.Seconds(), second.summary)
	if !strings.Contains(second.summary, "found the demo workspace") || second.password != first.password || second.email != first.email {
		t.Fatalf("the second start should find the workspace and print the same sign-in: %q %s", second.summary, second.email)
	}
	if second.took > 15*time.Second {
		t.Errorf("the second start took %s; it should only find the workspace", second.took)
	}
	// The sign-in still works and the sync of the restarted simulator agrees.
	signIn(t, second)
	second.stop(t)
	if after := counts(t, data); after != before {
		t.Fatalf("a second start changed the database:\nbefore %+v\nafter  %+v", before, after)
	}
}

// demoRun is a running `oneid serve --demo` and what it printed.
type demoRun struct {
	cmd                              *exec.Cmd
	url, email, password, summary    string
	followCmd, customerPath, workURL string
	took                             time.Duration
	exited                           chan error
	stderr                           *strings.Builder
}

func startDemo(t *testing.T, bin, data, addr string) *demoRun {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--demo")
	env := []string{"ONEID_DATA_DIR=" + data, "ONEID_ADDR=" + addr, "ONEID_LOG_LEVEL=warn"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ONEID_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &demoRun{cmd: cmd, exited: make(chan error, 1), stderr: &strings.Builder{}}
	cmd.Stderr = r.stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		r.exited <- cmd.Wait()
	}()
	field := regexp.MustCompile(`^\s+([a-z ]+):\s+(\S.*)$`)
	deadline := time.After(120 * time.Second)
	for done := false; !done; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("serve --demo ended before printing its sign-in:\n%s", r.stderr)
			}
			t.Logf("stdout: %s", line)
			if strings.HasPrefix(line, "OneID demo (") {
				r.summary = line
			}
			if m := field.FindStringSubmatch(line); m != nil {
				switch m[1] {
				case "open":
					r.url = strings.TrimSuffix(m[2], "/signin")
				case "sign in":
					r.email = m[2]
				case "password":
					r.password = m[2]
				case "workspace":
					r.workURL = m[2]
				case "principal refusal":
					done = true // the last line of the sign-in block
				}
			}
			if strings.HasPrefix(strings.TrimSpace(line), "curl ") {
				r.followCmd = strings.TrimSpace(line)
			}
			if strings.HasPrefix(strings.TrimSpace(line), "then open ") {
				r.customerPath = strings.Fields(line)[2]
			}
		case <-deadline:
			t.Fatalf("no sign-in printed within 2 minutes:\n%s", r.stderr)
		}
	}
	r.took = time.Since(start)
	// The rest of what it prints (until it ends).
	go func() {
		for range lines {
		}
	}()
	return r
}

// stop sends SIGTERM, as a container runtime would, and waits for the exit.
func (r *demoRun) stop(t *testing.T) {
	t.Helper()
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-r.exited:
		if err != nil {
			t.Fatalf("serve --demo exited with %v:\n%s", err, r.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve --demo did not stop within 30 s of SIGTERM")
	}
}

type tally struct {
	Tenants, Users, Apps, OpenAccounts, Customers, Identities, Events, Audit int64
}

// counts reads the embedded database of a stopped demo.
func counts(t *testing.T, data string) tally {
	t.Helper()
	db, err := models.Open("sqlite://" + filepath.Join(data, "oneid.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	}()
	var c tally
	cross := models.CrossTenant(db, "the README test counts every row")
	for _, q := range []struct {
		table string
		into  *int64
	}{{"tenants", &c.Tenants}, {"users", &c.Users}, {"apps", &c.Apps}, {"open_accounts", &c.OpenAccounts},
		{"customers", &c.Customers}, {"identities", &c.Identities}, {"customer_events", &c.Events}, {"audit_events", &c.Audit}} {
		if err := cross.Raw("SELECT COUNT(*) FROM " + q.table).Scan(q.into).Error; err != nil {
			t.Fatalf("count %s: %v", q.table, err)
		}
	}
	return c
}

func signIn(t *testing.T, r *demoRun) {
	t.Helper()
	res, err := http.Get(r.url + "/signin")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /signin after a restart: %v %v", res, err)
	}
	res.Body.Close()
}

// walkThrough is the newcomer's first ten minutes in the browser.
func walkThrough(t *testing.T, root string, r *demoRun) {
	downloads := t.TempDir()
	b := browsertest.Start(t, browsertest.Options{Within: 150 * time.Second, Downloads: downloads})
	tab := b.Tab()
	base := r.url
	slug := strings.TrimSuffix(strings.TrimPrefix(r.workURL, base+"/t/"), "/customers")
	tab.Do("sign in",
		chromedp.Navigate(base+"/signin"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="signin-form"]`)),
		chromedp.SendKeys(chromedp.CSS("#f-email"), r.email),
		chromedp.SendKeys(chromedp.CSS("#f-password"), r.password),
	)
	if status := tab.Click("sign in", `[data-testid="signin-submit"]`); status != 200 {
		t.Fatalf("signing in with the printed password answered %d", status)
	}

	// The customers: tens of thousands, linked and unlinked.
	tab.Do("customers", chromedp.Navigate(r.workURL), chromedp.WaitVisible(chromedp.CSS(`[data-testid="customer-row"]`)))
	total, _ := strconv.Atoi(tab.Attr(`[data-testid="customer-total"]`, "data-total"))
	if total < 20000 {
		t.Fatalf("the demo workspace shows %d customers; it should have tens of thousands", total)
	}
	docShot(t, tab, root, "customers", false)

	// A follow event: the printed command, then the profile's timeline.
	if r.followCmd == "" || r.customerPath == "" {
		t.Fatal("serve --demo printed no follow command")
	}
	follow(t, r.followCmd)
	tab.Do("profile", chromedp.Navigate(r.customerPath), chromedp.WaitVisible(chromedp.CSS(`[data-testid="profile"]`)))
	for end := time.Now().Add(20 * time.Second); ; {
		if tab.Attr(`[data-testid="timeline-event"]`, "data-kind") == "followed" {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the follow did not reach the profile's timeline")
		}
		tab.Do("reload", chromedp.Reload())
	}
	if n := tab.String(`String(document.querySelectorAll('[data-testid="identity-row"]').length)`); n == "0" || n == "1" {
		t.Errorf("the profile shows %s identities; the demo's former followers use several apps", n)
	}
	docShot(t, tab, root, "profile", true)

	// A follower sync of 示例服务号, its progress bar moving.
	tab.Do("apps", chromedp.Navigate(base+"/t/"+slug+"/apps"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="sync-start"]`)))
	tab.Shot("readme-apps")
	row := `[data-testid="app-row"][data-appid="` + serviceAppID(t, r.followCmd) + `"]`
	cell := row + ` [data-testid="sync"]`
	tab.Click("start the sync", row+` [data-testid="sync-start"]`)
	tab.Do("progress", chromedp.WaitVisible(chromedp.CSS(cell+`[data-state]`)))
	bars := map[string]bool{}
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		v := tab.String(`(() => { const p = document.querySelector('` + cell + ` progress'); return p ? String(p.value) + "/" + String(p.max) : "" })()`)
		if v != "" {
			bars[v] = true
		}
		if tab.Exists(cell + `[data-state="succeeded"]`) {
			break
		}
	}
	t.Logf("progress bar values seen: %v", keys(bars))
	if len(bars) < 2 {
		t.Errorf("the progress bar should be seen moving; it showed %v", keys(bars))
	}
	tab.WaitFor("the end of the sync", `document.querySelector('`+cell+`[data-state="succeeded"]') !== null`, 60*time.Second)
	// 24,000 listed followers, the one who came back among them.
	if n := tab.Text(row + ` [id^="followers-"]`); n != "24,001" {
		t.Errorf("after the sync the followers column shows %q, want 24,001", n)
	}
	tab.Shot("readme-sync-done")

	// The app of another principal: offered on WeChat's authorisation page,
	// bound without an open-platform account, refused when joined to the
	// company's, with the differing characters marked.
	tab.Click("bind with WeChat", `[data-testid="bind-wechat"]`)
	tab.Do("authorisation page", chromedp.WaitVisible(chromedp.CSS(`a[data-testid^="sim-authorize-"]`)))
	other := tab.String(`Array.from(document.querySelectorAll('a[data-testid^="sim-authorize-"]')).find(a => a.textContent.includes("深圳")).dataset.testid.replace("sim-authorize-", "")`)
	tab.Click("consent for the other principal's app", `[data-testid="sim-authorize-`+other+`"]`)
	otherRow := `[data-testid="unlinked-apps"] [data-appid="` + other + `"]`
	tab.Do("bound without an open-platform account", chromedp.WaitVisible(chromedp.CSS(otherRow)))
	tab.Click("join the company's open-platform account", otherRow+` + tr [data-testid="open-bind"]`)
	tab.Do("refusal", chromedp.WaitVisible(chromedp.CSS(`[data-testid="refusal"]`)))
	if m := tab.Text(`[data-testid="diff-app"] mark`); !strings.Contains(m, "深圳") {
		t.Errorf("the refusal marks %q in the app's principal, want 深圳", m)
	}
	tab.Shot("readme-principal-refusal")

	// Export the customers who follow: the confirmation, then the CSV.
	tab.Do("export", chromedp.Navigate(base+"/t/"+slug+"/customers/export?sub=yes"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="export-count"]`)))
	rows, _ := strconv.Atoi(tab.Attr(`[data-testid="export-count"]`, "data-rows"))
	if rows < 10000 || tab.Attr(`[data-testid="export-delivery"]`, "data-stream") != "true" {
		t.Fatalf("export confirmation: %d rows, stream=%s", rows, tab.Attr(`[data-testid="export-delivery"]`, "data-stream"))
	}
	tab.Do("download", chromedp.Click(chromedp.CSS(`[data-testid="export-submit"]`)))
	recs := downloaded(t, downloads)
	if len(recs)-1 != rows {
		t.Fatalf("the CSV has %d rows, the confirmation said %d", len(recs)-1, rows)
	}
	t.Logf("exported %d followers as CSV; header %q", rows, recs[0])
}

// serviceAppID is the appid in the follow command: 示例服务号's.
func serviceAppID(t *testing.T, cmd string) string {
	t.Helper()
	m := regexp.MustCompile(`"appid":"(wx[0-9a-f]{16})"`).FindStringSubmatch(cmd)
	if m == nil {
		t.Fatalf("no appid in %q", cmd)
	}
	return m[1]
}

// follow runs the printed curl command's request: POST JSON to the simulator.
func follow(t *testing.T, cmd string) {
	t.Helper()
	m := regexp.MustCompile(`-X POST (\S+) -d '([^']+)'`).FindStringSubmatch(cmd)
	if m == nil {
		t.Fatalf("cannot read the follow command %q", cmd)
	}
	res, err := http.Post(m[1], "application/json", strings.NewReader(m[2]))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var d struct {
		OK     bool   `json:"ok"`
		Status int    `json:"status"`
		Reply  string `json:"reply"`
	}
	body, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(body, &d); err != nil || !d.OK {
		t.Fatalf("the follow push was not taken: %s", body)
	}
}

func downloaded(t *testing.T, dir string) [][]string {
	t.Helper()
	for end := time.Now().Add(60 * time.Second); ; {
		files, _ := filepath.Glob(filepath.Join(dir, "*.csv"))
		partial, _ := filepath.Glob(filepath.Join(dir, "*.crdownload"))
		if len(files) > 0 && len(partial) == 0 {
			body, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(body), "\uFEFF"))).ReadAll()
			if err != nil {
				t.Fatalf("%s is not CSV: %v", files[0], err)
			}
			return recs
		}
		if time.Now().After(end) {
			t.Fatalf("no CSV downloaded into %s", dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// docShot saves the page as the tab's artifact, and with ONEID_UPDATE_DOCS=1
// the viewport (or the whole page) as the README's static/docs/<name>.png.
func docShot(t *testing.T, tab *browsertest.Tab, root, name string, whole bool) {
	t.Helper()
	tab.Shot("readme-" + name)
	if os.Getenv("ONEID_UPDATE_DOCS") != "1" {
		return
	}
	shot := chromedp.CaptureScreenshot()
	if whole {
		shot = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(tab.Ctx, shot)
	if err != nil {
		t.Fatal(err)
	}
	if len(png) > 300<<10 {
		t.Errorf("%s.png is %d KB; keep README screenshots under 300 KB", name, len(png)>>10)
	}
	path := filepath.Join(root, "static", "docs", name+".png")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("README screenshot: %s (%d KB)", path, len(png)>>10)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		t.Fatal("not inside the oneid module")
	}
	return filepath.Dir(mod)
}
