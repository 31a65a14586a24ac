package web_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"oneid/app/config"
	"oneid/app/web"
	"oneid/migrations/dbtest"
)

// chromiumPath finds a Chromium. Without one the browser test is skipped on a
// developer's machine and fails under CI=true.
func chromiumPath(t *testing.T) string {
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

// TestBrowserJourney drives headless Chromium through the real HTTP app on
// 127.0.0.1:0 backed by MySQL: sign up, sign in, invite a marketer, accept in
// a second browser context; the marketer cannot open Members and does not see
// it. Screenshots go to $ONEID_ARTIFACTS (or a temporary folder).
func TestBrowserJourney(t *testing.T) {
	chromium := chromiumPath(t)
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
	admin, cancelAdmin := chromedp.NewContext(allocCtx)
	defer cancelAdmin()
	// The first run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(admin, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	deadline, cancelDeadline := context.WithTimeout(admin, 90*time.Second)
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
	submit := func(ctx context.Context, what, button string) int64 {
		t.Helper()
		res, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(button)))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return res.Status
	}
	location := func(ctx context.Context) string {
		t.Helper()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimPrefix(loc, base)
	}
	exists := func(ctx context.Context, selector string) bool {
		t.Helper()
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector(`+jsString(selector)+`) !== null`))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	// Sign up: the company and its first admin.
	step(deadline, "open sign-up",
		chromedp.Navigate(base+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="signup-form"]`)),
	)
	step(deadline, "fill sign-up",
		chromedp.SendKeys(chromedp.CSS("#f-company"), "Acme Coffee 阿克米咖啡"),
		chromedp.SendKeys(chromedp.CSS("#f-principal"), "阿克米咖啡（上海）有限公司"),
		chromedp.SendKeys(chromedp.CSS("#f-name"), "王小明"),
		chromedp.SendKeys(chromedp.CSS("#f-email"), "owner@acme.example"),
		chromedp.SendKeys(chromedp.CSS("#f-password"), "correct horse battery"),
	)
	shot(deadline, "01-signup")
	if status := submit(deadline, "sign up", `[data-testid="signup-submit"]`); status != 200 {
		t.Fatalf("sign-up answered %d", status)
	}
	if loc := location(deadline); loc != "/t/acme-coffee/dashboard" {
		t.Fatalf("after sign-up: %s", loc)
	}
	shot(deadline, "02-dashboard-admin")
	// htmx loads from /static under the CSP and reads the config meta.
	if ok, err := chromedp.Run(deadline, chromedp.Evaluate[bool](`typeof htmx === 'object' && htmx.config.includeIndicatorStyles === false`)); err != nil || !ok {
		t.Fatalf("htmx is not loaded and configured: %v", err)
	}

	// Sign out, then sign in.
	submit(deadline, "sign out", `[data-testid="sign-out"]`)
	step(deadline, "fill sign-in",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="signin-form"]`)),
		chromedp.SendKeys(chromedp.CSS("#f-email"), "owner@acme.example"),
		chromedp.SendKeys(chromedp.CSS("#f-password"), "wrong password"),
	)
	if status := submit(deadline, "wrong password", `[data-testid="signin-submit"]`); status != 401 {
		t.Fatalf("a wrong password answered %d", status)
	}
	shot(deadline, "03-signin-failed")
	step(deadline, "fill sign-in again", chromedp.SendKeys(chromedp.CSS("#f-password"), "correct horse battery"))
	submit(deadline, "sign in", `[data-testid="signin-submit"]`)
	if loc := location(deadline); loc != "/t/acme-coffee/dashboard" {
		t.Fatalf("after sign-in: %s", loc)
	}

	// Invite a marketer.
	step(deadline, "open members",
		chromedp.Navigate(base+"/t/acme-coffee/members"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="invite-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="invite-form"] #f-email`), "mia@acme.example"),
		chromedp.SetValue(chromedp.CSS(`[data-testid="invite-role"]`), "marketer"),
	)
	submit(deadline, "invite", `[data-testid="invite-submit"]`)
	link, err := chromedp.Run(deadline, chromedp.Value(chromedp.CSS(`[data-testid="invite-link"]`)))
	if err != nil || !strings.HasPrefix(link, base+"/invitations/") {
		t.Fatalf("invitation link %q: %v", link, err)
	}
	shot(deadline, "04-members-invite-link")

	// Accept in a second browser context: no cookies shared with the admin's.
	marketer, cancelMarketer := chromedp.NewContext(admin, chromedp.WithNewBrowserContext())
	defer cancelMarketer()
	if err := chromedp.Do(marketer, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	step(marketer, "accept form",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="accept-form"]`)),
		chromedp.SendKeys(chromedp.CSS("#f-name"), "Mia Chen"),
		chromedp.SendKeys(chromedp.CSS("#f-password"), "mia's long password"),
	)
	shot(marketer, "05-accept-invitation")
	submit(marketer, "accept", `[data-testid="accept-submit"]`)
	if loc := location(marketer); loc != "/t/acme-coffee/dashboard" {
		t.Fatalf("after accepting: %s", loc)
	}
	if exists(marketer, `[data-testid="nav-members"]`) || !exists(marketer, `[data-testid="nav-exports"]`) {
		t.Fatal("the marketer's menu should have Exports and not Members")
	}
	shot(marketer, "06-dashboard-marketer")
	res, err := chromedp.Run(marketer, chromedp.NavigateResponse(base+"/t/acme-coffee/members"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 403 || !exists(marketer, `[data-testid="error"][data-status="403"]`) {
		t.Fatalf("the marketer opening Members: %d", res.Status)
	}
	shot(marketer, "07-marketer-members-forbidden")

	// The admin sees the new member, in English, and the audit log.
	step(deadline, "members in English", chromedp.Navigate(base+"/t/acme-coffee/members"))
	submit(deadline, "switch to English", `[data-testid="locale-switch"] button[value="en"]`)
	if !exists(deadline, `[data-testid="member-row"][data-email="mia@acme.example"]`) {
		t.Fatal("the new marketer is not in the member list")
	}
	shot(deadline, "08-members-en")
	step(deadline, "audit log", chromedp.Navigate(base+"/t/acme-coffee/audit"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="audit"]`)))
	shot(deadline, "09-audit-en")
	step(deadline, "switcher", chromedp.Navigate(base+"/tenants"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="workspaces"]`)))
	shot(deadline, "10-workspaces-en")
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
