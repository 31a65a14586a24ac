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

	"github.com/chromedp/chromedp"

	"oneid/app/config"
	"oneid/app/export"
	"oneid/app/jobs"
	"oneid/app/web"
	"oneid/app/web/browsertest"
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

	downloads := t.TempDir()
	b := browsertest.Start(t, browsertest.Options{Within: 180 * time.Second, Downloads: downloads})
	tab := b.Tab()

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
	tab.Do("sign in",
		chromedp.Navigate(base+"/signin"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="signin-form"]`)),
		chromedp.SendKeys(chromedp.CSS("#f-email"), w.people[models.RoleMarketer].Email),
		chromedp.SendKeys(chromedp.CSS("#f-password"), password),
		chromedp.Click(chromedp.CSS(`[data-testid="signin-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav"]`)),
	)
	tab.Do("followers", chromedp.Navigate(base+w.path("customers?sub=yes")), chromedp.WaitVisible(chromedp.CSS(`[data-testid="customers-export"]`)))
	tab.Shot("export-01-customers")
	tab.Do("open the export", chromedp.Click(chromedp.CSS(`[data-testid="customers-export"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="export-count"]`)))
	rows, _ := strconv.Atoi(tab.Attr(`[data-testid="export-count"]`, "data-rows"))
	if rows == 0 || rows > 110 || tab.Attr(`[data-testid="export-delivery"]`, "data-stream") != "true" {
		t.Fatalf("confirmation: %d rows, stream=%s", rows, tab.Attr(`[data-testid="export-delivery"]`, "data-stream"))
	}
	tab.Shot("export-02-confirm")
	tab.Do("download", chromedp.Click(chromedp.CSS(`[data-testid="export-submit"]`)))
	name, recs := downloaded(1)
	if len(recs)-1 != rows || recs[0][0] != "客户ID" || !strings.HasPrefix(name, "导出咖啡") && !strings.Contains(name, "customers") {
		t.Fatalf("downloaded %s: %d rows (confirmed %d), header %q", name, len(recs)-1, rows, recs[0])
	}

	// Everyone, in identities: above the limit, so a background export.
	tab.Do("everyone", chromedp.Navigate(base+w.path("customers/export?shape=identities")), chromedp.WaitVisible(chromedp.CSS(`[data-testid="export-count"]`)))
	if tab.Attr(`[data-testid="export-delivery"]`, "data-stream") != "false" {
		t.Fatal("the export of everyone should run in the background")
	}
	identities, _ := strconv.Atoi(tab.Attr(`[data-testid="export-count"]`, "data-rows"))
	stopRunner() // hold the job back a moment, to see it queued
	stopRunner = func() {}
	tab.Do("start", chromedp.Click(chromedp.CSS(`[data-testid="export-submit"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="export-list"]`)))
	if tab.Attr(`[data-testid="export-row"]`, "data-state") != models.ExportQueued || tab.Attr(`[data-testid="export-list"]`, "data-live") != "true" {
		t.Fatalf("the new export: %s", tab.Attr(`[data-testid="export-row"]`, "data-state"))
	}
	tab.Shot("export-03-exports-queued")
	stopRunner = startRunner()
	// The page refreshes itself (htmx, every 2 s) until the file is ready.
	tab.WaitFor("the file", `document.querySelector('[data-testid="export-download"]') !== null`, 60*time.Second)
	if tab.Attr(`[data-testid="export-list"]`, "data-live") == "true" {
		t.Error("the list still refreshes itself with nothing running")
	}
	tab.Shot("export-04-exports-ready")
	tab.Do("download the file", chromedp.Click(chromedp.CSS(`[data-testid="export-download"]`)))
	_, recs = downloaded(2)
	if len(recs)-1 != identities || len(recs[0]) != 10 {
		t.Fatalf("the kept file: %d rows, want %d; header %q", len(recs)-1, identities, recs[0])
	}

	// A viewer has no export control.
	viewer := b.Window()
	viewer.Do("the viewer's list",
		chromedp.Navigate(base+"/signin"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="signin-form"]`)),
		chromedp.SendKeys(chromedp.CSS("#f-email"), w.people[models.RoleViewer].Email),
		chromedp.SendKeys(chromedp.CSS("#f-password"), password),
		chromedp.Click(chromedp.CSS(`[data-testid="signin-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav"]`)),
		chromedp.Navigate(base+w.path("customers")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="customers"]`)),
	)
	if viewer.Attr(`[data-testid="customers-export"]`, "href") != "" || viewer.Attr(`[data-testid="nav-exports"]`, "href") != "" {
		t.Fatal("the viewer sees an export control")
	}
	viewer.Shot("export-05-viewer-list")
}
