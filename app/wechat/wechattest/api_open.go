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

// bindLimit is 100 apps per open account, 5 for an unverified one made by the API.
func bindLimit(o *openAccount) int {
	if !o.Verified && o.CreatedByAPI {
		return 5
	}
	return 100
}

func (s *Sim) hOpenCreate(r *req) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, _, e := s.openCall(r)
	if e != nil {
		return nil, e
	}
	if a.OpenAppID != "" {
		return nil, errc(wechat.CodeOpenAlreadyBound)
	}
	o := s.addOpen(OpenAccountSpec{Name: "api-" + a.AppID, Principal: a.Principal, Verified: false, CreatedByAPI: true})
	o.apps[a.AppID] = true
	a.OpenAppID = o.OpenAppID
	return map[string]any{"open_appid": o.OpenAppID, "errcode": 0, "errmsg": "ok"}, nil
}

func (s *Sim) hOpenBind(r *req) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, openID, e := s.openCall(r)
	if e != nil {
		return nil, e
	}
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

func (s *Sim) hOpenUnbind(r *req) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, openID, e := s.openCall(r)
	if e != nil {
		return nil, e
	}
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

func (s *Sim) hOpenGet(r *req) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, _, e := s.openCall(r)
	if e != nil {
		return nil, e
	}
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
