package web_test

import (
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"oneid/app/config"
	"oneid/app/web"
	"oneid/app/web/browsertest"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// TestBrowserBrowsesCustomers drives headless Chromium through the customer
// screens of a seeded workspace on the real app (127.0.0.1:0, MySQL): search,
// filter, page forward and back (and the browser's back button), a profile,
// the dashboard; a viewer's masked ids; an admin's erasure; and the list with
// JavaScript off. Screenshots go to $ONEID_ARTIFACTS (or a temporary folder).
func TestBrowserBrowsesCustomers(t *testing.T) {
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

	b := browsertest.Start(t, browsertest.Options{Within: 300 * time.Second})
	location := func(p *browsertest.Tab) string { return strings.TrimPrefix(p.Location(), base) }
	rowIDs := func(p *browsertest.Tab) string {
		return p.String(`Array.from(document.querySelectorAll('[data-testid="customer-link"]')).map(a => a.getAttribute('href').split('?')[0]).join(',')`)
	}
	// htmxIdle holds once htmx has finished swapping and settling: a click on an
	// element of the old fragment would otherwise be lost.
	const htmxIdle = `document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added') === null`
	signIn := func(p *browsertest.Tab, role string) {
		t.Helper()
		p.Do("sign in as "+role,
			chromedp.Navigate(base+"/signin"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="signin-form"]`)),
			chromedp.SendKeys(chromedp.CSS("#f-email"), w.people[role].Email),
			chromedp.SendKeys(chromedp.CSS("#f-password"), password),
			chromedp.Click(chromedp.CSS(`[data-testid="signin-submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav"]`)),
		)
	}

	// A marketer opens the list: 50 customers, a total, the filters.
	marketer := b.Tab()
	signIn(marketer, models.RoleMarketer)
	marketer.Do("open the list", chromedp.Navigate(list), chromedp.WaitVisible(chromedp.CSS(`[data-testid="customers"]`)))
	if n := marketer.String(`String(document.querySelectorAll('[data-testid="customer-row"]').length)`); n != "50" {
		t.Fatalf("%s rows on the first page", n)
	}
	firstPage := rowIDs(marketer)
	marketer.Shot("browse-01-customers")

	// Search by nickname prefix: htmx swaps the results and the URL follows.
	marketer.Do("search", chromedp.SendKeys(chromedp.CSS("#f-q"), "王小"))
	marketer.WaitFor("the search results", `location.search.includes('q=') && document.querySelectorAll('[data-testid="customer-row"]').length === 3`, 30*time.Second)
	if !strings.Contains(location(marketer), "q=%E7%8E%8B%E5%B0%8F") {
		t.Errorf("after searching the address is %s", location(marketer))
	}
	marketer.Shot("browse-02-search")

	// Filter by app and following, from the form (no search).
	marketer.Do("filter",
		chromedp.Navigate(list),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="customers"]`)),
		chromedp.SetValue(chromedp.CSS(`[data-testid="filter-app"]`), strconv.FormatInt(apps[1].ID, 10)),
	)
	marketer.String(`document.querySelector('[data-testid="filter-app"]').dispatchEvent(new Event('change', {bubbles: true})); ''`)
	marketer.WaitFor("the app filter", `location.search.includes('app=`+strconv.FormatInt(apps[1].ID, 10)+`')`, 30*time.Second)
	marketer.Do("follows", chromedp.SetValue(chromedp.CSS(`[data-testid="filter-sub"]`), "yes"))
	marketer.String(`document.querySelector('[data-testid="filter-sub"]').dispatchEvent(new Event('change', {bubbles: true})); ''`)
	marketer.WaitFor("the follow filter", `location.search.includes('sub=yes') && document.querySelector('[data-testid="customer-total"]') !== null`, 30*time.Second)
	total := marketer.String(`document.querySelector('[data-testid="customer-total"]').dataset.total`)
	if total == "" || total == "0" || total == "180" {
		t.Errorf("filtered total %q", total)
	}
	marketer.Shot("browse-03-filtered")

	// Page forward and back through the whole list.
	marketer.Do("clear", chromedp.Navigate(list), chromedp.WaitVisible(chromedp.CSS(`[data-testid="page-next"]`)))
	marketer.Do("next page", chromedp.Click(chromedp.CSS(`[data-testid="page-next"]`)))
	marketer.WaitFor("page 2", `location.search.includes('after=') && document.querySelector('[data-testid="page-prev"]') !== null && `+htmxIdle, 30*time.Second)
	secondPage := rowIDs(marketer)
	if secondPage == firstPage || secondPage == "" {
		t.Fatal("the next page shows the same customers")
	}
	marketer.Shot("browse-04-page-2")
	marketer.Do("previous page", chromedp.Click(chromedp.CSS(`[data-testid="page-prev"]`)))
	marketer.WaitFor("page 1 again", `location.search.includes('before=') && `+htmxIdle, 30*time.Second)
	if got := rowIDs(marketer); got != firstPage {
		t.Fatalf("previous page:\n%s\nwant\n%s", got, firstPage)
	}
	marketer.Do("next again", chromedp.Click(chromedp.CSS(`[data-testid="page-next"]`)))
	marketer.WaitFor("page 2 again", `location.search.includes('after=') && `+htmxIdle, 30*time.Second)
	marketer.Do("browser back", chromedp.NavigateBack())
	marketer.WaitFor("back in history", `location.search.includes('before=')`, 30*time.Second)
	if got := rowIDs(marketer); got != firstPage {
		t.Fatalf("after the back button:\n%s\nwant\n%s", got, firstPage)
	}

	// A profile, from the list.
	marketer.Do("open a profile",
		chromedp.Click(chromedp.CSS(`[data-testid="customer-link"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="profile"]`)),
	)
	if n := marketer.String(`String(document.querySelectorAll('[data-testid="identity-row"]').length)`); n == "0" {
		t.Fatal("the profile lists no identities")
	}
	marketer.Do("copy an OpenID", chromedp.Click(chromedp.CSS(`[data-testid="identity-openid-copy"]`)))
	marketer.Shot("browse-05-profile")
	marketer.Do("back to the list", chromedp.Click(chromedp.CSS(`[data-testid="back-to-list"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="customers"]`)))

	// The dashboard.
	marketer.Do("dashboard", chromedp.Navigate(base+w.path("dashboard")), chromedp.WaitVisible(chromedp.CSS(`[data-testid="overlap"]`)))
	if got := marketer.String(`document.querySelector('[data-testid="stat-unique"]').textContent`); got != "180" {
		t.Errorf("unique customers %q", got)
	}
	marketer.Shot("browse-06-dashboard")
	// The switch posts a form and the page reloads: wait for the English page
	// itself, not the Chinese one still on screen, before the screenshot.
	marketer.Do("English", chromedp.Click(chromedp.CSS(`[data-testid="locale-switch"] button[value="en"]`)))
	marketer.WaitFor("the English dashboard", `document.documentElement.lang === "en" && document.readyState === "complete" && document.querySelector('[data-testid="overlap"]') !== null`, 30*time.Second)
	marketer.Shot("browse-07-dashboard-en")

	// A viewer, in a browser of their own, sees ids masked.
	viewer := b.Window()
	signIn(viewer, models.RoleViewer)
	viewer.Do("viewer list", chromedp.Navigate(list), chromedp.WaitVisible(chromedp.CSS(`[data-testid="masked-note"]`)))
	if ids := viewer.String(`Array.from(document.querySelectorAll('[data-testid="row-unionid"]')).map(c => c.textContent).join(' ')`); !strings.HasPrefix(ids, "••••") {
		t.Errorf("a viewer sees UnionIDs %.80s", ids)
	}
	viewer.Do("viewer profile", chromedp.Click(chromedp.CSS(`[data-testid="customer-link"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="profile"]`)))
	if viewer.String(`String(document.querySelector('[data-testid="identity-openid-copy"]') !== null)`) == "true" {
		t.Error("a viewer gets copy buttons")
	}
	viewer.Shot("browse-08-viewer-profile")

	// An admin erases a customer, after confirming.
	admin := b.Window()
	signIn(admin, models.RoleAdmin)
	admin.Do("admin profile", chromedp.Navigate(list), chromedp.Click(chromedp.CSS(`[data-testid="customer-link"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="delete-customer"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="delete-customer"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="delete-confirm"]`)),
	)
	admin.Shot("browse-09-delete-confirm")
	admin.Do("delete", chromedp.Click(chromedp.CSS(`[data-testid="delete-submit"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="alert-info"]`)))
	if got := admin.String(`document.querySelector('[data-testid="customer-total"]').dataset.total`); got != "179" {
		t.Errorf("after deleting, %s customers", got)
	}

	// With JavaScript off the form still works: a plain GET, redirected to
	// the short address, and the pager links are ordinary links.
	noJS := b.Window()
	signIn(noJS, models.RoleMarketer)
	if _, err := chromedp.Call(noJS.Ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	noJS.Do("no-JS filter",
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
	noJS.Do("no-JS results", chromedp.WaitVisible(chromedp.CSS(`[data-testid="customer-total"]`)))
	noJS.Shot("browse-10-no-javascript")
}
