package wechattest

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"oneid/app/wechat"
)

type component struct {
	AppID, Secret, Token, AESKey, CallbackURL string
	tickets                                   map[string]time.Time // ticket → pushed at (valid 12 h)
	preauth                                   map[string]time.Time
	authCodes                                 map[string]*authCode
}

type authCode struct {
	appID  string
	issued time.Time
	used   bool
}

type grant struct {
	active  bool
	refresh string
	funcs   []int
}

// ComponentSpec describes a third-party platform ("component").
type ComponentSpec struct {
	AppID       string `json:"appid,omitempty"`  // derived when empty
	Secret      string `json:"secret,omitempty"` // derived when empty
	Token       string `json:"token"`            // callback token of its authorisation-event URL
	AESKey      string `json:"aes_key"`          // EncodingAESKey, 43 characters
	CallbackURL string `json:"callback_url,omitempty"`
}

// AddComponent registers a third-party platform and returns its spec with the
// derived appid and secret filled in.
func (s *Sim) AddComponent(spec ComponentSpec) (ComponentSpec, error) {
	if _, err := wechat.NewCrypter(spec.AESKey, "wx0000000000000000"); err != nil {
		return spec, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if spec.AppID == "" {
		spec.AppID = s.ids.appID("component", strconv.Itoa(len(s.comps)+1))
	}
	if spec.Secret == "" {
		spec.Secret = s.ids.secret(spec.AppID)
	}
	s.comps[spec.AppID] = &component{AppID: spec.AppID, Secret: spec.Secret, Token: spec.Token, AESKey: spec.AESKey,
		CallbackURL: spec.CallbackURL, tickets: map[string]time.Time{}, preauth: map[string]time.Time{}, authCodes: map[string]*authCode{}}
	return spec, nil
}

// SetComponentCallback changes where the component's notices are pushed.
func (s *Sim) SetComponentCallback(componentAppID, url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.comps[componentAppID]; c != nil {
		c.CallbackURL = url
	}
}

// NewVerifyTicket issues a component_verify_ticket without pushing it (for
// tests that hand it to the client directly). PushVerifyTicket also pushes it.
func (s *Sim) NewVerifyTicket(componentAppID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.comps[componentAppID]
	if c == nil {
		return "", fmt.Errorf("wechattest: unknown component %s", componentAppID)
	}
	t := "ticket@@@" + newTokenValue()[:86]
	c.tickets[t] = s.now()
	return t, nil
}

// PushVerifyTicket issues a ticket and pushes it, encrypted, to the
// component's callback URL, as WeChat does every 10 minutes.
func (s *Sim) PushVerifyTicket(componentAppID string) (string, Delivery, error) {
	t, err := s.NewVerifyTicket(componentAppID)
	if err != nil {
		return "", Delivery{}, err
	}
	d, err := s.PushComponent(componentAppID, wechat.Event{AppID: componentAppID, CreateTime: s.Now().Unix(),
		InfoType: wechat.InfoVerifyTicket, ComponentVerifyTicket: t})
	return t, d, err
}

// Authorize stands in for an admin who scans the authorisation page and
// consents: it grants the component access to the app, pushes the
// "authorized" notice and returns the auth_code for api_query_auth.
func (s *Sim) Authorize(componentAppID, appID string) (string, error) {
	s.mu.Lock()
	c, a := s.comps[componentAppID], s.apps[appID]
	if c == nil || a == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("wechattest: unknown component %s or app %s", componentAppID, appID)
	}
	info := wechat.InfoAuthorized
	g := a.grants[componentAppID]
	if g != nil && g.active {
		info = wechat.InfoUpdateAuthorized
	} else {
		g = &grant{active: true, refresh: "refreshtoken@@@" + newTokenValue()[:43], funcs: a.Funcs}
		a.grants[componentAppID] = g
	}
	code := "queryauthcode@@@" + newTokenValue()[:60]
	now := s.now()
	c.authCodes[code] = &authCode{appID: appID, issued: now}
	ev := wechat.Event{AppID: componentAppID, CreateTime: now.Unix(), InfoType: info, AuthorizerAppID: appID,
		AuthorizationCode: code, AuthorizationCodeExpiredTime: now.Add(time.Hour).Unix()}
	s.mu.Unlock()
	s.pushAsync(componentAppID, ev)
	return code, nil
}

// Unauthorize cancels the app's authorization of the component: its refresh
// token dies and the "unauthorized" notice is pushed.
func (s *Sim) Unauthorize(componentAppID, appID string) (Delivery, error) {
	s.mu.Lock()
	a := s.apps[appID]
	if a == nil || a.grants[componentAppID] == nil {
		s.mu.Unlock()
		return Delivery{}, fmt.Errorf("wechattest: app %s has not authorized %s", appID, componentAppID)
	}
	delete(a.grants, componentAppID)
	for _, t := range s.tokens {
		if t.kind == "authorizer" && t.appID == appID {
			t.dead = s.now()
		}
	}
	ev := wechat.Event{AppID: componentAppID, CreateTime: s.now().Unix(), InfoType: wechat.InfoUnauthorized, AuthorizerAppID: appID}
	s.mu.Unlock()
	return s.PushComponent(componentAppID, ev)
}

var componentTmpl = template.Must(template.New("c").Parse(`<!doctype html><html lang="zh-CN"><meta charset="utf-8">
<title>公众平台账号授权 (simulated)</title><body>
<h1>授权给第三方平台 {{.Component}}</h1>
<p>扫码并确认授权的账号 (choose the account the admin authorizes):</p>
<ul>{{range .Apps}}<li><a data-testid="sim-authorize-{{.AppID}}" href="{{.Href}}">{{.Name}} ({{.AppID}}, {{.Principal}})</a></li>{{else}}<li data-testid="sim-no-apps">没有可授权的账号</li>{{end}}</ul>
</body></html>`))

// pageComponent stands in for mp.weixin.qq.com/cgi-bin/componentloginpage
// (and the mobile bindcomponent page): with biz_appid or sim_appid it consents
// at once; otherwise it lists the apps auth_type allows, each a link that consents.
func (s *Sim) pageComponent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	compID, pre, redirect := q.Get("component_appid"), q.Get("pre_auth_code"), q.Get("redirect_uri")
	s.mu.Lock()
	c := s.comps[compID]
	var issued time.Time
	ok := false
	if c != nil {
		issued, ok = c.preauth[pre]
	}
	expired := ok && s.now().Sub(issued) > 10*time.Minute
	type item struct{ AppID, Name, Principal, Href string }
	var items []item
	authType, _ := strconv.Atoi(q.Get("auth_type"))
	for _, id := range s.appOrder {
		a := s.apps[id]
		mp := a.Type == TypeMiniProgram
		if (authType == wechat.AuthTypeOfficialAccount && mp) || (authType == wechat.AuthTypeMiniProgram && !mp) {
			continue
		}
		cq := url.Values{"component_appid": {compID}, "pre_auth_code": {pre}, "redirect_uri": {redirect}, "appid": {id}}
		items = append(items, item{id, a.Name, a.Principal, "/cgi-bin/componentloginpage/confirm?" + cq.Encode()})
	}
	s.mu.Unlock()
	switch {
	case c == nil:
		s.page(w, http.StatusBadRequest, "component_appid 无效")
		return
	case !ok:
		s.page(w, http.StatusBadRequest, "pre_auth_code 无效")
		return
	case expired:
		s.page(w, http.StatusBadRequest, "pre_auth_code 已过期")
		return
	}
	if pin := firstNonEmpty(q.Get("biz_appid"), q.Get("sim_appid")); pin != "" {
		s.consent(w, r, compID, pre, redirect, pin)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = componentTmpl.Execute(w, map[string]any{"Component": compID, "Apps": items})
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func (s *Sim) pageComponentConfirm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	c := s.comps[q.Get("component_appid")]
	ok := false
	if c != nil {
		_, ok = c.preauth[q.Get("pre_auth_code")]
	}
	s.mu.Unlock()
	if !ok {
		s.page(w, http.StatusBadRequest, "pre_auth_code 无效")
		return
	}
	s.consent(w, r, q.Get("component_appid"), q.Get("pre_auth_code"), q.Get("redirect_uri"), q.Get("appid"))
}

func (s *Sim) consent(w http.ResponseWriter, r *http.Request, compID, pre, redirect, appID string) {
	u, err := url.Parse(redirect)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		s.page(w, http.StatusBadRequest, "redirect_uri 无效")
		return
	}
	s.mu.Lock()
	delete(s.comps[compID].preauth, pre) // a pre-auth code serves one authorisation
	s.mu.Unlock()
	code, err := s.Authorize(compID, appID)
	if err != nil {
		s.page(w, http.StatusBadRequest, "该账号不存在")
		return
	}
	rq := u.Query()
	rq.Set("auth_code", code)
	rq.Set("expires_in", "3600")
	u.RawQuery = rq.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// compFromToken checks component_access_token and that the body names the
// same component; s.mu held.
func (s *Sim) compFromToken(r *req, bodyComp string) (*component, *apiError) {
	t, e := s.liveToken(r.q.Get("component_access_token"), "component")
	if e != nil {
		return nil, e
	}
	if bodyComp != t.appID {
		return nil, errc(wechat.CodeInvalidAppID)
	}
	return s.comps[t.appID], nil
}

// componentBody is what every component call's body holds: the component.
type componentBody struct {
	Component string `json:"component_appid"`
}

func (b componentBody) component() string { return b.Component }

// authorizerBody is the body of a component call about an app that
// authorized it.
type authorizerBody struct {
	componentBody
	Authorizer string `json:"authorizer_appid"`
}

func (b authorizerBody) authorizer() string { return b.Authorizer }

// componentCall decodes a component call's body into b (47001) and checks
// the call's component_access_token against the component it names; s.mu
// held.
func (s *Sim) componentCall(r *req, b interface{ component() string }) (*component, *apiError) {
	if e := decodeBody(r, b); e != nil {
		return nil, e
	}
	return s.compFromToken(r, b.component())
}

// authorizerCall is componentCall for a call about an app (authorizer_appid):
// the component, and the app (40013 when unknown) with its grant to the
// component, nil unless active; s.mu held.
func (s *Sim) authorizerCall(r *req, b interface {
	component() string
	authorizer() string
}) (*component, *app, *grant, *apiError) {
	c, e := s.componentCall(r, b)
	if e != nil {
		return nil, nil, nil, e
	}
	a, g, e := s.authorizedApp(c.AppID, b.authorizer())
	return c, a, g, e
}

// authorizedApp is app appID (40013 when unknown) and its grant to the
// component, nil unless active; s.mu held.
func (s *Sim) authorizedApp(componentAppID, appID string) (*app, *grant, *apiError) {
	a := s.apps[appID]
	if a == nil {
		return nil, nil, errc(wechat.CodeInvalidAppID)
	}
	if g := a.grants[componentAppID]; g != nil && g.active {
		return a, g, nil
	}
	return a, nil, nil
}

// hComponentToken is api_component_token: the ticket must be one pushed in the last 12 h.
func (s *Sim) hComponentToken(r *req) (any, *apiError) {
	var b struct {
		AppID  string `json:"component_appid"`
		Secret string `json:"component_appsecret"`
		Ticket string `json:"component_verify_ticket"`
	}
	if e := decodeBody(r, &b); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.comps[b.AppID]
	switch {
	case b.AppID == "":
		return nil, errc(41002)
	case c == nil:
		return nil, errc(wechat.CodeInvalidAppID)
	case b.Secret != c.Secret:
		return nil, errc(wechat.CodeInvalidSecret)
	}
	at, ok := c.tickets[b.Ticket]
	if !ok {
		return nil, errc(61006)
	}
	if s.now().Sub(at) > wechat.VerifyTicketLifetime {
		return nil, errc(61005)
	}
	if e := s.admit(c.AppID, r.path); e != nil {
		return nil, e
	}
	t := s.mint("component", c.AppID, s.opts.tokenTTL)
	return map[string]any{"component_access_token": t.value, "expires_in": expiresIn(t, s.now())}, nil
}

func (s *Sim) hPreAuthCode(r *req) (any, *apiError) {
	var b componentBody
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.componentCall(r, &b)
	if e != nil {
		return nil, e
	}
	code := "preauthcode@@@" + newTokenValue()[:60]
	c.preauth[code] = s.now()
	return map[string]any{"pre_auth_code": code, "expires_in": 600}, nil
}

func (s *Sim) funcInfo(funcs []int) []map[string]any {
	out := make([]map[string]any, len(funcs))
	for i, id := range funcs {
		out[i] = map[string]any{"funcscope_category": map[string]int{"id": id}}
	}
	return out
}

// hQueryAuth is api_query_auth: a single-use auth code (61009) that lives an hour (61010).
func (s *Sim) hQueryAuth(r *req) (any, *apiError) {
	var b struct {
		componentBody
		Code string `json:"authorization_code"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.componentCall(r, &b)
	if e != nil {
		return nil, e
	}
	ac := c.authCodes[b.Code]
	if ac == nil || ac.used {
		return nil, errc(61009)
	}
	if s.now().Sub(ac.issued) > time.Hour {
		return nil, errc(61010)
	}
	a := s.apps[ac.appID]
	g := a.grants[c.AppID]
	if g == nil || !g.active {
		return nil, errc(61009)
	}
	ac.used = true
	t := s.mint("authorizer", a.AppID, s.opts.tokenTTL)
	s.retireAuthorizerTokens(a.AppID, t)
	return map[string]any{"authorization_info": map[string]any{
		"authorizer_appid":         a.AppID,
		"authorizer_access_token":  t.value,
		"expires_in":               expiresIn(t, s.now()),
		"authorizer_refresh_token": g.refresh,
		"func_info":                s.funcInfo(g.funcs),
	}}, nil
}

// retireAuthorizerTokens gives the app's other authorizer tokens the grace
// period, as a new cgi-bin/token does; s.mu held.
func (s *Sim) retireAuthorizerTokens(appID string, keep *token) {
	for _, t := range s.tokens {
		if t != keep && t.kind == "authorizer" && t.appID == appID && t.dead.IsZero() {
			t.dead = s.now().Add(s.opts.grace)
		}
	}
}

// hAuthorizerToken is api_authorizer_token; the refresh token stays the same.
func (s *Sim) hAuthorizerToken(r *req) (any, *apiError) {
	var b struct {
		authorizerBody
		Refresh string `json:"authorizer_refresh_token"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, a, g, e := s.authorizerCall(r, &b)
	if e != nil {
		return nil, e
	}
	if g == nil || g.refresh != b.Refresh {
		return nil, errc(61023)
	}
	if e := s.admit(a.AppID, r.path); e != nil {
		return nil, e
	}
	t := s.mint("authorizer", a.AppID, s.opts.tokenTTL)
	s.retireAuthorizerTokens(a.AppID, t)
	return map[string]any{"authorizer_access_token": t.value, "expires_in": expiresIn(t, s.now()), "authorizer_refresh_token": g.refresh}, nil
}

// hAuthorizerInfo is api_get_authorizer_info.
func (s *Sim) hAuthorizerInfo(r *req) (any, *apiError) {
	var b authorizerBody
	s.mu.Lock()
	defer s.mu.Unlock()
	_, a, g, e := s.authorizerCall(r, &b)
	if e != nil {
		return nil, e
	}
	if g == nil {
		return nil, errc(61003)
	}
	info := map[string]any{
		"nick_name":         a.Name,
		"head_img":          "https://wx.qlogo.cn/mmopen/sim" + a.AppID + "/0",
		"service_type_info": map[string]int{"id": a.serviceType()},
		"verify_type_info":  map[string]int{"id": a.VerifyType},
		"user_name":         a.UserName,
		"principal_name":    a.Principal,
		"alias":             "",
		"qrcode_url":        "https://mmbiz.qpic.cn/mmbiz_jpg/sim" + a.AppID + "/0",
		"business_info":     map[string]int{"open_store": 0, "open_scan": 0, "open_pay": 0, "open_card": 0, "open_shake": 0},
		"account_status":    a.AccountStatus,
		"idc":               1,
		"signature":         "",
		"register_type":     0,
		"basic_config":      map[string]bool{"is_phone_configured": true, "is_email_configured": true},
	}
	if a.Type == TypeMiniProgram {
		info["MiniProgramInfo"] = map[string]any{
			"network":      map[string][]string{"RequestDomain": {}, "WsRequestDomain": {}, "UploadDomain": {}, "DownloadDomain": {}, "BizDomain": {}, "UDPDomain": {}},
			"categories":   []map[string]string{{"first": "工具", "second": "效率"}},
			"visit_status": 0,
		}
	}
	return map[string]any{
		"authorizer_info": info,
		"authorization_info": map[string]any{
			"authorizer_appid":         a.AppID,
			"authorizer_refresh_token": g.refresh,
			"func_info":                s.funcInfo(g.funcs),
		},
	}, nil
}
