package wechattest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// apiError is a WeChat error answer.
type apiError struct {
	code int
	msg  string
}

func errc(code int) *apiError { return &apiError{code: code} }

// messages are WeChat's errmsg texts (before the rid suffix).
var messages = map[int]string{
	-1:    "system error",
	40001: "invalid credential, access_token is invalid or not latest",
	40002: "invalid grant_type",
	40003: "invalid openid",
	40013: "invalid appid",
	40014: "invalid access_token",
	40029: "invalid code",
	40030: "invalid refresh_token",
	40032: "invalid openid list size",
	40125: "invalid appsecret",
	40163: "code been used",
	40164: "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist",
	40226: "code blocked",
	40243: "AppSecret is frozen",
	41001: "access_token missing",
	41002: "appid missing",
	41004: "appsecret missing",
	41008: "missing code",
	42001: "access_token expired",
	42002: "refresh_token expired",
	42003: "code expired",
	43002: "require POST method",
	45009: "reach max api daily quota limit",
	45011: "api minute-quota reach limit  mustslower  retry next minute",
	47001: "data format error",
	48001: "api unauthorized",
	61003: "component is not authorized by this account",
	61004: "access clientip is not registered",
	61005: "component ticket is expired",
	61006: "component ticket is invalid",
	61009: "code is invalid",
	61010: "code is expired",
	61023: "refresh_token is invalid",
	89000: "account has bound open",
	89001: "not same contractor",
	89002: "open not exists",
	89003: "open is not created by api",
	89004: "number of sub-accounts bound reached limit",
	89300: "invalid trade",
}

// rawJSON is an answer already encoded.
type rawJSON []byte

// req is one API request as the handlers see it.
type req struct {
	r    *http.Request
	w    http.ResponseWriter
	path string
	q    url.Values
	body []byte
}

type handler func(s *Sim, r *req) (any, *apiError)

type route struct {
	post bool // POST required (43002 otherwise)
	h    handler
}

func (s *Sim) routes() map[string]route {
	return map[string]route{
		"cgi-bin/token":                             {false, (*Sim).hToken},
		"cgi-bin/stable_token":                      {true, (*Sim).hStableToken},
		"cgi-bin/clear_quota":                       {true, (*Sim).hClearQuota},
		"cgi-bin/user/get":                          {false, (*Sim).hUserGet},
		"cgi-bin/user/info":                         {false, (*Sim).hUserInfo},
		"cgi-bin/user/info/batchget":                {true, (*Sim).hBatchGet},
		"sns/oauth2/access_token":                   {false, (*Sim).hOAuthToken},
		"sns/oauth2/component/access_token":         {false, (*Sim).hOAuthToken},
		"sns/oauth2/refresh_token":                  {false, (*Sim).hOAuthRefresh},
		"sns/oauth2/component/refresh_token":        {false, (*Sim).hOAuthRefresh},
		"sns/userinfo":                              {false, (*Sim).hSNSUserInfo},
		"sns/auth":                                  {false, (*Sim).hSNSAuth},
		"sns/jscode2session":                        {false, (*Sim).hJSCode},
		"sns/component/jscode2session":              {false, (*Sim).hJSCode},
		"wxa/getpaidunionid":                        {false, (*Sim).hPaidUnionID},
		"cgi-bin/component/api_component_token":     {true, (*Sim).hComponentToken},
		"cgi-bin/component/api_create_preauthcode":  {true, (*Sim).hPreAuthCode},
		"cgi-bin/component/api_query_auth":          {true, (*Sim).hQueryAuth},
		"cgi-bin/component/api_authorizer_token":    {true, (*Sim).hAuthorizerToken},
		"cgi-bin/component/api_get_authorizer_info": {true, (*Sim).hAuthorizerInfo},
		"cgi-bin/open/create":                       {true, openHandler((*Sim).openCreate)},
		"cgi-bin/open/bind":                         {true, openHandler((*Sim).openBind)},
		"cgi-bin/open/unbind":                       {true, openHandler((*Sim).openUnbind)},
		"cgi-bin/open/get":                          {true, openHandler((*Sim).openGet)},
	}
}

// serve is the single entry: control API, pages, then the API with its faults.
func (s *Sim) serve(w http.ResponseWriter, r *http.Request) {
	path := trimPath(r.URL.Path)
	switch {
	case strings.HasPrefix(path, "_sim/") || path == "_sim":
		s.serveControl(w, r, strings.TrimPrefix(strings.TrimPrefix(path, "_sim"), "/"))
		return
	case path == "connect/oauth2/authorize" || path == "connect/qrconnect":
		s.pageOAuth(w, r)
		return
	case path == "cgi-bin/componentloginpage" || path == "wxaopen/safe/bindcomponent" || path == "safe/bindcomponent":
		s.pageComponent(w, r)
		return
	case path == "cgi-bin/componentloginpage/confirm":
		s.pageComponentConfirm(w, r)
		return
	}
	rt, ok := s.router[path]
	if !ok {
		http.NotFound(w, r)
		return
	}

	s.mu.Lock()
	s.calls[path]++
	delay := s.latency[path]
	var fault *Fault
	if q := s.faults[path]; len(q) > 0 {
		fault = q[0]
		delay += fault.Latency
		if fault.Times--; fault.Times <= 0 {
			s.faults[path] = q[1:]
		}
	}
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if fault != nil && fault.HTTPStatus != 0 {
		http.Error(w, http.StatusText(fault.HTTPStatus), fault.HTTPStatus)
		return
	}
	if fault != nil && fault.ErrCode != 0 {
		s.writeErr(w, errc(fault.ErrCode))
		return
	}
	if rt.post && r.Method != http.MethodPost {
		s.writeErr(w, errc(43002))
		return
	}
	rq := &req{r: r, w: w, path: path, q: r.URL.Query()}
	if r.Method == http.MethodPost {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			s.writeErr(w, errc(47001))
			return
		}
		rq.body = b
	}
	out, aerr := rt.h(s, rq)
	if aerr != nil {
		s.writeErr(w, aerr)
		return
	}
	s.writeJSON(w, out)
}

func (s *Sim) writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	if raw, ok := v.(rawJSON); ok {
		_, _ = w.Write(raw)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(b)
}

// writeErr answers HTTP 200 with errcode and errmsg, the errmsg carrying the
// " rid: …" suffix of the live API.
func (s *Sim) writeErr(w http.ResponseWriter, e *apiError) {
	msg := e.msg
	if msg == "" {
		msg = messages[e.code]
	}
	if msg == "" {
		msg = "error " + strconv.Itoa(e.code)
	}
	n := s.rid.Add(1)
	rid := fmt.Sprintf("%08x-%08x-%08x", uint32(time.Now().Unix()), uint32(mix(n)), uint32(n))
	s.writeJSON(w, map[string]any{"errcode": e.code, "errmsg": msg + ", rid: " + rid})
}

// decodeBody parses a JSON body (47001 on failure).
func decodeBody(r *req, v any) *apiError {
	if len(r.body) == 0 {
		return errc(47001)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		return errc(47001)
	}
	return nil
}

// ok is the plain success answer.
var okAnswer = map[string]any{"errcode": 0, "errmsg": "ok"}
