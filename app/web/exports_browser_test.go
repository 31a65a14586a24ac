package web_test

import (
	"context"
	"encoding/csv"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"oneid/app/config"
	"oneid/app/export"
	"oneid/app/jobs"
	"oneid/app/web"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// TestBrowserExports drives headless Chromium through exports on the real app
// (127.0.0.1:0, MySQL): a marketer filters the list, opens the export, sees
// the count, downloads the CSV straight away and reads it back; then exports
// everyone, which is above the limit and runs in the background: the Exports
// page shows it queued and refreshes itself until the file is ready, and the
// file downloads. A viewer's list has no export control. Screenshots go to
// $ONEID_ARTIFACTS (or a temporary folder).
func TestBrowserExports(t *testing.T) {
	chromium := chromiumPath(t)
	h := newHarness(t, dbtest.MySQL(t))
	w := h.workspace("导出咖啡")
	seedCustomers(t, h, w, 120)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg := config.Config{PublicURL: base, Addr: ln.Addr().String(), Export: config.Export{StreamMax: 110}}
	app, err := web.New(web.Deps{Config: cfg, DB: h.db, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	// The job runner of this instance, as serve runs it.
	runner := jobs.New(jobs.Config{DB: h.db, Poll: 200 * time.Millisecond, Heartbeat: 300 * time.Millisecond})
	runner.Register(export.New(export.Config{DB: h.db, BatchSize: 25}).Kind())
	startRunner := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = runner.Run(ctx) }()
		return func() { cancel(); <-done }
	}
	stopRunner := startRunner()
	defer func() { stopRunner() }()

	shots := os.Getenv("ONEID_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	downloads := t.TempDir()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "zh-CN"),
		chromedp.Flag("accept-lang", "zh-CN,zh"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 860),
	)
	defer cancelAlloc()
	first, cancelFirst := chromedp.NewContext(allocCtx)
	defer cancelFirst()
	if err := chromedp.Do(first, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	yes := true
	if _, err := chromedp.CallBrowser(first, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads, EventsEnabled: &yes}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	ctx, cancelDeadline := context.WithTimeout(first, 180*time.Second)
	defer cancelDeadline()

	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(c context.Context, name string) {
		t.Helper()
		png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(shots, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	attr := func(c context.Context, selector, name string) string {
		t.Helper()
		v, err := chromedp.Run(c, chromedp.Evaluate[string](`(document.querySelector(`+jsString(selector)+`) || {getAttribute: () => ''}).getAttribute(`+jsString(name)+`) || ''`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	waitFor := func(what, js string, within time.Duration) {
		t.Helper()
		for end := time.Now().Add(within); ; {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
			if err == nil && ok {
				return
			}
			if time.Now().After(end) {
				t.Fatalf("waiting for %s (%s): %v", what, js, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// downloaded waits for the n-th finished CSV in the download folder and
	// reads it.
	downloaded := func(n int) (string, [][]string) {
		t.Helper()
		for end := time.Now().Add(60 * time.Second); ; {
			files, _ := filepath.Glob(filepath.Join(downloads, "*.csv"))
			partial, _ := filepath.Glob(filepath.Join(downloads, "*.crdownload"))
			if len(files) >= n && len(partial) == 0 {
				newest := files[0]
				for _, f := range files {
					a, _ := os.Stat(f)
					b, _ := os.Stat(newest)
					if a.ModTime().After(b.ModTime()) {
						newest = f
					}
				}
				body, err := os.ReadFile(newest)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(string(body), "\uFEFF") {
					t.Errorf("%s has no byte order mark", newest)
				}
				recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(body), "\uFEFF"))).ReadAll()
				if err != nil {
					t.Fatalf("%s is not CSV: %v", newest, err)
				}
				return filepath.Base(newest), recs
			}
			if time.Now().After(end) {
				t.Fatalf("no download %d in %s: %v %v", n, downloads, files, partial)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The marketer filters the list to followers and opens the export.
	step("sign in",
		chromedp.Navigate(base+"/signin"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="signin-form"]`)),
		chromedp.SendKeys(chromedp.CSS("#f-email"), w.people[models.RoleMarketer].Email),
		chromedp.SendKeys(chromedp.CSS("#f-password"), password),
		chromedp.Click(chromedp.CSS(`[data-testid="signin-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav"]`)),
	)
	step("followers", chromedp.Navigate(base+w.path("customers?sub=yes")), chromedp.WaitVisible(chromedp.CSS(`[data-testid="customers-export"]`)))
	shot(ctx, "export-01-customers")
	step("open the export", chromedp.Click(chromedp.CSS(`[data-testid="customers-export"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="export-count"]`)))
	rows, _ := strconv.Atoi(attr(ctx, `[data-testid="export-count"]`, "data-rows"))
	if rows == 0 || rows > 110 || attr(ctx, `[data-testid="export-delivery"]`, "data-stream") != "true" {
		t.Fatalf("confirmation: %d rows, stream=%s", rows, attr(ctx, `[data-testid="export-delivery"]`, "data-stream"))
	}
	shot(ctx, "export-02-confirm")
	step("download", chromedp.Click(chromedp.CSS(`[data-testid="export-submit"]`)))
	name, recs := downloaded(1)
	if len(recs)-1 != rows || recs[0][0] != "客户ID" || !strings.HasPrefix(name, "导出咖啡") && !strings.Contains(name, "customers") {
		t.Fatalf("downloaded %s: %d rows (confirmed %d), header %q", name, len(recs)-1, rows, recs[0])
	}

	// Everyone, in identities: above the limit, so a background export.
	step("everyone", chromedp.Navigate(base+w.path("customers/export?shape=identities")), chromedp.WaitVisible(chromedp.CSS(`[data-testid="export-count"]`)))
	if attr(ctx, `[data-testid="export-delivery"]`, "data-stream") != "false" {
		t.Fatal("the export of everyone should run in the background")
	}
	identities, _ := strconv.Atoi(attr(ctx, `[data-testid="export-count"]`, "data-rows"))
	stopRunner() // hold the job back a moment, to see it queued
	stopRunner = func() {}
	step("start", chromedp.Click(chromedp.CSS(`[data-testid="export-submit"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="export-list"]`)))
	if attr(ctx, `[data-testid="export-row"]`, "data-state") != models.ExportQueued || attr(ctx, `[data-testid="export-list"]`, "data-live") != "true" {
		t.Fatalf("the new export: %s", attr(ctx, `[data-testid="export-row"]`, "data-state"))
	}
	shot(ctx, "export-03-exports-queued")
	stopRunner = startRunner()
	// The page refreshes itself (htmx, every 2 s) until the file is ready.
	waitFor("the file", `document.querySelector('[data-testid="export-download"]') !== null`, 60*time.Second)
	if attr(ctx, `[data-testid="export-list"]`, "data-live") == "true" {
		t.Error("the list still refreshes itself with nothing running")
	}
	shot(ctx, "export-04-exports-ready")
	step("download the file", chromedp.Click(chromedp.CSS(`[data-testid="export-download"]`)))
	_, recs = downloaded(2)
	if len(recs)-1 != identities || len(recs[0]) != 10 {
		t.Fatalf("the kept file: %d rows, want %d; header %q", len(recs)-1, identities, recs[0])
	}

	// A viewer has no export control.
	viewer, cancelViewer := chromedp.NewContext(first, chromedp.WithNewBrowserContext())
	defer cancelViewer()
	if err := chromedp.Do(viewer,
		chromedp.Navigate(base+"/signin"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="signin-form"]`)),
		chromedp.SendKeys(chromedp.CSS("#f-email"), w.people[models.RoleViewer].Email),
		chromedp.SendKeys(chromedp.CSS("#f-password"), password),
		chromedp.Click(chromedp.CSS(`[data-testid="signin-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav"]`)),
		chromedp.Navigate(base+w.path("customers")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="customers"]`)),
	); err != nil {
		t.Fatal(err)
	}
	if attr(viewer, `[data-testid="customers-export"]`, "href") != "" || attr(viewer, `[data-testid="nav-exports"]`, "href") != "" {
		t.Fatal("the viewer sees an export control")
	}
	shot(viewer, "export-05-viewer-list")
}
