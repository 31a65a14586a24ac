package web_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"oneid/app/ingest"
	"oneid/app/jobs"
	"oneid/app/web"
	"oneid/app/web/browsertest"
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
	db := dbtest.MySQL(t)
	sim := wechattest.Start(t)
	sim.SetLatency("cgi-bin/user/info/batchget", 25*time.Millisecond)
	open := sim.AddOpenAccount(wechattest.OpenAccountSpec{Principal: appsPrincipal, Verified: true})
	service := sim.MustAddApp(wechattest.AppSpec{Name: "示例咖啡服务号", Principal: appsPrincipal, OpenAppID: open, Followers: 40_000})
	limited := sim.MustAddApp(wechattest.AppSpec{Name: "示例咖啡订阅号", Type: wechattest.TypeSubscription, Principal: appsPrincipal, OpenAppID: open, Followers: 5_000})
	sim.ExhaustQuota(limited.AppID, "cgi-bin/user/info/batchget", wechat.CodeDailyQuota)

	sealer := testSealer(t)
	tenant := coffeeTenant(t, db)
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

	wx := wechat.New(sim.Config(wechattest.LoopbackOnly(t), wechat.NewMemoryStore()))
	base := serveForBrowser(t, web.Deps{DB: db, Sealer: sealer, WeChat: wx})
	// The job runner of this instance, as `oneid serve` starts it.
	runner := jobs.New(jobs.Config{DB: db, Heartbeat: 400 * time.Millisecond, Poll: 100 * time.Millisecond})
	runner.Register(ingest.NewSyncer(ingest.SyncConfig{DB: db, WeChat: wx, Sealer: sealer, Fetchers: 2, Writers: 1}).Kind())
	runCtx, stopRunner := context.WithCancel(context.Background())
	runnerDone := make(chan struct{})
	go func() { _ = runner.Run(runCtx); close(runnerDone) }()
	t.Cleanup(func() { stopRunner(); <-runnerDone })

	b := browsertest.Start(t, browsertest.Options{Within: 150 * time.Second})
	tab := b.Tab()

	apps := base + "/t/" + tenant.Slug + "/apps"
	row := `[data-testid="app-row"][data-appid="` + service.AppID + `"]`
	cell := row + ` [data-testid="sync"]`
	signInTab(tab, base, coffeeAdmin)
	tab.Do("apps page", chromedp.Navigate(apps), chromedp.WaitVisible(chromedp.CSS(row+` [data-testid="sync-start"]`)))
	tab.Shot("sync-01-apps-before")

	tab.Click("start the sync", row+` [data-testid="sync-start"]`)
	tab.Do("progress", chromedp.WaitVisible(chromedp.CSS(cell+`[data-state]`)))
	if loc := tab.String(`location.pathname + location.search`); loc != "/t/"+tenant.Slug+"/apps?done=sync_started" {
		t.Fatalf("after starting: %s", loc)
	}
	// The page is not reloaded from here on: htmx swaps the cell every 2 s.
	tab.String(`window.__notReloaded = "yes"; ""`)
	tab.WaitFor("a rate and the time left", `document.querySelector('`+cell+` [data-testid="sync-left"]') !== null`, 60*time.Second)
	first := tab.Text(cell + ` [data-testid="sync-count"]`)
	value := tab.String(`String(document.querySelector('` + cell + ` progress').value) + "/" + String(document.querySelector('` + cell + ` progress').max)`)
	t.Logf("progress: %s, bar %s, %s", first, value, tab.Text(cell+` [data-testid="sync-rate"]`))
	if !strings.Contains(first, "/ 40,000") || strings.HasPrefix(value, "0/") {
		t.Fatalf("the progress says %q, the bar %s", first, value)
	}
	tab.Shot("sync-02-progress")
	tab.WaitFor("the count to move", `(document.querySelector('`+cell+` [data-testid="sync-count"]')||{}).textContent !== `+browsertest.JS(first), 30*time.Second)
	tab.Shot("sync-03-progress-later")

	tab.WaitFor("the end of the sync", `document.querySelector('`+cell+`[data-state="succeeded"]') !== null`, 120*time.Second)
	if tab.String(`window.__notReloaded || "reloaded"`) != "yes" {
		t.Fatal("the page was reloaded; htmx should have swapped the cell")
	}
	serviceRow, err := models.FindAppByAppID(db, tenant.ID, service.AppID)
	if err != nil {
		t.Fatal(err)
	}
	// A few listed followers left before batchget asked about them.
	if n := tab.Text(row + ` #followers-` + strconv.FormatInt(serviceRow.ID, 10)); n != thousands(serviceRow.FollowerCount) || serviceRow.FollowerCount < 39_000 {
		t.Fatalf("the followers column shows %q after the sync, the app %d", n, serviceRow.FollowerCount)
	}
	tab.Shot("sync-04-finished")

	// The subscription account's quota is used up: its sync stops and says why.
	limitedRow := `[data-testid="app-row"][data-appid="` + limited.AppID + `"]`
	tab.Click("start the limited sync", limitedRow+` [data-testid="sync-start"]`)
	tab.WaitFor("the quota error", `document.querySelector('`+limitedRow+` [data-testid="sync-error"][data-kind="quota"]') !== null`, 60*time.Second)
	if s := tab.Text(limitedRow + ` [data-testid="sync-error"]`); !strings.Contains(s, "调用次数已用完") || !strings.Contains(s, "45009") {
		t.Fatalf("the quota error says %q", s)
	}
	tab.Shot("sync-05-quota-error")

	// The app's own page, in English: its sync and the schedule an admin turns on.
	tab.Do("app page", chromedp.Navigate(base+"/t/"+tenant.Slug+"/apps/"+strconv.FormatInt(serviceRow.ID, 10)))
	tab.Click("English", `[data-testid="locale-switch"] button[value="en"]`)
	tab.Do("schedule form", chromedp.WaitVisible(chromedp.CSS(`[data-testid="schedule-form"]`)),
		chromedp.SetValue(chromedp.CSS(`[data-testid="schedule-every"]`), "72"),
		chromedp.Click(chromedp.CSS(`[data-testid="schedule-enabled"]`)))
	tab.Click("save the schedule", `[data-testid="schedule-save"]`)
	tab.Do("schedule on", chromedp.WaitVisible(chromedp.CSS(`[data-testid="schedule-state"][data-enabled="true"]`)))
	if s := tab.Text(`[data-testid="schedule-state"]`); !strings.Contains(s, "every 3 days") {
		t.Fatalf("the schedule says %q", s)
	}
	tab.Shot("sync-06-app-page-schedule")
}

// thousands writes n as the pages do: 39,831.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
