package wechattest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
)

// TestComponentOAuthAndOpenAnswers pins the simulator's answers, errors
// included, on the component API, the code exchanges (direct and on behalf
// of a component) and the open/* calls.
func TestComponentOAuthAndOpenAnswers(t *testing.T) {
	sim := wechattest.Start(t)
	const principal = "示例科技（上海）有限公司"
	oa := sim.MustAddApp(wechattest.AppSpec{Name: "服务号", Principal: principal, Followers: 3})
	mp := sim.MustAddApp(wechattest.AppSpec{Name: "小程序", Type: wechattest.TypeMiniProgram, Principal: principal})
	other := sim.MustAddApp(wechattest.AppSpec{Name: "未授权", Principal: principal})
	comp, err := sim.AddComponent(wechattest.ComponentSpec{Token: "comptoken", AESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"})
	if err != nil {
		t.Fatal(err)
	}
	ticket, err := sim.NewVerifyTicket(comp.AppID)
	if err != nil {
		t.Fatal(err)
	}

	type answer map[string]any
	do := func(method, path string, q url.Values, body string) answer {
		t.Helper()
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, sim.URL()+"/"+path+"?"+q.Encode(), r)
		res, err := wechattest.LoopbackOnly(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out answer
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return out
	}
	code := func(a answer) int {
		if v, ok := a["errcode"].(float64); ok {
			return int(v)
		}
		return 0
	}
	str := func(a answer, k string) string {
		t.Helper()
		s, _ := a[k].(string)
		if s == "" {
			t.Fatalf("no %s in %v", k, a)
		}
		return s
	}
	js := func(kv ...any) string {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	want := func(name string, a answer, errcode int) {
		t.Helper()
		if got := code(a); got != errcode {
			t.Errorf("%s: errcode %d, want %d (%v)", name, got, errcode, a)
		}
	}

	ctok := str(do("POST", "cgi-bin/component/api_component_token", nil,
		js("component_appid", comp.AppID, "component_appsecret", comp.Secret, "component_verify_ticket", ticket)), "component_access_token")
	cq := url.Values{"component_access_token": {ctok}}
	const (
		preauth  = "cgi-bin/component/api_create_preauthcode"
		query    = "cgi-bin/component/api_query_auth"
		authTok  = "cgi-bin/component/api_authorizer_token"
		authInfo = "cgi-bin/component/api_get_authorizer_info"
	)

	// Pre-auth codes: body, token, component.
	want("preauth without a body", do("POST", preauth, cq, ""), 47001)
	want("preauth with a broken body", do("POST", preauth, cq, "{"), 47001)
	want("preauth with a number for appid", do("POST", preauth, cq, `{"component_appid": 7}`), 47001)
	want("preauth without a token", do("POST", preauth, nil, js("component_appid", comp.AppID)), 41001)
	want("preauth of another component", do("POST", preauth, cq, js("component_appid", "wxnotthecomponent")), 40013)
	want("preauth on GET", do("GET", preauth, cq, ""), 43002)
	if a := do("POST", preauth, cq, js("component_appid", comp.AppID)); !strings.HasPrefix(str(a, "pre_auth_code"), "preauthcode@@@") {
		t.Errorf("pre_auth_code %v", a)
	}

	// Query auth: single-use codes.
	authCode, err := sim.Authorize(comp.AppID, oa.AppID)
	if err != nil {
		t.Fatal(err)
	}
	want("query_auth with a number for the code", do("POST", query, cq, js("component_appid", comp.AppID, "authorization_code", 5)), 47001)
	want("query_auth of another component", do("POST", query, cq, js("component_appid", "wxnotthecomponent", "authorization_code", authCode)), 40013)
	want("query_auth with an unknown code", do("POST", query, cq, js("component_appid", comp.AppID, "authorization_code", "nope")), 61009)
	qa := do("POST", query, cq, js("component_appid", comp.AppID, "authorization_code", authCode))
	want("query_auth", qa, 0)
	info, _ := qa["authorization_info"].(map[string]any)
	refresh, _ := info["authorizer_refresh_token"].(string)
	if info["authorizer_appid"] != oa.AppID || refresh == "" {
		t.Fatalf("authorization_info %v", info)
	}
	want("query_auth again", do("POST", query, cq, js("component_appid", comp.AppID, "authorization_code", authCode)), 61009)

	// Authorizer tokens and info: unknown app, unauthorized app, bad refresh token.
	body := func(app string, extra ...any) string {
		return js(append([]any{"component_appid", comp.AppID, "authorizer_appid", app}, extra...)...)
	}
	want("authorizer_token without a body", do("POST", authTok, cq, ""), 47001)
	want("authorizer_token without a token", do("POST", authTok, nil, body(oa.AppID, "authorizer_refresh_token", refresh)), 41001)
	want("authorizer_token of another component", do("POST", authTok, cq, js("component_appid", "wxnotthecomponent", "authorizer_appid", oa.AppID, "authorizer_refresh_token", refresh)), 40013)
	want("authorizer_token of an unknown app", do("POST", authTok, cq, body("wxunknown", "authorizer_refresh_token", refresh)), 40013)
	want("authorizer_token of an unauthorized app", do("POST", authTok, cq, body(other.AppID, "authorizer_refresh_token", refresh)), 61023)
	want("authorizer_token with a wrong refresh token", do("POST", authTok, cq, body(oa.AppID, "authorizer_refresh_token", "wrong")), 61023)
	want("authorizer_token with a number for the refresh token", do("POST", authTok, cq, body(oa.AppID, "authorizer_refresh_token", 1)), 47001)
	at := do("POST", authTok, cq, body(oa.AppID, "authorizer_refresh_token", refresh))
	atok := str(at, "authorizer_access_token")
	if at["authorizer_refresh_token"] != refresh {
		t.Errorf("the refresh token changed: %v", at)
	}
	want("authorizer_info without a body", do("POST", authInfo, cq, ""), 47001)
	want("authorizer_info of an unknown app", do("POST", authInfo, cq, body("wxunknown")), 40013)
	want("authorizer_info of an unauthorized app", do("POST", authInfo, cq, body(other.AppID)), 61003)
	want("authorizer_info of another component", do("POST", authInfo, cq, js("component_appid", "wxnotthecomponent", "authorizer_appid", oa.AppID)), 40013)
	ai := do("POST", authInfo, cq, body(oa.AppID))
	if ai2, _ := ai["authorizer_info"].(map[string]any); ai2["nick_name"] != oa.Name {
		t.Errorf("authorizer_info %v", ai)
	}

	// Web OAuth code exchange, direct and by the component.
	p := sim.Follower(oa.AppID, 0)
	direct := func(app wechattest.AppInfo, grant, c string) url.Values {
		return url.Values{"appid": {app.AppID}, "secret": {app.Secret}, "code": {c}, "grant_type": {grant}}
	}
	byComp := func(app, grant, c string) url.Values {
		return url.Values{"appid": {app}, "component_appid": {comp.AppID}, "component_access_token": {ctok}, "code": {c}, "grant_type": {grant}}
	}
	const oauthTok, oauthCompTok = "sns/oauth2/access_token", "sns/oauth2/component/access_token"
	want("oauth without grant_type", do("GET", oauthTok, direct(oa, "", sim.OAuthCode(oa.AppID, p, wechat.ScopeBase, false)), ""), 40002)
	want("oauth with a wrong secret", do("GET", oauthTok, url.Values{"appid": {oa.AppID}, "secret": {"x"}, "grant_type": {"authorization_code"}, "code": {"c"}}, ""), 40125)
	want("oauth without a code", do("GET", oauthTok, direct(oa, "authorization_code", ""), ""), 41008)
	if a := do("GET", oauthTok, direct(oa, "authorization_code", sim.OAuthCode(oa.AppID, p, wechat.ScopeBase, false)), ""); a["openid"] != sim.OpenID(oa.AppID, p) {
		t.Errorf("oauth: %v", a)
	}
	want("component oauth with a wrong grant_type", do("GET", oauthCompTok, byComp(oa.AppID, "refresh_token", sim.OAuthCode(oa.AppID, p, wechat.ScopeBase, false)), ""), 40002)
	want("component oauth without a component token", do("GET", oauthCompTok, url.Values{"appid": {oa.AppID}, "component_appid": {comp.AppID}, "grant_type": {"authorization_code"}, "code": {"c"}}, ""), 41001)
	want("component oauth for another component", do("GET", oauthCompTok, url.Values{"appid": {oa.AppID}, "component_appid": {"wxnot"}, "component_access_token": {ctok}, "grant_type": {"authorization_code"}, "code": {"c"}}, ""), 40013)
	want("component oauth of an unknown app", do("GET", oauthCompTok, byComp("wxunknown", "authorization_code", "c"), ""), 40013)
	want("component oauth of an unauthorized app", do("GET", oauthCompTok, byComp(other.AppID, "authorization_code", sim.OAuthCode(other.AppID, p, wechat.ScopeBase, false)), ""), 61003)
	want("component oauth with a secret instead of a component token", do("GET", oauthCompTok, direct(oa, "authorization_code", sim.OAuthCode(oa.AppID, p, wechat.ScopeBase, false)), ""), 41001)
	ot := do("GET", oauthCompTok, byComp(oa.AppID, "authorization_code", sim.OAuthCode(oa.AppID, p, wechat.ScopeBase, false)), "")
	if ot["openid"] != sim.OpenID(oa.AppID, p) || ot["scope"] != wechat.ScopeBase {
		t.Errorf("component oauth: %v", ot)
	}
	rq := byComp(oa.AppID, "refresh_token", "")
	rq.Set("refresh_token", str(ot, "refresh_token"))
	if a := do("GET", "sns/oauth2/component/refresh_token", rq, ""); a["openid"] != sim.OpenID(oa.AppID, p) {
		t.Errorf("component refresh: %v", a)
	}
	rq.Set("appid", other.AppID)
	want("component refresh of an unauthorized app", do("GET", "sns/oauth2/component/refresh_token", rq, ""), 61003)

	// Mini-program logins, direct and by the component.
	if _, err := sim.Authorize(comp.AppID, mp.AppID); err != nil {
		t.Fatal(err)
	}
	jsq := func(q url.Values) url.Values {
		q.Set("js_code", q.Get("code"))
		q.Del("code")
		return q
	}
	want("jscode2session without grant_type", do("GET", "sns/jscode2session", jsq(direct(mp, "", sim.JSCode(mp.AppID, p))), ""), 40002)
	want("jscode2session without an appid", do("GET", "sns/jscode2session", url.Values{"grant_type": {"authorization_code"}}, ""), 41002)
	if a := do("GET", "sns/jscode2session", jsq(direct(mp, "authorization_code", sim.JSCode(mp.AppID, p))), ""); a["openid"] != sim.OpenID(mp.AppID, p) || a["session_key"] == nil {
		t.Errorf("jscode2session: %v", a)
	}
	want("component jscode2session with a wrong grant_type", do("GET", "sns/component/jscode2session", jsq(byComp(mp.AppID, "x", sim.JSCode(mp.AppID, p))), ""), 40002)
	want("component jscode2session of an unauthorized app", do("GET", "sns/component/jscode2session", jsq(byComp(other.AppID, "authorization_code", sim.JSCode(other.AppID, p))), ""), 61003)
	if a := do("GET", "sns/component/jscode2session", jsq(byComp(mp.AppID, "authorization_code", sim.JSCode(mp.AppID, p))), ""); a["openid"] != sim.OpenID(mp.AppID, p) {
		t.Errorf("component jscode2session: %v", a)
	}

	// open/*: the authorizer token, the body's appid, then each call's rules.
	tq := url.Values{"access_token": {atok}}
	want("open/get without a token", do("POST", "cgi-bin/open/get", nil, ""), 41001)
	want("open/get on GET", do("GET", "cgi-bin/open/get", tq, ""), 43002)
	want("open/get with a broken body", do("POST", "cgi-bin/open/get", tq, "{"), 47001)
	want("open/get naming another app", do("POST", "cgi-bin/open/get", tq, js("appid", mp.AppID)), 40013)
	want("open/get before any", do("POST", "cgi-bin/open/get", tq, js("appid", oa.AppID)), 89002)
	want("open/unbind of no open account", do("POST", "cgi-bin/open/unbind", tq, js("open_appid", "wxopenunknown")), 89002)
	created := do("POST", "cgi-bin/open/create", tq, js("appid", oa.AppID))
	want("open/create", created, 0)
	open := str(created, "open_appid")
	if a := do("POST", "cgi-bin/open/get", tq, ""); a["open_appid"] != open {
		t.Errorf("open/get after create: %v", a)
	}
	want("open/create again", do("POST", "cgi-bin/open/create", tq, ""), 89000)
	want("open/bind while bound", do("POST", "cgi-bin/open/bind", tq, js("open_appid", open)), 89000)
	want("open/bind to no open account", do("POST", "cgi-bin/open/bind", tq, js("open_appid", "wxopenunknown")), 89002)
	want("open/unbind", do("POST", "cgi-bin/open/unbind", tq, js("open_appid", open)), 0)
	want("open/get after unbind", do("POST", "cgi-bin/open/get", tq, ""), 89002)
	want("open/bind again", do("POST", "cgi-bin/open/bind", tq, js("open_appid", open)), 0)
	if got := sim.OpenAppIDOf(oa.AppID); got != open {
		t.Errorf("bound to %q, want %q", got, open)
	}
}
