package web_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"oneid/app/binding"
	"oneid/app/config"
	"oneid/app/web"
	"oneid/app/web/browsertest"
	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// TestBrowserBindsAnAppWithWeChat drives headless Chromium through the
// authorized binding: the admin clicks Bind with WeChat, consents on the
// simulator's authorisation page, and lands back on the Apps page with the app
// bound and its principal shown. Then the refusal of a principal mismatch with
// the differing characters marked, and a self-managed app with its callback
// URL. Screenshots go to $ONEID_ARTIFACTS (or a temporary folder).
func TestBrowserBindsAnAppWithWeChat(t *testing.T) {
	db := dbtest.MySQL(t)
	sim := wechattest.Start(t)
	comp, err := sim.AddComponent(wechattest.ComponentSpec{Token: "comptoken", AESKey: appsCompKey})
	if err != nil {
		t.Fatal(err)
	}
	open := sim.AddOpenAccount(wechattest.OpenAccountSpec{Principal: appsPrincipal, Verified: true})
	service := sim.MustAddApp(wechattest.AppSpec{Name: "示例咖啡服务号", Principal: appsPrincipal, OpenAppID: open, Followers: 120_000})
	mini := sim.MustAddApp(wechattest.AppSpec{Name: "示例咖啡小程序", Type: wechattest.TypeMiniProgram, Principal: appsPrincipal})
	self := sim.MustAddApp(wechattest.AppSpec{Name: "示例咖啡订阅号", Type: wechattest.TypeSubscription, Principal: appsPrincipal})

	sealer := testSealer(t)
	store := binding.ObserveTokens(models.NewWechatTokenStore(db, sealer), db, nil)
	wcfg := sim.Config(wechattest.LoopbackOnly(t), store)
	wcfg.Component = wechat.Component{AppID: comp.AppID, Secret: comp.Secret, Token: comp.Token, AESKey: comp.AESKey}
	wx := wechat.New(wcfg)

	base := serveForBrowser(t, web.Deps{Config: config.Config{WeChat: config.WeChat{MPBase: sim.URL()}}, DB: db, Sealer: sealer, WeChat: wx})

	// WeChat pushes the verify ticket to OneID's component endpoint.
	sim.SetComponentCallback(comp.AppID, base+"/wechat/component")
	if _, d, err := sim.PushVerifyTicket(comp.AppID); err != nil || !d.OK || d.Reply != "success" {
		t.Fatalf("verify ticket push: %+v, %v", d, err)
	}

	tenant := coffeeTenant(t, db)
	apps := base + "/t/" + tenant.Slug + "/apps"

	b := browsertest.Start(t, browsertest.Options{Within: 90 * time.Second})
	tab := b.Tab()
	ctx := tab.Ctx

	signInTab(tab, base, coffeeAdmin)
	tab.Do("apps page", chromedp.Navigate(apps), chromedp.WaitVisible(chromedp.CSS(`[data-testid="no-apps"]`)))
	tab.Shot("apps-01-empty")

	// Bind with WeChat: the simulator's authorisation page stands in for WeChat's.
	tab.Click("bind with WeChat", `[data-testid="bind-wechat"]`)
	if loc := tab.Location(); !strings.HasPrefix(loc, sim.URL()+"/cgi-bin/componentloginpage?") {
		t.Fatalf("Bind with WeChat went to %s", loc)
	}
	tab.Do("authorisation page", chromedp.WaitVisible(chromedp.CSS(`[data-testid="sim-authorize-`+service.AppID+`"]`)))
	tab.Shot("apps-02-wechat-authorisation-page")
	if status := tab.Click("consent", `[data-testid="sim-authorize-`+service.AppID+`"]`); status != 200 {
		t.Fatalf("the return to OneID answered %d", status)
	}
	if loc := tab.Location(); loc != apps+"?done=bound" {
		t.Fatalf("after consenting: %s", loc)
	}
	row := `[data-testid="open-account"][data-open-appid="` + open + `"] [data-testid="app-row"][data-appid="` + service.AppID + `"]`
	tab.Do("bound app", chromedp.WaitVisible(chromedp.CSS(row)))
	if p := tab.Text(row + ` [data-testid="app-principal"]`); !strings.Contains(p, appsPrincipal) {
		t.Fatalf("the principal shown is %q", p)
	}
	if s := tab.Text(row + ` [data-testid="app-status"]`); s != "正常" {
		t.Fatalf("status %q", s)
	}
	tab.Shot("apps-03-bound-with-wechat")

	// A mini-program in no open-platform account is listed apart.
	tab.Click("bind with WeChat again", `[data-testid="bind-wechat"]`)
	tab.Do("authorisation page again", chromedp.WaitVisible(chromedp.CSS(`[data-testid="sim-authorize-`+mini.AppID+`"]`)))
	tab.Click("consent for the mini-program", `[data-testid="sim-authorize-`+mini.AppID+`"]`)
	tab.Do("unlinked section", chromedp.WaitVisible(chromedp.CSS(`[data-testid="unlinked-apps"] [data-appid="`+mini.AppID+`"]`)))
	if s := tab.Text(`[data-testid="never-linked"]`); !strings.Contains(s, "永远无法通过 UnionID 关联") {
		t.Fatalf("the unlinked section says %q", s)
	}
	tab.Shot("apps-04-list-with-unlinked")

	// A principal mismatch: an open-platform account declared for Beijing.
	tab.Do("declare an open-platform account",
		chromedp.Navigate(apps+"/new"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="declare-form"]`)),
		chromedp.SendKeys(chromedp.CSS("#f-open_appid"), "wx00000000000000b2"),
		chromedp.Clear(chromedp.CSS("#f-open_principal")), // the form starts from the tenant's principal
		chromedp.SendKeys(chromedp.CSS("#f-open_principal"), "示例科技（北京）有限公司"),
		chromedp.Click(chromedp.CSS(`input[name="open_verified"][value="yes"]`)),
	)
	tab.Click("save the open-platform account", `[data-testid="declare-submit"]`)
	bj, err := models.FindOpenAccountByOpenAppID(db, tenant.ID, "wx00000000000000b2")
	if err != nil {
		t.Fatal(err)
	}
	fillSelf := []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(apps + "/new"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="self-managed-form"]`)),
		chromedp.SendKeys(chromedp.CSS("#f-appid"), self.AppID),
		chromedp.SendKeys(chromedp.CSS("#f-secret"), self.Secret),
		chromedp.SetValue(chromedp.CSS("#f-kind"), models.KindSubscription),
		chromedp.SendKeys(chromedp.CSS("#f-name"), self.Name),
		chromedp.Clear(chromedp.CSS(`[data-testid="self-managed-form"] #f-principal`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="self-managed-form"] #f-principal`), appsPrincipal),
		chromedp.Click(chromedp.CSS(`input[name="verified"][value="yes"]`)),
		chromedp.SendKeys(chromedp.CSS("#f-callback_token"), "cbtoken123"),
		chromedp.SendKeys(chromedp.CSS("#f-aes_key"), appsAESKey),
	}
	tab.Do("fill the self-managed form", append(fillSelf, chromedp.SetValue(chromedp.CSS("#f-open_account_id"), strconv.FormatInt(bj.ID, 10)))...)
	tab.Shot("apps-05-self-managed-form")
	if status := tab.Click("bind into Beijing's account", `[data-testid="self-managed-submit"]`); status != 422 {
		t.Fatalf("the mismatch answered %d", status)
	}
	tab.Do("refusal", chromedp.WaitVisible(chromedp.CSS(`[data-testid="refusal"][data-reason="mismatch"]`)))
	if m := tab.Text(`[data-testid="diff-open"] mark`); m != "北京" {
		t.Fatalf("marked %q in the open account's name", m)
	}
	if a, o := tab.Text(`[data-testid="diff-app"] .principal`), tab.Text(`[data-testid="diff-open"] .principal`); a != appsPrincipal || o != "示例科技（北京）有限公司" {
		t.Fatalf("the refusal shows %q and %q", a, o)
	}
	tab.Shot("apps-06-refusal-principal-mismatch")

	// The same app with no open-platform account: bound, with its callback URL.
	tab.Do("fill the self-managed form again", fillSelf...)
	tab.Click("bind self-managed", `[data-testid="self-managed-submit"]`)
	tab.Do("app page", chromedp.WaitVisible(chromedp.CSS(`[data-testid="callback-url"]`)))
	cb, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`[data-testid="callback-url"]`)))
	if err != nil || !strings.HasPrefix(cb, base+"/wechat/callback/") {
		t.Fatalf("callback URL %q: %v", cb, err)
	}
	tab.Shot("apps-07-self-managed-app-page")
	appPage := tab.Location()
	tab.Do("list", chromedp.Navigate(apps), chromedp.WaitVisible(chromedp.CSS(`[data-testid="app-row"][data-appid="`+self.AppID+`"]`)))
	tab.Shot("apps-08-list")

	// Token health: another system force-refreshes the same AppSecret (WeChat
	// refuses OneID's token twice), then the day's quota runs out.
	selfApp := wechat.App{AppID: self.AppID, Secret: self.Secret}
	if _, err := wx.UserList(context.Background(), selfApp, ""); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		sim.ForceRefreshStable(self.AppID)
		if _, err := wx.UserList(context.Background(), selfApp, ""); err != nil {
			t.Fatal(err)
		}
	}
	sim.ExhaustQuota(self.AppID, "cgi-bin/user/get", wechat.CodeDailyQuota)
	_, err = wx.UserList(context.Background(), selfApp, "")
	if err := models.NoteWechatError(db, self.AppID, wechat.Code(err), time.Now()); err != nil { // as the sync job does
		t.Fatal(err)
	}
	tab.Do("token health", chromedp.Navigate(strings.TrimSuffix(appPage, "?done=bound")), chromedp.WaitVisible(chromedp.CSS(`[data-testid="shared-secret"]`)))
	if s := tab.Text(`[data-testid="health-error"][data-code="45009"]`); !strings.Contains(s, "每日调用次数") {
		t.Fatalf("quota error row %q", s)
	}
	tab.Shot("apps-09-token-health")

	// The same list in English.
	tab.Do("list", chromedp.Navigate(apps), chromedp.WaitVisible(chromedp.CSS(`[data-testid="locale-switch"]`)))
	tab.Click("switch to English", `[data-testid="locale-switch"] button[value="en"]`)
	tab.Do("English list", chromedp.WaitVisible(chromedp.CSS(`[data-testid="shared-secret-badge"]`)))
	if s := tab.Text(`[data-testid="never-linked"]`); !strings.Contains(s, "can never be linked by UnionID") {
		t.Fatalf("the unlinked section says %q", s)
	}
	tab.Shot("apps-10-list-en")
}
