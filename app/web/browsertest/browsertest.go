// Package browsertest drives headless Chromium for OneID's browser tests: one
// place for the flags that work on a closed network, the screenshots folder
// and the small steps every screen test repeats (act, look, wait, read).
package browsertest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// Chromium finds a Chromium. Without one the test is skipped on a developer's
// machine and fails under CI=true.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is required under CI=true: apt-get install -y chromium")
	}
	t.Skip("Chromium not installed (apt-get install -y chromium); the browser test needs it")
	return ""
}

// ShotsDir is where screenshots go: $ONEID_ARTIFACTS, or a temporary folder.
func ShotsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("ONEID_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Options tune a browser. The zero value is a zh-CN browser, 1366×860, with
// three minutes for the whole test.
type Options struct {
	Lang      string        // Accept-Language's first language; "zh-CN" by default
	Within    time.Duration // the deadline of every tab; 3 minutes by default
	Downloads string        // when set, downloads are allowed into this folder
}

// Browser is one headless Chromium for one test.
type Browser struct {
	t     testing.TB
	root  context.Context // the first tab, without a deadline
	shots string
	opts  Options
}

// Start launches Chromium (or skips, see Chromium) and stops it when the test
// ends.
func Start(t testing.TB, opts Options) *Browser {
	t.Helper()
	path := Chromium(t)
	if opts.Lang == "" {
		opts.Lang = "zh-CN"
	}
	if opts.Within == 0 {
		opts.Within = 3 * time.Minute
	}
	accept := opts.Lang
	if opts.Lang == "zh-CN" {
		accept = "zh-CN,zh"
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", opts.Lang),
		chromedp.Flag("accept-lang", accept),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 860),
	)
	root, cancelRoot := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelRoot(); cancelAlloc() })
	// The first run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(root, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	if opts.Downloads != "" {
		yes := true
		if _, err := chromedp.CallBrowser(root, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: opts.Downloads, EventsEnabled: &yes}); err != nil {
			t.Fatalf("allow downloads: %v", err)
		}
	}
	return &Browser{t: t, root: root, shots: ShotsDir(t), opts: opts}
}

// Tab is the browser's first tab.
func (b *Browser) Tab() *Tab { return b.tab(b.root) }

// Window opens a new browser context: a visitor who shares no cookies with
// the other tabs.
func (b *Browser) Window() *Tab {
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	return b.tab(ctx)
}

func (b *Browser) tab(ctx context.Context) *Tab {
	ctx, cancel := context.WithTimeout(ctx, b.opts.Within)
	b.t.Cleanup(cancel)
	return &Tab{t: b.t, Ctx: ctx, shots: b.shots}
}

// Tab is one tab of a browser; every method fails the test on error.
type Tab struct {
	t     testing.TB
	Ctx   context.Context
	shots string
}

// Do runs the actions, failing the test with what on error.
func (p *Tab) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.Ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// Click clicks the element and waits for the navigation it starts, returning
// its status (0 when the click navigated nowhere).
func (p *Tab) Click(what, selector string) int64 {
	p.t.Helper()
	res, err := chromedp.RunResponse(p.Ctx, chromedp.Click(chromedp.CSS(selector)))
	if err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
	if res == nil {
		return 0
	}
	return res.Status
}

// Shot saves a full-page PNG as name.png in the screenshots folder.
func (p *Tab) Shot(name string) string {
	p.t.Helper()
	png, err := chromedp.Run(p.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(p.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
	return path
}

// Location is the tab's URL.
func (p *Tab) Location() string {
	p.t.Helper()
	loc, err := chromedp.Run(p.Ctx, chromedp.Location())
	if err != nil {
		p.t.Fatal(err)
	}
	return loc
}

// Text is the visible text of the first element matching selector (it waits
// for one).
func (p *Tab) Text(selector string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.Ctx, chromedp.Text(chromedp.CSS(selector)))
	if err != nil {
		p.t.Fatalf("text of %s: %v", selector, err)
	}
	return s
}

// Eval evaluates a JavaScript expression of type T.
func Eval[T any](p *Tab, js string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.Ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.t.Fatalf("%s: %v", js, err)
	}
	return v
}

// String evaluates a JavaScript expression that yields a string.
func (p *Tab) String(js string) string { p.t.Helper(); return Eval[string](p, js) }

// Exists tells whether an element matches selector now.
func (p *Tab) Exists(selector string) bool {
	p.t.Helper()
	return Eval[bool](p, `document.querySelector(`+JS(selector)+`) !== null`)
}

// Attr is an attribute of the first element matching selector, or "" when
// there is none.
func (p *Tab) Attr(selector, name string) string {
	p.t.Helper()
	return p.String(`(document.querySelector(` + JS(selector) + `) || {getAttribute: () => ''}).getAttribute(` + JS(name) + `) || ''`)
}

// WaitFor polls a JavaScript condition until it is true, failing the test
// after within.
func (p *Tab) WaitFor(what, cond string, within time.Duration) {
	p.t.Helper()
	for end := time.Now().Add(within); ; {
		ok, err := chromedp.Run(p.Ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return
		}
		if time.Now().After(end) {
			p.t.Fatalf("waiting for %s (%s): %v", what, cond, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// JS quotes s as a JavaScript string literal.
func JS(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
