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

	"github.com/chromedp/chromedp"

	"oneid/app/config"
	"oneid/app/ingest"
	"oneid/app/jobs"
	"oneid/app/web"
	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// TestBrowserSyncProgress drives headless Chromium through a follower sync:
// the admin starts it on the Apps page, the progress bar moves (processed and
// total, rate, time left) as htmx polls, and when the sync ends the cell and
// the followers column update in place. An app whose WeChat quota is used up
// shows why its sync stopped. Screenshots go to $ONEID_ARTIFACTS (or a
// temporary folder).
func TestBrowserSyncProgress(t *testing.T) {
	chromium := chromiumPath(t)
	db := dbtest.MySQL(t)
	sim := wechattest.Start(t)
	sim.SetLatency("cgi-bin/user/info/batchget", 25*time.Millisecond)
	open := sim.AddOpenAccount(wechattest.OpenAccountSpec{Principal: appsPrincipal, Verified: true})
	service := sim.MustAddApp(wechattest.AppSpec{Name: "示例咖啡服务号", Principal: appsPrincipal, OpenAppID: open, Followers: 40_000})
	limited := sim.MustAddApp(wechattest.AppSpec{Name: "示例咖啡订阅号", Type: wechattest.TypeSubscription, Principal: appsPrincipal, OpenAppID: open, Followers: 5_000})
	sim.ExhaustQuota(limited.AppID, "cgi-bin/user/info/batchget", wechat.CodeDailyQuota)

	sealer := testSealer(t)
	hasher := models.NewPasswordHasher(0)
	hash, err := hasher.Hash(context.Background(), "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	tenant, _, err := models.CreateTenant(db, models.NewTenant{Name: "示例咖啡", PrincipalName: appsPrincipal,
		Admin: models.User{Email: "admin@coffee.example", Name: "王小明", PasswordHash: hash, Locale: "zh-CN"}})
	if err != nil {
		t.Fatal(err)
	}
	oa := models.OpenAccount{OpenAppID: open, PrincipalName: appsPrincipal, Verified: true, CreatedVia: models.OpenViaDeclared, Declared: true}
	if err := models.CreateOpenAccount(db, tenant.ID, &oa); err != nil {
		t.Fatal(err)
	}
	for _, a := range []wechattest.AppInfo{service, limited} {
		sealed, _ := models.SealAppSecret(sealer, tenant.ID, a.AppID, models.ColAppSecret, a.Secret)
		kind := models.KindService
		if a.Type == wechattest.TypeSubscription {
			kind = models.KindSubscription
		}
		row := &models.App{AppID: a.AppID, Kind: kind, Name: a.Name, PrincipalName: appsPrincipal, Declared: true,
			BindingMode: models.ModeSelfManaged, OpenAccountID: &oa.ID, SecretSealed: sealed}
		if err := models.BindApp(db, tenant.ID, row); err != nil {
			t.Fatal(err)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	wx := wechat.New(sim.Config(wechattest.LoopbackOnly(t), wechat.NewMemoryStore()))
	app, err := web.New(web.Deps{Config: config.Config{PublicURL: base, Addr: ln.Addr().String()},
		DB: db, Log: slog.New(slog.DiscardHandler), Sealer: sealer, WeChat: wx})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	// The job runner of this instance, as `oneid serve` starts it.
	runner := jobs.New(jobs.Config{DB: db, Heartbeat: 400 * time.Millisecond, Poll: 100 * time.Millisecond})
	runner.Register(ingest.NewSyncer(ingest.SyncConfig{DB: db, WeChat: wx, Sealer: sealer, Fetchers: 2, Writers: 1}).Kind())
	runCtx, stopRunner := context.WithCancel(context.Background())
	runnerDone := make(chan struct{})
	go func() { _ = runner.Run(runCtx); close(runnerDone) }()
	t.Cleanup(func() { stopRunner(); <-runnerDone })

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
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browser, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(browser, 150*time.Second)
	defer cancel()

	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(name string) {
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
	click := func(what, selector string) {
		t.Helper()
		if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(selector))); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(selector string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(selector)))
		if err != nil {
			t.Fatalf("text of %s: %v", selector, err)
		}
		return s
	}
	js := func(expr string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return s
	}
	waitJS := func(what, cond string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (%s): %v", what, cond, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	apps := base + "/t/" + tenant.Slug + "/apps"
	row := `[data-testid="app-row"][data-appid="` + service.AppID + `"]`
	cell := row + ` [data-testid="sync"]`
	step("sign in",
		chromedp.Navigate(base+"/signin"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="signin-form"]`)),
		chromedp.SendKeys(chromedp.CSS("#f-email"), "admin@coffee.example"),
		chromedp.SendKeys(chromedp.CSS("#f-password"), "correct horse battery"),
	)
	click("sign in", `[data-testid="signin-submit"]`)
	step("apps page", chromedp.Navigate(apps), chromedp.WaitVisible(chromedp.CSS(row+` [data-testid="sync-start"]`)))
	shot("sync-01-apps-before")

	click("start the sync", row+` [data-testid="sync-start"]`)
	step("progress", chromedp.WaitVisible(chromedp.CSS(cell+`[data-state]`)))
	if loc := js(`location.pathname + location.search`); loc != "/t/"+tenant.Slug+"/apps?done=sync_started" {
		t.Fatalf("after starting: %s", loc)
	}
	// The page is not reloaded from here on: htmx swaps the cell every 2 s.
	js(`window.__notReloaded = "yes"; ""`)
	waitJS("a rate and the time left", `document.querySelector('`+cell+` [data-testid="sync-left"]') !== null`, 60*time.Second)
	first := text(cell + ` [data-testid="sync-count"]`)
	value := js(`String(document.querySelector('` + cell + ` progress').value) + "/" + String(document.querySelector('` + cell + ` progress').max)`)
	t.Logf("progress: %s, bar %s, %s", first, value, text(cell+` [data-testid="sync-rate"]`))
	if !strings.Contains(first, "/ 40,000") || strings.HasPrefix(value, "0/") {
		t.Fatalf("the progress says %q, the bar %s", first, value)
	}
	shot("sync-02-progress")
	waitJS("the count to move", `(document.querySelector('`+cell+` [data-testid="sync-count"]')||{}).textContent !== `+jsString(first), 30*time.Second)
	shot("sync-03-progress-later")

	waitJS("the end of the sync", `document.querySelector('`+cell+`[data-state="succeeded"]') !== null`, 120*time.Second)
	if js(`window.__notReloaded || "reloaded"`) != "yes" {
		t.Fatal("the page was reloaded; htmx should have swapped the cell")
	}
	serviceRow, err := models.FindAppByAppID(db, tenant.ID, service.AppID)
	if err != nil {
		t.Fatal(err)
	}
	// A few listed followers left before batchget asked about them.
	if n := text(row + ` #followers-` + strconv.FormatInt(serviceRow.ID, 10)); n != thousands(serviceRow.FollowerCount) || serviceRow.FollowerCount < 39_000 {
		t.Fatalf("the followers column shows %q after the sync, the app %d", n, serviceRow.FollowerCount)
	}
	shot("sync-04-finished")

	// The subscription account's quota is used up: its sync stops and says why.
	limitedRow := `[data-testid="app-row"][data-appid="` + limited.AppID + `"]`
	click("start the limited sync", limitedRow+` [data-testid="sync-start"]`)
	waitJS("the quota error", `document.querySelector('`+limitedRow+` [data-testid="sync-error"][data-kind="quota"]') !== null`, 60*time.Second)
	if s := text(limitedRow + ` [data-testid="sync-error"]`); !strings.Contains(s, "调用次数已用完") || !strings.Contains(s, "45009") {
		t.Fatalf("the quota error says %q", s)
	}
	shot("sync-05-quota-error")

	// The app's own page, in English: its sync and the schedule an admin turns on.
	step("app page", chromedp.Navigate(base+"/t/"+tenant.Slug+"/apps/"+strconv.FormatInt(serviceRow.ID, 10)))
	click("English", `[data-testid="locale-switch"] button[value="en"]`)
	step("schedule form", chromedp.WaitVisible(chromedp.CSS(`[data-testid="schedule-form"]`)),
		chromedp.SetValue(chromedp.CSS(`[data-testid="schedule-every"]`), "72"),
		chromedp.Click(chromedp.CSS(`[data-testid="schedule-enabled"]`)))
	click("save the schedule", `[data-testid="schedule-save"]`)
	step("schedule on", chromedp.WaitVisible(chromedp.CSS(`[data-testid="schedule-state"][data-enabled="true"]`)))
	if s := text(`[data-testid="schedule-state"]`); !strings.Contains(s, "every 3 days") {
		t.Fatalf("the schedule says %q", s)
	}
	shot("sync-06-app-page-schedule")
}

// thousands writes n as the pages do: 39,831.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
