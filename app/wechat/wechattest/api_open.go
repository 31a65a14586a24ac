package wechattest

import (
	"slices"

	"oneid/app/wechat"
)

// openCall resolves an open/* call: POST with an authorizer token whose grant
// includes permission set 24 (official account) or 25 (mini program); the
// body's appid, if sent, must be the authorizer's; s.mu held.
func (s *Sim) openCall(r *req) (*app, string, *apiError) {
	var b struct {
		AppID     string `json:"appid"`
		OpenAppID string `json:"open_appid"`
	}
	if len(r.body) > 0 {
		if e := decodeBody(r, &b); e != nil {
			return nil, "", e
		}
	}
	a, e := s.appFromToken(r, "authorizer")
	if e != nil {
		return nil, "", e
	}
	perm := false
	for _, g := range a.grants {
		if g.active && (slices.Contains(g.funcs, 24) || slices.Contains(g.funcs, 25)) {
			perm = true
		}
	}
	if !perm {
		return nil, "", errc(wechat.CodeUnauthorized)
	}
	if b.AppID != "" && b.AppID != a.AppID {
		return nil, "", errc(wechat.CodeInvalidAppID)
	}
	return a, b.OpenAppID, nil
}

// openHandler is the handler of an open/* call: with s.mu held, openCall
// resolves the call and h answers it for the app and the open_appid sent.
func openHandler(h func(s *Sim, a *app, openAppID string) (any, *apiError)) handler {
	return func(s *Sim, r *req) (any, *apiError) {
		s.mu.Lock()
		defer s.mu.Unlock()
		a, openAppID, e := s.openCall(r)
		if e != nil {
			return nil, e
		}
		return h(s, a, openAppID)
	}
}

// bindLimit is 100 apps per open account, 5 for an unverified one made by the API.
func bindLimit(o *openAccount) int {
	if !o.Verified && o.CreatedByAPI {
		return 5
	}
	return 100
}

// openCreate is cgi-bin/open/create: a new open account bound to the app; s.mu held.
func (s *Sim) openCreate(a *app, _ string) (any, *apiError) {
	if a.OpenAppID != "" {
		return nil, errc(wechat.CodeOpenAlreadyBound)
	}
	o := s.addOpen(OpenAccountSpec{Name: "api-" + a.AppID, Principal: a.Principal, Verified: false, CreatedByAPI: true})
	o.apps[a.AppID] = true
	a.OpenAppID = o.OpenAppID
	return map[string]any{"open_appid": o.OpenAppID, "errcode": 0, "errmsg": "ok"}, nil
}

// openBind is cgi-bin/open/bind: the app joins open_appid; s.mu held.
func (s *Sim) openBind(a *app, openID string) (any, *apiError) {
	o := s.opens[openID]
	switch {
	case o == nil:
		return nil, errc(wechat.CodeOpenNotExists)
	case a.OpenAppID != "":
		return nil, errc(wechat.CodeOpenAlreadyBound)
	case o.Principal != a.Principal:
		return nil, errc(wechat.CodeNotSameContractor)
	case !o.CreatedByAPI:
		return nil, errc(wechat.CodeOpenNotByAPI)
	case len(o.apps) >= bindLimit(o):
		return nil, errc(wechat.CodeOpenBindLimit)
	}
	o.apps[a.AppID] = true
	a.OpenAppID = o.OpenAppID
	return okAnswer, nil
}

// openUnbind is cgi-bin/open/unbind: the app leaves open_appid; s.mu held.
func (s *Sim) openUnbind(a *app, openID string) (any, *apiError) {
	o := s.opens[openID]
	switch {
	case o == nil || a.OpenAppID != openID:
		return nil, errc(wechat.CodeOpenNotExists)
	case !o.CreatedByAPI:
		return nil, errc(wechat.CodeOpenNotByAPI)
	}
	delete(o.apps, a.AppID)
	a.OpenAppID = ""
	return okAnswer, nil
}

// openGet is cgi-bin/open/get: the app's open account; s.mu held.
func (s *Sim) openGet(a *app, _ string) (any, *apiError) {
	if a.OpenAppID == "" {
		return nil, errc(wechat.CodeOpenNotExists)
	}
	return map[string]any{"open_appid": a.OpenAppID, "errcode": 0, "errmsg": "ok"}, nil
}

// BindOpen binds an app to an open account directly (set-up, as an admin
// would on open.weixin.qq.com; no API rules apply).
func (s *Sim) BindOpen(appID, openAppID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, o := s.apps[appID], s.opens[openAppID]
	if a == nil || o == nil {
		return errUnknownApp
	}
	if a.OpenAppID != "" {
		delete(s.opens[a.OpenAppID].apps, appID)
	}
	a.OpenAppID = openAppID
	o.apps[appID] = true
	return nil
}
