package web_test

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"oneid/app/config"
	"oneid/app/web"
	"oneid/app/web/browsertest"
	"oneid/migrations/dbtest"
)

// TestBrowserJourney drives headless Chromium through the real HTTP app on
// 127.0.0.1:0 backed by MySQL: sign up, sign in, invite a marketer, accept in
// a second browser context; the marketer cannot open Members and does not see
// it. Screenshots go to $ONEID_ARTIFACTS (or a temporary folder).
func TestBrowserJourney(t *testing.T) {
	db := dbtest.MySQL(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	app, err := web.New(web.Deps{
		Config: config.Config{PublicURL: base, Addr: ln.Addr().String()},
		DB:     db,
		Log:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })

	b := browsertest.Start(t, browsertest.Options{Within: 90 * time.Second})
	admin := b.Tab()
	location := func(p *browsertest.Tab) string { return strings.TrimPrefix(p.Location(), base) }

	// Sign up: the company and its first admin.
	admin.Do("open sign-up",
		chromedp.Navigate(base+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="signup-form"]`)),
	)
	admin.Do("fill sign-up",
		chromedp.SendKeys(chromedp.CSS("#f-company"), "Acme Coffee 阿克米咖啡"),
		chromedp.SendKeys(chromedp.CSS("#f-principal"), "阿克米咖啡（上海）有限公司"),
		chromedp.SendKeys(chromedp.CSS("#f-name"), "王小明"),
		chromedp.SendKeys(chromedp.CSS("#f-email"), "owner@acme.example"),
		chromedp.SendKeys(chromedp.CSS("#f-password"), "correct horse battery"),
	)
	admin.Shot("01-signup")
	if status := admin.Click("sign up", `[data-testid="signup-submit"]`); status != 200 {
		t.Fatalf("sign-up answered %d", status)
	}
	if loc := location(admin); loc != "/t/acme-coffee/dashboard" {
		t.Fatalf("after sign-up: %s", loc)
	}
	admin.Shot("02-dashboard-admin")
	// htmx loads from /static under the CSP and reads the config meta.
	if ok, err := chromedp.Run(admin.Ctx, chromedp.Evaluate[bool](`typeof htmx === 'object' && htmx.config.includeIndicatorStyles === false`)); err != nil || !ok {
		t.Fatalf("htmx is not loaded and configured: %v", err)
	}

	// Sign out, then sign in.
	admin.Click("sign out", `[data-testid="sign-out"]`)
	admin.Do("fill sign-in",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="signin-form"]`)),
		chromedp.SendKeys(chromedp.CSS("#f-email"), "owner@acme.example"),
		chromedp.SendKeys(chromedp.CSS("#f-password"), "wrong password"),
	)
	if status := admin.Click("wrong password", `[data-testid="signin-submit"]`); status != 401 {
		t.Fatalf("a wrong password answered %d", status)
	}
	admin.Shot("03-signin-failed")
	admin.Do("fill sign-in again", chromedp.SendKeys(chromedp.CSS("#f-password"), "correct horse battery"))
	admin.Click("sign in", `[data-testid="signin-submit"]`)
	if loc := location(admin); loc != "/t/acme-coffee/dashboard" {
		t.Fatalf("after sign-in: %s", loc)
	}

	// Invite a marketer.
	admin.Do("open members",
		chromedp.Navigate(base+"/t/acme-coffee/members"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="invite-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="invite-form"] #f-email`), "mia@acme.example"),
		chromedp.SetValue(chromedp.CSS(`[data-testid="invite-role"]`), "marketer"),
	)
	admin.Click("invite", `[data-testid="invite-submit"]`)
	link, err := chromedp.Run(admin.Ctx, chromedp.Value(chromedp.CSS(`[data-testid="invite-link"]`)))
	if err != nil || !strings.HasPrefix(link, base+"/invitations/") {
		t.Fatalf("invitation link %q: %v", link, err)
	}
	admin.Shot("04-members-invite-link")

	// Accept in a second browser context: no cookies shared with the admin's.
	marketer := b.Window()
	marketer.Do("accept form",
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="accept-form"]`)),
		chromedp.SendKeys(chromedp.CSS("#f-name"), "Mia Chen"),
		chromedp.SendKeys(chromedp.CSS("#f-password"), "mia's long password"),
	)
	marketer.Shot("05-accept-invitation")
	marketer.Click("accept", `[data-testid="accept-submit"]`)
	if loc := location(marketer); loc != "/t/acme-coffee/dashboard" {
		t.Fatalf("after accepting: %s", loc)
	}
	if marketer.Exists(`[data-testid="nav-members"]`) || !marketer.Exists(`[data-testid="nav-exports"]`) {
		t.Fatal("the marketer's menu should have Exports and not Members")
	}
	marketer.Shot("06-dashboard-marketer")
	res, err := chromedp.Run(marketer.Ctx, chromedp.NavigateResponse(base+"/t/acme-coffee/members"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 403 || !marketer.Exists(`[data-testid="error"][data-status="403"]`) {
		t.Fatalf("the marketer opening Members: %d", res.Status)
	}
	marketer.Shot("07-marketer-members-forbidden")

	// The admin sees the new member, in English, and the audit log.
	admin.Do("members in English", chromedp.Navigate(base+"/t/acme-coffee/members"))
	admin.Click("switch to English", `[data-testid="locale-switch"] button[value="en"]`)
	if !admin.Exists(`[data-testid="member-row"][data-email="mia@acme.example"]`) {
		t.Fatal("the new marketer is not in the member list")
	}
	admin.Shot("08-members-en")
	admin.Do("audit log", chromedp.Navigate(base+"/t/acme-coffee/audit"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="audit"]`)))
	admin.Shot("09-audit-en")
	admin.Do("switcher", chromedp.Navigate(base+"/tenants"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="workspaces"]`)))
	admin.Shot("10-workspaces-en")

	// Settings: an API key for the company's backend, shown once.
	admin.Do("settings",
		chromedp.Navigate(base+"/t/acme-coffee/settings"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="key-form"]`)),
		chromedp.SendKeys(chromedp.CSS("#f-name"), "mini-program backend"),
	)
	admin.Click("create a key", `[data-testid="key-submit"]`)
	if key := admin.String(`document.querySelector('[data-testid="new-key"]').value`); !strings.HasPrefix(key, "oneid_") {
		t.Fatalf("the new key field holds %q", key)
	}
	admin.Shot("11-settings-new-key-en")
}
