package web_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// oauthTrip is a visitor's way through: the start URL on OneID, WeChat's
// authorize page (the simulator consents at once for person p), back to
// OneID's callback. It returns OneID's answer to the callback and the
// callback URL (to replay it).
func (w *ingestWorld) oauthTrip(t *testing.T, key, scope, ret string, p wechattest.Person, snapshot bool) (int, http.Header, string, string) {
	t.Helper()
	q := url.Values{"scope": {scope}}
	if ret != "" {
		q.Set("return", ret)
	}
	status, h, body := w.fetch(t, "/oauth/"+key+"/start?"+q.Encode())
	if status != http.StatusFound || !strings.HasPrefix(h.Get("Location"), w.sim.URL()+"/connect/oauth2/authorize?") {
		t.Fatalf("start: %d → %q\n%s", status, h.Get("Location"), body)
	}
	authorize := h.Get("Location") + "&sim_person=" + strconv.FormatUint(uint64(p), 10)
	if snapshot {
		authorize += "&sim_snapshot=1"
	}
	authorize = strings.Replace(authorize, "#wechat_redirect&", "&", 1) + "#wechat_redirect"
	status, h, body = w.fetch(t, authorize)
	if status != http.StatusFound || !strings.HasPrefix(h.Get("Location"), w.base+"/oauth/"+key+"/callback?") {
		t.Fatalf("authorize: %d → %q\n%s", status, h.Get("Location"), body)
	}
	callback := h.Get("Location")
	status, h, body = w.fetch(t, callback)
	return status, h, body, callback
}

func TestOAuthRecordsTheVisitor(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		w := newIngestWorld(t, db)
		info, app := w.bindApp(t, "h5 oa", appSetup{})
		tid := w.ws.tenant.ID

		t.Run("UserinfoScopeGivesProfileAndUnionID", func(t *testing.T) {
			p := w.sim.AddPerson()
			status, h, body, _ := w.oauthTrip(t, app.CallbackKey, wechat.ScopeUserInfo, "/welcome?x=1#top", p, false)
			back, err := url.Parse(h.Get("Location"))
			if status != http.StatusFound || err != nil || back.Scheme+"://"+back.Host != w.base || back.Path != "/welcome" ||
				back.Query().Get("x") != "1" || back.Fragment != "top" || len(back.Query().Get("oneid_ticket")) != 32 {
				t.Fatalf("%d → %q\n%s", status, h.Get("Location"), body)
			}
			ticket := back.Query().Get("oneid_ticket")
			if n := w.rows("oauth_tickets"); n == 0 {
				t.Fatal("no ticket row")
			}
			var stored int64
			w.db.Model(&models.OAuthTicket{}).Scopes(models.ForTenant(tid)).Where("ticket_hash = ?", ticket).Count(&stored)
			if stored != 0 {
				t.Fatal("the ticket is stored as itself, not its hash")
			}
			// Another tenant's key cannot read it, and does not use it up.
			other := w.workspace("Other Co")
			otherKey, _ := w.apiKey(t, other)
			if a := w.call(t, otherKey, "POST", "/api/v1/oauth/ticket", map[string]string{"ticket": ticket}); a.status != http.StatusNotFound {
				t.Fatalf("another tenant's key: %d %s", a.status, a.raw)
			}
			key, _ := w.apiKey(t, w.ws)
			a := w.call(t, key, "POST", "/api/v1/oauth/ticket", map[string]string{"ticket": ticket})
			if a.status != http.StatusOK || a.body["openid"] != w.sim.OpenID(info.AppID, p) || a.body["appid"] != info.AppID || a.body["scope"] != wechat.ScopeUserInfo {
				t.Fatalf("redeem: %d %s", a.status, a.raw)
			}
			if cust, _ := a.body["customer"].(map[string]any); cust == nil || cust["unionid"] != w.sim.UnionID(w.open.OpenAppID, p) || cust["nickname"] == "" {
				t.Fatalf("redeemed customer: %s", a.raw)
			}
			// Once only; and a ticket past its five minutes is refused.
			if a := w.call(t, key, "POST", "/api/v1/oauth/ticket", map[string]string{"ticket": ticket}); a.status != http.StatusNotFound {
				t.Fatalf("second redeem: %d %s", a.status, a.raw)
			}
			_, h, _, _ = w.oauthTrip(t, app.CallbackKey, wechat.ScopeBase, "/welcome", w.sim.AddPerson(), false)
			late := mustQuery(t, h.Get("Location"), "oneid_ticket")
			w.clock.Advance(models.OAuthTicketLifetime + time.Second)
			defer w.clock.Advance(-models.OAuthTicketLifetime - time.Second)
			if a := w.call(t, key, "POST", "/api/v1/oauth/ticket", map[string]string{"ticket": late}); a.status != http.StatusNotFound {
				t.Fatalf("expired ticket: %d %s", a.status, a.raw)
			}
			if a := w.call(t, key, "POST", "/api/v1/oauth/ticket", map[string]string{}); a.status != http.StatusBadRequest {
				t.Fatalf("no ticket: %d %s", a.status, a.raw)
			}
			id := w.identity(t, tid, app.ID, w.sim.OpenID(info.AppID, p))
			if id == nil || id.Source != models.SourceOAuth || id.Nickname == "" || id.AvatarURL == "" {
				t.Fatalf("%+v", id)
			}
			c := w.customer(t, tid, id.CustomerID)
			if c.UnionID == nil || *c.UnionID != w.sim.UnionID(w.open.OpenAppID, p) || c.Nickname == "" {
				t.Fatalf("%+v", c)
			}
			// Erasure takes the customer's tickets too.
			if err := models.DeleteCustomer(w.db, tid, id.CustomerID); err != nil {
				t.Fatal(err)
			}
			var left int64
			w.db.Model(&models.OAuthTicket{}).Scopes(models.ForTenant(tid)).Where("customer_id = ?", id.CustomerID).Count(&left)
			if left != 0 {
				t.Fatalf("%d tickets of an erased customer", left)
			}
		})
		t.Run("BaseScopeIsUnlinkedForThatReason", func(t *testing.T) {
			p := w.sim.AddPerson()
			status, _, body, _ := w.oauthTrip(t, app.CallbackKey, wechat.ScopeBase, "", p, false)
			if status != http.StatusOK || !strings.Contains(body, `data-reason="done"`) {
				t.Fatalf("%d\n%s", status, body)
			}
			id := w.identity(t, tid, app.ID, w.sim.OpenID(info.AppID, p))
			c := w.customer(t, tid, id.CustomerID)
			if c.UnionID != nil || c.UnlinkedReason == nil || *c.UnlinkedReason != models.UnlinkedSnsapiBase {
				t.Fatalf("%+v", c)
			}
		})
		t.Run("SnapshotUsersAreNeverStored", func(t *testing.T) {
			before := w.rows("identities")
			status, _, body, _ := w.oauthTrip(t, app.CallbackKey, wechat.ScopeUserInfo, "/welcome", w.sim.AddPerson(), true)
			if status != http.StatusOK || !strings.Contains(body, `data-reason="snapshot"`) || !strings.Contains(body, "使用完整服务") {
				t.Fatalf("%d\n%s", status, body)
			}
			if after := w.rows("identities"); after != before {
				t.Fatalf("identities %d → %d", before, after)
			}
		})
		t.Run("StateIsSingleUse", func(t *testing.T) {
			p := w.sim.AddPerson()
			status, _, _, callback := w.oauthTrip(t, app.CallbackKey, wechat.ScopeBase, "/again", p, false)
			if status != http.StatusFound {
				t.Fatal(status)
			}
			status, _, body := w.fetch(t, callback)
			if status != http.StatusBadRequest || !strings.Contains(body, `data-reason="state"`) {
				t.Fatalf("replayed callback: %d\n%s", status, body)
			}
		})
		t.Run("StateExpires", func(t *testing.T) {
			status, h, _ := w.fetch(t, "/oauth/"+app.CallbackKey+"/start?scope=snsapi_base")
			if status != http.StatusFound {
				t.Fatal(status)
			}
			state := mustQuery(t, h.Get("Location"), "state")
			w.clock.Advance(models.OAuthStateLifetime + time.Second)
			defer w.clock.Advance(-models.OAuthStateLifetime - time.Second)
			code := w.sim.OAuthCode(info.AppID, w.sim.AddPerson(), wechat.ScopeBase, false)
			status, _, body := w.fetch(t, "/oauth/"+app.CallbackKey+"/callback?code="+code+"&state="+state)
			if status != http.StatusBadRequest || !strings.Contains(body, `data-reason="state"`) {
				t.Fatalf("%d\n%s", status, body)
			}
		})
		t.Run("UsedCodeIsWeChatsRefusal", func(t *testing.T) {
			code := w.sim.OAuthCode(info.AppID, w.sim.AddPerson(), wechat.ScopeBase, false)
			for i, want := range []int{http.StatusOK, http.StatusBadRequest} {
				_, h, _ := w.fetch(t, "/oauth/"+app.CallbackKey+"/start?scope=snsapi_base")
				state := mustQuery(t, h.Get("Location"), "state")
				status, _, body := w.fetch(t, "/oauth/"+app.CallbackKey+"/callback?code="+code+"&state="+state)
				if status != want || (i == 1 && !strings.Contains(body, `data-reason="code"`)) {
					t.Fatalf("use %d: %d\n%s", i+1, status, body)
				}
			}
		})
		t.Run("DeclinedConsent", func(t *testing.T) {
			_, h, _ := w.fetch(t, "/oauth/"+app.CallbackKey+"/start?scope=snsapi_userinfo&return=/shop")
			state := mustQuery(t, h.Get("Location"), "state")
			status, _, body := w.fetch(t, "/oauth/"+app.CallbackKey+"/callback?state="+state)
			if status != http.StatusOK || !strings.Contains(body, `data-reason="denied"`) || !strings.Contains(body, w.base+"/shop") {
				t.Fatalf("%d\n%s", status, body)
			}
		})
	})
}

// A state is bound to the app and tenant that started the trip: tenant A's
// state used on tenant B's app (or another app of A's) fails, stores
// nothing, and leaves A's state unused.
func TestOAuthStateIsBoundToTenantAndApp(t *testing.T) {
	w := newIngestWorld(t, dbtest.MySQL(t))
	_, appA := w.bindApp(t, "oa of a", appSetup{})
	_, otherA := w.bindApp(t, "other oa of a", appSetup{})
	wsB := w.workspace("Bravo Ingest")
	openB := w.openAccount(t, wsB)
	infoB, appB := w.bindApp(t, "oa of b", appSetup{ws: wsB, open: openB})

	_, h, _ := w.fetch(t, "/oauth/"+appA.CallbackKey+"/start?scope=snsapi_base")
	stateA := mustQuery(t, h.Get("Location"), "state")
	for _, key := range []string{appB.CallbackKey, otherA.CallbackKey} {
		code := w.sim.OAuthCode(infoB.AppID, w.sim.AddPerson(), wechat.ScopeBase, false)
		status, _, body := w.fetch(t, "/oauth/"+key+"/callback?code="+code+"&state="+stateA)
		if status != http.StatusBadRequest || !strings.Contains(body, `data-reason="state"`) {
			t.Fatalf("%d\n%s", status, body)
		}
	}
	if n := w.rows("identities"); n != 0 {
		t.Fatalf("%d identities", n)
	}
	var used int64
	w.db.Model(&models.OAuthState{}).Scopes(models.ForTenant(w.ws.tenant.ID)).Where("used_at IS NOT NULL").Count(&used)
	if used != 0 {
		t.Fatalf("A's state was spent by another app's callback")
	}
}

// The return URL must be OneID's own or on a host the app allows: no open
// redirects.
func TestOAuthRefusesOpenRedirects(t *testing.T) {
	w := newIngestWorld(t, dbtest.SQLite(t))
	_, app := w.bindApp(t, "redirect oa", appSetup{})
	start := "/oauth/" + app.CallbackKey + "/start?scope=snsapi_base&return="
	host := strings.TrimPrefix(w.base, "http://")
	for _, ret := range []string{
		"https://evil.example.com/",
		"//evil.example.com/path",
		"/\\evil.example.com",
		"https://" + host + "@evil.example.com/",
		"http://evil.example.com/?" + w.base,
		"javascript:alert(1)",
		"https://h5.example.com.evil.com/",
		"ftp://h5.example.com/",
		"https://h5.example.com/",
	} {
		status, h, body := w.fetch(t, start+url.QueryEscape(ret))
		if status != http.StatusBadRequest || h.Get("Location") != "" || !strings.Contains(body, `data-reason="return"`) {
			t.Errorf("return %q: %d → %q", ret, status, h.Get("Location"))
		}
	}
	if n := w.rows("oauth_states"); n != 0 {
		t.Fatalf("refused starts stored %d states", n)
	}

	// The admin allows the H5 host; then it works, exactly.
	admin := w.signedIn(w.ws.people[models.RoleAdmin])
	if page := admin.get(w.ws.path("apps/" + strconv.FormatInt(app.ID, 10))); !strings.Contains(page.body, `data-testid="oauth-settings-link"`) {
		t.Fatal("the app page does not link to its web sign-in settings")
	}
	admin.get(w.ws.path("apps/" + strconv.FormatInt(app.ID, 10) + "/oauth"))
	r := admin.post(w.ws.path("apps/"+strconv.FormatInt(app.ID, 10)+"/oauth"), url.Values{"hosts": {"bad host!"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad host: %d", r.status)
	}
	r = admin.post(w.ws.path("apps/"+strconv.FormatInt(app.ID, 10)+"/oauth"), url.Values{"hosts": {"https://H5.example.com/shop\nm.example.com:8443"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("save hosts: %d\n%s", r.status, r.body)
	}
	if !w.audited(w.ws.tenant.ID, models.AuditOAuthHostsChanged, app.AppID) {
		t.Fatal("not audited")
	}
	for ret, ok := range map[string]bool{
		"https://h5.example.com/shop?a=1": true,
		"http://m.example.com:8443/":      true,
		"https://m.example.com/":          false,
		"https://x.h5.example.com/":       false,
	} {
		status, h, _ := w.fetch(t, start+url.QueryEscape(ret))
		if (status == http.StatusFound) != ok {
			t.Errorf("return %q after allowing: %d → %q", ret, status, h.Get("Location"))
		}
	}
	// A marketer reads the page but may not change it.
	marketer := w.signedIn(w.ws.people[models.RoleMarketer])
	if r := marketer.get(w.ws.path("apps/" + strconv.FormatInt(app.ID, 10) + "/oauth")); r.status != http.StatusOK || !strings.Contains(r.body, "h5.example.com") || strings.Contains(r.body, "oauth-hosts-form") {
		t.Fatalf("marketer: %d", r.status)
	}
}

func mustQuery(t *testing.T, raw, name string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	v := u.Query().Get(name)
	if v == "" {
		t.Fatalf("%q has no %s", raw, name)
	}
	return v
}
