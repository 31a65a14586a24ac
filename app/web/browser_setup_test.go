package web_test

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/chromedp/chromedp"
	"gorm.io/gorm"

	"oneid/app/web"
	"oneid/app/web/browsertest"
	"oneid/models"
)

// serveForBrowser serves web.New(deps) on a free loopback port until the test
// ends, with deps.Config's PublicURL and Addr set to that port and its log
// discarded unless deps has one, and returns its base URL.
func serveForBrowser(t *testing.T, deps web.Deps) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	deps.Config.PublicURL, deps.Config.Addr = base, ln.Addr().String()
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	app, err := web.New(deps)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	return base
}

// coffeeAdmin is the admin of the tenant coffeeTenant makes; the password is
// every fixture person's.
const coffeeAdmin = "admin@coffee.example"

// coffeeTenant makes the tenant 示例咖啡 of principal appsPrincipal, with
// coffeeAdmin (王小明) as its admin.
func coffeeTenant(t *testing.T, db *gorm.DB) *models.Tenant {
	t.Helper()
	hash, err := models.NewPasswordHasher(0).Hash(context.Background(), password)
	if err != nil {
		t.Fatal(err)
	}
	tenant, _, err := models.CreateTenant(db, models.NewTenant{Name: "示例咖啡", PrincipalName: appsPrincipal,
		Admin: models.User{Email: coffeeAdmin, Name: "王小明", PasswordHash: hash, Locale: "zh-CN"}})
	if err != nil {
		t.Fatal(err)
	}
	return tenant
}

// signInTab signs the tab in on base as email, with the fixture password.
func signInTab(tab *browsertest.Tab, base, email string) {
	tab.Do("sign in",
		chromedp.Navigate(base+"/signin"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="signin-form"]`)),
		chromedp.SendKeys(chromedp.CSS("#f-email"), email),
		chromedp.SendKeys(chromedp.CSS("#f-password"), password),
	)
	tab.Click("sign in", `[data-testid="signin-submit"]`)
}
