package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/app/web"
	"oneid/app/wechat"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// apiAnswer is a JSON answer of the API.
type apiAnswer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a apiAnswer) errorCode() string {
	e, _ := a.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (a apiAnswer) wechatErrcode() int {
	e, _ := a.body["error"].(map[string]any)
	n, _ := e["wechat_errcode"].(float64)
	return int(n)
}

// call sends an API request with a key ("" for none).
func (w *ingestWorld) call(t *testing.T, key, method, path string, body any) apiAnswer {
	t.Helper()
	h := map[string]string{}
	if key != "" {
		h["Authorization"] = "Bearer " + key
	}
	payload := ""
	if body != nil {
		raw, _ := json.Marshal(body)
		payload = string(raw)
		h["Content-Type"] = "application/json"
	}
	status, header, raw := w.send(t, method, path, payload, h)
	a := apiAnswer{status: status, header: header, raw: raw}
	if !strings.HasPrefix(header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s %s: %d answered %q, not JSON:\n%s", method, path, status, header.Get("Content-Type"), raw)
	}
	if err := json.Unmarshal([]byte(raw), &a.body); err != nil {
		t.Fatalf("%s %s: %v\n%s", method, path, err, raw)
	}
	return a
}

func (w *ingestWorld) apiKey(t *testing.T, ws *workspace) (string, *models.APIKey) {
	t.Helper()
	key, row, err := models.CreateAPIKey(w.db, ws.tenant.ID, "backend", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return key, row
}

func TestAPIMiniProgramLogin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		w := newIngestWorld(t, db)
		key, _ := w.apiKey(t, w.ws)
		mini, app := w.bindApp(t, "mini", appSetup{kind: models.KindMiniProgram})
		p := w.sim.AddPerson()
		code := w.sim.JSCode(mini.AppID, p)

		a := w.call(t, key, "POST", "/api/v1/miniprogram/login", map[string]string{"appid": mini.AppID, "code": code})
		if a.status != http.StatusOK || a.body["openid"] != w.sim.OpenID(mini.AppID, p) || a.body["unionid"] != w.sim.UnionID(w.open.OpenAppID, p) {
			t.Fatalf("%d %s", a.status, a.raw)
		}
		if _, leaked := a.body["session_key"]; leaked {
			t.Fatal("the session key left OneID")
		}
		id := w.identity(t, w.ws.tenant.ID, app.ID, w.sim.OpenID(mini.AppID, p))
		if id == nil || id.Source != models.SourceMiniProgram || float64(id.CustomerID) != a.body["customer_id"] {
			t.Fatalf("%+v", id)
		}

		t.Run("PassesWeChatsErrcode", func(t *testing.T) {
			for _, c := range []struct {
				code string
				want int
			}{{code, wechat.CodeCodeUsed}, {"0dbogus", wechat.CodeInvalidCode}} {
				a := w.call(t, key, "POST", "/api/v1/miniprogram/login", map[string]string{"appid": mini.AppID, "code": c.code})
				if a.status != http.StatusBadRequest || a.errorCode() != "wechat_rejected" || a.wechatErrcode() != c.want {
					t.Fatalf("%d %s", a.status, a.raw)
				}
			}
			w.sim.FailNext("sns/jscode2session", wechat.CodeMinuteQuota, 1)
			a := w.call(t, key, "POST", "/api/v1/miniprogram/login", map[string]string{"appid": mini.AppID, "code": w.sim.JSCode(mini.AppID, p)})
			if a.status != http.StatusTooManyRequests || a.wechatErrcode() != wechat.CodeMinuteQuota {
				t.Fatalf("%d %s", a.status, a.raw)
			}
		})
		t.Run("ClearErrors", func(t *testing.T) {
			cases := []struct {
				name   string
				body   any
				status int
				code   string
			}{
				{"NoCode", map[string]string{"appid": mini.AppID}, 400, "invalid_request"},
				{"UnknownField", map[string]string{"appid": mini.AppID, "code": "x", "secret": "y"}, 400, "invalid_request"},
				{"UnknownApp", map[string]string{"appid": "wx00000000000000aa", "code": "x"}, 404, "app_not_found"},
				{"NotAMiniProgram", map[string]string{"appid": w.oaAppID(t), "code": "x"}, 400, "wrong_app_kind"},
			}
			for _, c := range cases {
				if a := w.call(t, key, "POST", "/api/v1/miniprogram/login", c.body); a.status != c.status || a.errorCode() != c.code {
					t.Errorf("%s: %d %s", c.name, a.status, a.raw)
				}
			}
			if a := w.call(t, key, "GET", "/api/v1/nothing-here", nil); a.status != 404 || a.errorCode() != "no_such_endpoint" {
				t.Errorf("unknown endpoint: %d %s", a.status, a.raw)
			}
		})
	})
}

// oaAppID binds an official account and returns its appid.
func (w *ingestWorld) oaAppID(t *testing.T) string {
	info, _ := w.bindApp(t, "oa "+time.Now().Format("150405.000000"), appSetup{})
	return info.AppID
}

func TestAPIAuthentication(t *testing.T) {
	w := newIngestWorld(t, dbtest.MySQL(t))
	key, row := w.apiKey(t, w.ws)
	path := "/api/v1/customers?unionid=oNobody"
	if a := w.call(t, "", "GET", path, nil); a.status != 401 || a.errorCode() != "unauthorized" || a.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no key: %d %s", a.status, a.raw)
	}
	if a := w.call(t, "oneid_abcdefghijkl_"+strings.Repeat("x", 43), "GET", path, nil); a.status != 401 {
		t.Fatalf("unknown key: %d %s", a.status, a.raw)
	}
	if a := w.call(t, key+"x", "GET", path, nil); a.status != 401 {
		t.Fatalf("altered key: %d %s", a.status, a.raw)
	}
	if a := w.call(t, key, "GET", path, nil); a.status != 404 || a.errorCode() != "not_found" {
		t.Fatalf("live key: %d %s", a.status, a.raw)
	}
	var used models.APIKey
	w.db.Scopes(models.ForTenant(w.ws.tenant.ID)).Where("id = ?", row.ID).Take(&used)
	if used.LastUsedAt == nil {
		t.Fatal("last use not recorded")
	}
	w.db.Model(&models.APIKey{}).Scopes(models.ForTenant(w.ws.tenant.ID)).Where("id = ?", row.ID).Update("revoked_at", time.Now())
	if a := w.call(t, key, "GET", path, nil); a.status != 401 {
		t.Fatalf("revoked key: %d %s", a.status, a.raw)
	}
	// A session cookie is not an API key, and no CSRF token is asked for.
	admin := w.signedIn(w.ws.people[models.RoleAdmin])
	if r := admin.get(path); r.status != 401 {
		t.Fatalf("session: %d", r.status)
	}
	if strings.Contains(w.logs.String(), key) {
		t.Fatal("the API key is in the log")
	}
}

// Another tenant's appid, openid or unionid answers exactly like one that
// does not exist, and changes nothing.
func TestAPIRefusesOtherTenants(t *testing.T) {
	w := newIngestWorld(t, dbtest.MySQL(t))
	miniA, _ := w.bindApp(t, "mini of a", appSetup{kind: models.KindMiniProgram})
	p := w.sim.AddPerson()
	keyA, _ := w.apiKey(t, w.ws)
	if a := w.call(t, keyA, "POST", "/api/v1/miniprogram/login", map[string]string{"appid": miniA.AppID, "code": w.sim.JSCode(miniA.AppID, p)}); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	wsB := w.workspace("Bravo Api")
	keyB, _ := w.apiKey(t, wsB)
	openIDA, unionIDA := w.sim.OpenID(miniA.AppID, p), w.sim.UnionID(w.open.OpenAppID, p)
	before := w.rows("identities")

	code := w.sim.JSCode(miniA.AppID, p)
	cases := []struct {
		method, path string
		body         any
		code         string
	}{
		{"POST", "/api/v1/miniprogram/login", map[string]string{"appid": miniA.AppID, "code": code}, "app_not_found"},
		{"POST", "/api/v1/paid-unionid", map[string]string{"appid": miniA.AppID, "openid": openIDA, "transaction_id": "4200"}, "app_not_found"},
		{"GET", "/api/v1/customers?appid=" + miniA.AppID + "&openid=" + openIDA, nil, "app_not_found"},
		{"GET", "/api/v1/customers?unionid=" + unionIDA, nil, "not_found"},
		{"GET", "/api/v1/customers?unionid=" + unionIDA + "&appid=" + miniA.AppID, nil, "app_not_found"},
	}
	for _, c := range cases {
		a := w.call(t, keyB, c.method, c.path, c.body)
		if a.status != 404 || a.errorCode() != c.code || strings.Contains(a.raw, openIDA) || strings.Contains(a.raw, unionIDA) {
			t.Errorf("%s %s with B's key: %d %s", c.method, c.path, a.status, a.raw)
		}
	}
	if after := w.rows("identities"); after != before {
		t.Fatalf("identities %d → %d", before, after)
	}
	// The code B tried is still A's to use: B's call never reached WeChat.
	if a := w.call(t, keyA, "POST", "/api/v1/miniprogram/login", map[string]string{"appid": miniA.AppID, "code": code}); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.raw)
	}
}

func TestAPIPaidUnionIDAndLookup(t *testing.T) {
	w := newIngestWorld(t, dbtest.SQLite(t))
	key, _ := w.apiKey(t, w.ws)
	mini, app := w.bindApp(t, "shop mini", appSetup{kind: models.KindMiniProgram})
	oa, _ := w.bindApp(t, "shop oa", appSetup{})
	p := w.sim.AddPerson()
	openID := w.sim.OpenID(mini.AppID, p)
	// Known first without a UnionID (say, imported), then a payment links it.
	if _, err := models.Resolve(w.db, w.ws.tenant.ID, []models.Observation{{AppID: app.ID, OpenID: openID, Source: models.SourceImport}}); err != nil {
		t.Fatal(err)
	}
	pay := w.sim.Pay(mini.AppID, p)
	a := w.call(t, key, "POST", "/api/v1/paid-unionid", map[string]string{"appid": mini.AppID, "openid": openID, "mch_id": pay.MchID, "out_trade_no": pay.OutTradeNo})
	unionID := w.sim.UnionID(w.open.OpenAppID, p)
	if a.status != 200 || a.body["unionid"] != unionID {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	if a := w.call(t, key, "POST", "/api/v1/paid-unionid", map[string]string{"appid": mini.AppID, "openid": openID, "transaction_id": "4200000000000"}); a.status != 400 || a.wechatErrcode() != 89300 {
		t.Fatalf("unknown payment: %d %s", a.status, a.raw)
	}
	if a := w.call(t, key, "POST", "/api/v1/paid-unionid", map[string]string{"appid": mini.AppID, "openid": openID}); a.status != 400 || a.errorCode() != "invalid_request" {
		t.Fatalf("no payment named: %d %s", a.status, a.raw)
	}
	// The same person follows the official account: one customer, two identities.
	if _, err := w.sim.Follow(oa.AppID, p, ""); err != nil {
		t.Fatal(err)
	}
	w.process(t)
	for _, q := range []string{"unionid=" + unionID, "appid=" + mini.AppID + "&openid=" + openID,
		"appid=" + oa.AppID + "&openid=" + w.sim.OpenID(oa.AppID, p), "unionid=" + unionID + "&appid=" + oa.AppID} {
		a := w.call(t, key, "GET", "/api/v1/customers?"+q, nil)
		c, _ := a.body["customer"].(map[string]any)
		ids, _ := c["identities"].([]any)
		if a.status != 200 || c["unionid"] != unionID || c["open_appid"] != w.open.OpenAppID || len(ids) != 2 {
			t.Fatalf("%s: %d %s", q, a.status, a.raw)
		}
	}
	for _, q := range []string{"", "openid=" + openID, "unionid=x&openid=y"} {
		if a := w.call(t, key, "GET", "/api/v1/customers?"+q, nil); a.status != 400 || a.errorCode() != "invalid_request" {
			t.Fatalf("%q: %d %s", q, a.status, a.raw)
		}
	}
}

func TestAPIRateLimit(t *testing.T) {
	w := newIngestWorld(t, dbtest.SQLite(t), func(o *ingestOptions) { o.apiRate = web.RateLimit{PerSecond: 0.5, Burst: 3} })
	key, _ := w.apiKey(t, w.ws)
	other, _ := w.apiKey(t, w.ws)
	path := "/api/v1/customers?unionid=" + url.QueryEscape("oNobody")
	for i := 0; i < 3; i++ {
		if a := w.call(t, key, "GET", path, nil); a.status != 404 {
			t.Fatalf("call %d: %d %s", i+1, a.status, a.raw)
		}
	}
	a := w.call(t, key, "GET", path, nil)
	if a.status != http.StatusTooManyRequests || a.errorCode() != "rate_limited" || a.header.Get("Retry-After") == "" {
		t.Fatalf("4th call: %d %s", a.status, a.raw)
	}
	if a := w.call(t, other, "GET", path, nil); a.status != 404 {
		t.Fatalf("another key has its own bucket: %d", a.status)
	}
}
