package web_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"oneid/app/config"
	"oneid/app/web"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// TestBrowserBrowsesCustomers drives headless Chromium through the customer
// screens of a seeded workspace on the real app (127.0.0.1:0, MySQL): search,
// filter, page forward and back (and the browser's back button), a profile,
// the dashboard; a viewer's masked ids; an admin's erasure; and the list with
// JavaScript off. Screenshots go to $ONEID_ARTIFACTS (or a temporary folder).
func TestBrowserBrowsesCustomers(t *testing.T) {
	chromium := chromiumPath(t)
	h := newHarness(t, dbtest.MySQL(t))
	w := h.workspace("示例咖啡")
	seedCustomers(t, h, w, 180)
	if err := h.db.Exec("UPDATE customers SET nickname = '王小明' WHERE tenant_id = ? AND id IN (SELECT id FROM (SELECT id FROM customers WHERE tenant_id = ? ORDER BY id LIMIT 3) t)",
		w.tenant.ID, w.tenant.ID).Error; err != nil {
		t.Fatal(err)
	}
	apps, err := models.BrowseApps(h.db, w.tenant.ID)
	if err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	app, err := web.New(web.Deps{Config: config.Config{PublicURL: base, Addr: ln.Addr().String()}, DB: h.db, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	list := base + w.path("customers")

	shots := os.Getenv("ONEID_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
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
	deadline, cancelDeadline := context.WithTimeout(first, 300*time.Second)
	defer cancelDeadline()

	step := func(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(ctx context.Context, name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(shots, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	eval := func(ctx context.Context, js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	location := func(ctx context.Context) string {
		t.Helper()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimPrefix(loc, base)
	}
	rowIDs := func(ctx context.Context) string {
		return eval(ctx, `Array.from(document.querySelectorAll('[data-testid="customer-link"]')).map(a => a.getAttribute('href').split('?')[0]).join(',')`)
	}
	// htmxIdle holds once htmx has finished swapping and settling: a click on an
	// element of the old fragment would otherwise be lost.
	const htmxIdle = `document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added') === null`
	// waitFor polls a JavaScript condition: htmx swaps arrive asynchronously.
	waitFor := func(ctx context.Context, what, js string) {
		t.Helper()
		for end := time.Now().Add(30 * time.Second); ; {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
			if err == nil && ok {
				return
			}
			if time.Now().After(end) {
				t.Fatalf("waiting for %s (%s): %v", what, js, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	signIn := func(ctx context.Context, role string) {
		t.Helper()
		step(ctx, "sign in as "+role,
			chromedp.Navigate(base+"/signin"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="signin-form"]`)),
			chromedp.SendKeys(chromedp.CSS("#f-email"), w.people[role].Email),
			chromedp.SendKeys(chromedp.CSS("#f-password"), password),
			chromedp.Click(chromedp.CSS(`[data-testid="signin-submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav"]`)),
		)
	}

	// A marketer opens the list: 50 customers, a total, the filters.
	marketer := deadline
	signIn(marketer, models.RoleMarketer)
	step(marketer, "open the list", chromedp.Navigate(list), chromedp.WaitVisible(chromedp.CSS(`[data-testid="customers"]`)))
	if n := eval(marketer, `String(document.querySelectorAll('[data-testid="customer-row"]').length)`); n != "50" {
		t.Fatalf("%s rows on the first page", n)
	}
	firstPage := rowIDs(marketer)
	shot(marketer, "browse-01-customers")

	// Search by nickname prefix: htmx swaps the results and the URL follows.
	step(marketer, "search", chromedp.SendKeys(chromedp.CSS("#f-q"), "王小"))
	waitFor(marketer, "the search results", `location.search.includes('q=') && document.querySelectorAll('[data-testid="customer-row"]').length === 3`)
	if !strings.Contains(location(marketer), "q=%E7%8E%8B%E5%B0%8F") {
		t.Errorf("after searching the address is %s", location(marketer))
	}
	shot(marketer, "browse-02-search")

	// Filter by app and following, from the form (no search).
	step(marketer, "filter",
		chromedp.Navigate(list),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="customers"]`)),
		chromedp.SetValue(chromedp.CSS(`[data-testid="filter-app"]`), strconv.FormatInt(apps[1].ID, 10)),
	)
	eval(marketer, `document.querySelector('[data-testid="filter-app"]').dispatchEvent(new Event('change', {bubbles: true})); ''`)
	waitFor(marketer, "the app filter", `location.search.includes('app=`+strconv.FormatInt(apps[1].ID, 10)+`')`)
	step(marketer, "follows", chromedp.SetValue(chromedp.CSS(`[data-testid="filter-sub"]`), "yes"))
	eval(marketer, `document.querySelector('[data-testid="filter-sub"]').dispatchEvent(new Event('change', {bubbles: true})); ''`)
	waitFor(marketer, "the follow filter", `location.search.includes('sub=yes') && document.querySelector('[data-testid="customer-total"]') !== null`)
	total := eval(marketer, `document.querySelector('[data-testid="customer-total"]').dataset.total`)
	if total == "" || total == "0" || total == "180" {
		t.Errorf("filtered total %q", total)
	}
	shot(marketer, "browse-03-filtered")

	// Page forward and back through the whole list.
	step(marketer, "clear", chromedp.Navigate(list), chromedp.WaitVisible(chromedp.CSS(`[data-testid="page-next"]`)))
	step(marketer, "next page", chromedp.Click(chromedp.CSS(`[data-testid="page-next"]`)))
	waitFor(marketer, "page 2", `location.search.includes('after=') && document.querySelector('[data-testid="page-prev"]') !== null && `+htmxIdle)
	secondPage := rowIDs(marketer)
	if secondPage == firstPage || secondPage == "" {
		t.Fatal("the next page shows the same customers")
	}
	shot(marketer, "browse-04-page-2")
	step(marketer, "previous page", chromedp.Click(chromedp.CSS(`[data-testid="page-prev"]`)))
	waitFor(marketer, "page 1 again", `location.search.includes('before=') && `+htmxIdle)
	if got := rowIDs(marketer); got != firstPage {
		t.Fatalf("previous page:\n%s\nwant\n%s", got, firstPage)
	}
	step(marketer, "next again", chromedp.Click(chromedp.CSS(`[data-testid="page-next"]`)))
	waitFor(marketer, "page 2 again", `location.search.includes('after=') && `+htmxIdle)
	step(marketer, "browser back", chromedp.NavigateBack())
	waitFor(marketer, "back in history", `location.search.includes('before=')`)
	if got := rowIDs(marketer); got != firstPage {
		t.Fatalf("after the back button:\n%s\nwant\n%s", got, firstPage)
	}

	// A profile, from the list.
	step(marketer, "open a profile",
		chromedp.Click(chromedp.CSS(`[data-testid="customer-link"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="profile"]`)),
	)
	if n := eval(marketer, `String(document.querySelectorAll('[data-testid="identity-row"]').length)`); n == "0" {
		t.Fatal("the profile lists no identities")
	}
	step(marketer, "copy an OpenID", chromedp.Click(chromedp.CSS(`[data-testid="identity-openid-copy"]`)))
	shot(marketer, "browse-05-profile")
	step(marketer, "back to the list", chromedp.Click(chromedp.CSS(`[data-testid="back-to-list"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="customers"]`)))

	// The dashboard.
	step(marketer, "dashboard", chromedp.Navigate(base+w.path("dashboard")), chromedp.WaitVisible(chromedp.CSS(`[data-testid="overlap"]`)))
	if got := eval(marketer, `document.querySelector('[data-testid="stat-unique"]').textContent`); got != "180" {
		t.Errorf("unique customers %q", got)
	}
	shot(marketer, "browse-06-dashboard")
	// The switch posts a form and the page reloads: wait for the English page
	// itself, not the Chinese one still on screen, before the screenshot.
	step(marketer, "English", chromedp.Click(chromedp.CSS(`[data-testid="locale-switch"] button[value="en"]`)))
	waitFor(marketer, "the English dashboard", `document.documentElement.lang === "en" && document.readyState === "complete" && document.querySelector('[data-testid="overlap"]') !== null`)
	shot(marketer, "browse-07-dashboard-en")

	// A viewer, in a browser of their own, sees ids masked.
	viewer, cancelViewer := chromedp.NewContext(first, chromedp.WithNewBrowserContext())
	defer cancelViewer()
	if err := chromedp.Do(viewer, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	signIn(viewer, models.RoleViewer)
	step(viewer, "viewer list", chromedp.Navigate(list), chromedp.WaitVisible(chromedp.CSS(`[data-testid="masked-note"]`)))
	if ids := eval(viewer, `Array.from(document.querySelectorAll('[data-testid="row-unionid"]')).map(c => c.textContent).join(' ')`); !strings.HasPrefix(ids, "••••") {
		t.Errorf("a viewer sees UnionIDs %.80s", ids)
	}
	step(viewer, "viewer profile", chromedp.Click(chromedp.CSS(`[data-testid="customer-link"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="profile"]`)))
	if eval(viewer, `String(document.querySelector('[data-testid="identity-openid-copy"]') !== null)`) == "true" {
		t.Error("a viewer gets copy buttons")
	}
	shot(viewer, "browse-08-viewer-profile")

	// An admin erases a customer, after confirming.
	admin, cancelAdmin := chromedp.NewContext(first, chromedp.WithNewBrowserContext())
	defer cancelAdmin()
	if err := chromedp.Do(admin, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	signIn(admin, models.RoleAdmin)
	step(admin, "admin profile", chromedp.Navigate(list), chromedp.Click(chromedp.CSS(`[data-testid="customer-link"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="delete-customer"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="delete-customer"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="delete-confirm"]`)),
	)
	shot(admin, "browse-09-delete-confirm")
	step(admin, "delete", chromedp.Click(chromedp.CSS(`[data-testid="delete-submit"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="alert-info"]`)))
	if got := eval(admin, `document.querySelector('[data-testid="customer-total"]').dataset.total`); got != "179" {
		t.Errorf("after deleting, %s customers", got)
	}

	// With JavaScript off the form still works: a plain GET, redirected to
	// the short address, and the pager links are ordinary links.
	noJS, cancelNoJS := chromedp.NewContext(first, chromedp.WithNewBrowserContext())
	defer cancelNoJS()
	if err := chromedp.Do(noJS, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	signIn(noJS, models.RoleMarketer)
	if _, err := chromedp.Call(noJS, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	step(noJS, "no-JS filter",
		chromedp.Navigate(list),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="filter-linked"]`)),
		chromedp.SetValue(chromedp.CSS(`[data-testid="filter-linked"]`), "no"),
		chromedp.Click(chromedp.CSS(`[data-testid="filter-submit"]`)),
	)
	for end := time.Now().Add(30 * time.Second); location(noJS) != w.path("customers?linked=no"); {
		if time.Now().After(end) {
			t.Fatalf("without JavaScript the form led to %s", location(noJS))
		}
		time.Sleep(50 * time.Millisecond)
	}
	step(noJS, "no-JS results", chromedp.WaitVisible(chromedp.CSS(`[data-testid="customer-total"]`)))
	shot(noJS, "browse-10-no-javascript")
}
