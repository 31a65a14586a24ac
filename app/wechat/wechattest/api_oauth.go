package wechattest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"oneid/app/wechat"
)

// pageOAuth stands in for the user on open.weixin.qq.com/connect/oauth2/authorize:
// it consents at once and redirects to redirect_uri?code=…&state=…. The person
// is sim_person (a number) or, by default, the app's follower 0;
// sim_snapshot=1 yields a snapshot-page code.
func (s *Sim) pageOAuth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	appID, redirect, scope, state := q.Get("appid"), q.Get("redirect_uri"), q.Get("scope"), q.Get("state")
	s.mu.Lock()
	a := s.apps[appID]
	var p Person
	if a != nil {
		p = Person(a.base)
	}
	s.mu.Unlock()
	u, err := url.Parse(redirect)
	switch {
	case a == nil:
		s.page(w, http.StatusBadRequest, "appid 参数错误 (invalid appid)")
		return
	case err != nil || (u.Scheme != "http" && u.Scheme != "https"):
		s.page(w, http.StatusBadRequest, "redirect_uri 参数错误")
		return
	case scope != wechat.ScopeBase && scope != wechat.ScopeUserInfo:
		s.page(w, http.StatusBadRequest, "scope 参数错误或没有 scope 权限")
		return
	case !wechat.ValidState(state):
		s.page(w, http.StatusBadRequest, "state 参数错误")
		return
	}
	if v := q.Get("sim_person"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.page(w, http.StatusBadRequest, "sim_person must be a person number")
			return
		}
		p = Person(n)
	}
	c := s.OAuthCode(appID, p, scope, q.Get("sim_snapshot") == "1")
	rq := u.Query()
	rq.Set("code", c)
	rq.Set("state", state)
	u.RawQuery = rq.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

var pageTmpl = template.Must(template.New("p").Parse(`<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>微信模拟器</title>
<body><h1 data-testid="sim-message">{{.}}</h1></body></html>`))

func (s *Sim) page(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, msg)
}

// useCode checks a code of kind for appID and marks it used; s.mu held.
func (s *Sim) useCode(kind, appID, v string) (*code, *apiError) {
	if v == "" {
		return nil, errc(41008)
	}
	c := s.codes[v]
	if c == nil || c.kind != kind || c.appID != appID {
		return nil, errc(wechat.CodeInvalidCode)
	}
	if c.used {
		return nil, errc(wechat.CodeCodeUsed)
	}
	if s.now().Sub(c.issued) > s.opts.codeTTL {
		return nil, errc(wechat.CodeCodeExpired)
	}
	c.used = true
	return c, nil
}

// componentApp checks a component call on behalf of an app: the component
// token, and that the app authorized that component; s.mu held.
func (s *Sim) componentApp(r *req) (*app, *apiError) {
	c, e := s.compFromToken(r, r.q.Get("component_appid"))
	if e != nil {
		return nil, e
	}
	a, g, e := s.authorizedApp(c.AppID, r.q.Get("appid"))
	if e != nil {
		return nil, e
	}
	if g == nil {
		return nil, errc(61003)
	}
	return a, nil
}

// codeApp is the app exchanging a code (grant_type authorization_code, 40002
// otherwise): on componentPath a component acting for it (componentApp),
// else the app itself by appid and secret; s.mu held.
func (s *Sim) codeApp(r *req, componentPath string) (*app, *apiError) {
	if r.q.Get("grant_type") != "authorization_code" {
		return nil, errc(40002)
	}
	if r.path == componentPath {
		return s.componentApp(r)
	}
	return s.checkSecret(r.q.Get("appid"), r.q.Get("secret"))
}

// hOAuthToken is sns/oauth2/access_token and its component variant.
func (s *Sim) hOAuthToken(r *req) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s.codeApp(r, "sns/oauth2/component/access_token")
	if e != nil {
		return nil, e
	}
	c, e := s.useCode("oauth", a.AppID, r.q.Get("code"))
	if e != nil {
		return nil, e
	}
	rt := &oauthRefresh{appID: a.AppID, person: c.person, scope: c.scope, snapshot: c.snapshot, expires: s.now().Add(30 * 24 * time.Hour)}
	rv := newTokenValue()
	s.refreshes[rv] = rt
	return s.oauthAnswer(a, rt, rv), nil
}

func (s *Sim) oauthAnswer(a *app, rt *oauthRefresh, refresh string) map[string]any {
	p := rt.person
	if rt.snapshot {
		p = virtual(p)
	}
	t := s.mint("user", a.AppID, 7200*time.Second)
	t.person, t.scope, t.snapshot = p, rt.scope, rt.snapshot
	out := map[string]any{
		"access_token":  t.value,
		"expires_in":    7200,
		"refresh_token": refresh,
		"openid":        s.ids.encode(a.ns, p),
		"scope":         rt.scope,
	}
	if rt.snapshot {
		out["is_snapshotuser"] = 1
	}
	if u := s.unionOf(a, p); u != "" && rt.scope == wechat.ScopeUserInfo {
		out["unionid"] = u
	}
	return out
}

// hOAuthRefresh is sns/oauth2/refresh_token (30-day refresh tokens).
func (s *Sim) hOAuthRefresh(r *req) (any, *apiError) {
	if r.q.Get("grant_type") != "refresh_token" {
		return nil, errc(40002)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var a *app
	if r.path == "sns/oauth2/component/refresh_token" {
		var e *apiError
		if a, e = s.componentApp(r); e != nil {
			return nil, e
		}
	} else if a = s.apps[r.q.Get("appid")]; a == nil {
		return nil, errc(wechat.CodeInvalidAppID)
	}
	v := r.q.Get("refresh_token")
	rt := s.refreshes[v]
	if rt == nil || rt.appID != a.AppID {
		return nil, errc(wechat.CodeInvalidRefresh)
	}
	if !s.now().Before(rt.expires) {
		return nil, errc(wechat.CodeRefreshExpired)
	}
	return s.oauthAnswer(a, rt, v), nil
}

// hSNSUserInfo is sns/userinfo: snsapi_userinfo tokens only; a snapshot
// user's token gets 48001 (a community report; WECHAT-API.md §3).
func (s *Sim) hSNSUserInfo(r *req) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.liveToken(r.q.Get("access_token"), "user")
	if e != nil {
		return nil, e
	}
	a := s.apps[t.appID]
	if s.ids.encode(a.ns, t.person) != r.q.Get("openid") {
		return nil, errc(wechat.CodeInvalidOpenID)
	}
	if t.scope != wechat.ScopeUserInfo || t.snapshot {
		return nil, errc(wechat.CodeUnauthorized)
	}
	out := map[string]any{
		"openid": r.q.Get("openid"), "nickname": fmt.Sprintf("用户%06d", mix(uint64(t.person))%1000000),
		"sex": 0, "province": "", "city": "", "country": "",
		"headimgurl": "https://thirdwx.qlogo.cn/mmopen/vi_32/sim" + strconv.FormatUint(mix(uint64(t.person))%1e9, 10) + "/132",
		"privilege":  []string{},
	}
	if u := s.unionOf(a, t.person); u != "" {
		out["unionid"] = u
	}
	return out, nil
}

// hSNSAuth is sns/auth: is this user token valid for this openid?
func (s *Sim) hSNSAuth(r *req) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.liveToken(r.q.Get("access_token"), "user")
	if e != nil {
		return nil, e
	}
	if s.ids.encode(s.apps[t.appID].ns, t.person) != r.q.Get("openid") {
		return nil, errc(wechat.CodeInvalidOpenID)
	}
	return okAnswer, nil
}

// hJSCode is sns/jscode2session and its component variant: single-use codes
// living 5 minutes, 40226 for blocked users, 100 logins per user per minute.
func (s *Sim) hJSCode(r *req) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s.codeApp(r, "sns/component/jscode2session")
	if e != nil {
		return nil, e
	}
	if e := s.admit(a.AppID, r.path); e != nil {
		return nil, e
	}
	c, e := s.useCode("js", a.AppID, r.q.Get("js_code"))
	if e != nil {
		return nil, e
	}
	if st := s.people[c.person]; st != nil && st.blocked {
		return nil, errc(wechat.CodeCodeBlocked)
	}
	k := s.now().Format("200601021504") + "|" + a.AppID + "|" + strconv.FormatUint(uint64(c.person), 10)
	if s.minute[k]++; s.minute[k] > 100 {
		return nil, errc(wechat.CodeMinuteQuota)
	}
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	out := map[string]any{"openid": s.ids.encode(a.ns, c.person), "session_key": base64.StdEncoding.EncodeToString(key)}
	if u := s.unionOf(a, c.person); u != "" {
		out["unionid"] = u
	}
	return out, nil
}

// hPaidUnionID is wxa/getpaidunionid: within 5 minutes of a payment.
func (s *Sim) hPaidUnionID(r *req) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s.appFromToken(r, "app", "stable", "authorizer")
	if e != nil {
		return nil, e
	}
	p, ok := s.ids.decode(a.ns, r.q.Get("openid"))
	if !ok {
		return nil, errc(wechat.CodeInvalidOpenID)
	}
	var pay *payment
	if tid := r.q.Get("transaction_id"); tid != "" {
		pay = s.payments[tid]
	} else if r.q.Get("mch_id") != "" {
		pay = s.payments[r.q.Get("mch_id")+"|"+r.q.Get("out_trade_no")]
	}
	if pay == nil || pay.appID != a.AppID || pay.person != p || s.now().Sub(pay.at) > 5*time.Minute {
		return nil, errc(89300)
	}
	if a.OpenAppID == "" {
		return nil, errc(wechat.CodeOpenNotExists)
	}
	return map[string]any{"unionid": s.unionOf(a, p), "errcode": 0, "errmsg": "ok"}, nil
}
