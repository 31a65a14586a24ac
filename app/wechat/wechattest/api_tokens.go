package wechattest

import (
	"crypto/rand"
	"encoding/base64"
	"time"

	"oneid/app/wechat"
)

func newTokenValue() string {
	b := make([]byte, 96)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b) // 128 characters, as long as live tokens
}

// mint stores a new token; s.mu held.
func (s *Sim) mint(kind, appID string, ttl time.Duration) *token {
	t := &token{value: newTokenValue(), kind: kind, appID: appID, expires: s.now().Add(ttl)}
	s.tokens[t.value] = t
	return t
}

func expiresIn(t *token, now time.Time) int {
	return int(t.expires.Sub(now).Round(time.Second) / time.Second)
}

// tokenAnswer is {access_token, expires_in}.
func (s *Sim) tokenAnswer(t *token) map[string]any {
	return map[string]any{"access_token": t.value, "expires_in": expiresIn(t, s.now())}
}

// checkSecret validates appid and secret of a token or code exchange; s.mu held.
func (s *Sim) checkSecret(appID, secret string) (*app, *apiError) {
	if appID == "" {
		return nil, errc(41002)
	}
	a := s.apps[appID]
	if a == nil {
		return nil, errc(wechat.CodeInvalidAppID)
	}
	if secret == "" {
		return nil, errc(41004)
	}
	if secret != a.Secret {
		return nil, errc(wechat.CodeInvalidSecret)
	}
	return a, nil
}

// hToken is GET cgi-bin/token: every call mints a new token; the previous one
// keeps working for the grace period and then answers 40001.
func (s *Sim) hToken(r *req) (any, *apiError) {
	if r.q.Get("grant_type") != "client_credential" {
		return nil, errc(40002)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s.checkSecret(r.q.Get("appid"), r.q.Get("secret"))
	if e != nil {
		return nil, e
	}
	if e := s.admit(a.AppID, r.path); e != nil {
		return nil, e
	}
	if prev := s.ccLatest[a.AppID]; prev != nil && prev.dead.IsZero() {
		prev.dead = s.now().Add(s.opts.grace)
	}
	t := s.mint("app", a.AppID, s.opts.tokenTTL)
	s.ccLatest[a.AppID] = t
	return s.tokenAnswer(t), nil
}

// hStableToken is POST cgi-bin/stable_token: the same token while valid, a new
// one in its last 5 minutes (both then work), and force_refresh at most every
// 30 s and 20 times a day. Isolated from cgi-bin/token.
func (s *Sim) hStableToken(r *req) (any, *apiError) {
	var b struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	if e := decodeBody(r, &b); e != nil {
		return nil, e
	}
	if b.GrantType != "client_credential" {
		return nil, errc(40002)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s.checkSecret(b.AppID, b.Secret)
	if e != nil {
		return nil, e
	}
	if e := s.admit(a.AppID, r.path); e != nil {
		return nil, e
	}
	now := s.now()
	cur := s.stable[a.AppID]
	valid := cur != nil && now.Before(cur.expires) && (cur.dead.IsZero() || now.Before(cur.dead))
	switch {
	case b.ForceRefresh && s.mayForce(a.AppID, now):
		if cur != nil {
			cur.dead = now.Add(s.opts.stableGrace)
		}
	case valid && cur.expires.Sub(now) > 5*time.Minute:
		return s.tokenAnswer(cur), nil
	case valid && b.ForceRefresh:
		return s.tokenAnswer(cur), nil
	}
	t := s.mint("stable", a.AppID, s.opts.tokenTTL)
	s.stable[a.AppID] = t
	return s.tokenAnswer(t), nil
}

// mayForce applies the force_refresh limits (≥30 s apart, 20 a day); s.mu held.
func (s *Sim) mayForce(appID string, now time.Time) bool {
	var kept []time.Time
	for _, t := range s.forceLog[appID] {
		if now.Sub(t) < 24*time.Hour {
			kept = append(kept, t)
		}
	}
	s.forceLog[appID] = kept
	if len(kept) >= 20 || (len(kept) > 0 && now.Sub(kept[len(kept)-1]) < 30*time.Second) {
		return false
	}
	s.forceLog[appID] = append(kept, now)
	return true
}

// ForceRefreshStable does what another holder of the AppSecret does with
// stable_token force_refresh=true: the app's current stable token dies
// (after WithStableForceGrace) and a new one is minted and returned.
func (s *Sim) ForceRefreshStable(appID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.stable[appID]; cur != nil {
		cur.dead = s.now().Add(s.opts.stableGrace)
	}
	t := s.mint("stable", appID, s.opts.tokenTTL)
	s.stable[appID] = t
	return t.value
}

// ExpireTokens ends every token of an app at once (as if its lifetime were over).
func (s *Sim) ExpireTokens(appID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, t := range s.tokens {
		if t.appID == appID && t.expires.After(now) {
			t.expires = now
		}
	}
}

// hClearQuota is POST cgi-bin/clear_quota {appid}.
func (s *Sim) hClearQuota(r *req) (any, *apiError) {
	var b struct {
		AppID string `json:"appid"`
	}
	if e := decodeBody(r, &b); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.appFromToken(r, "app", "stable", "authorizer"); e != nil {
		return nil, e
	}
	if s.apps[b.AppID] == nil {
		return nil, errc(wechat.CodeInvalidAppID)
	}
	s.clearQuota(b.AppID)
	return okAnswer, nil
}

// liveToken finds a usable token of one of the kinds; s.mu held.
func (s *Sim) liveToken(value string, kinds ...string) (*token, *apiError) {
	if value == "" {
		return nil, errc(41001)
	}
	t := s.tokens[value]
	if t == nil {
		return nil, errc(wechat.CodeInvalidCredential)
	}
	now := s.now()
	if !t.dead.IsZero() && !now.Before(t.dead) {
		return nil, errc(wechat.CodeInvalidCredential)
	}
	if !now.Before(t.expires) {
		return nil, errc(wechat.CodeTokenExpired)
	}
	for _, k := range kinds {
		if t.kind == k {
			return t, nil
		}
	}
	if t.kind == "app" || t.kind == "stable" {
		// A valid app token used where only an authorizer token will do.
		return nil, errc(wechat.CodeUnauthorized)
	}
	return nil, errc(wechat.CodeInvalidCredential)
}

// appFromToken resolves access_token to its app and applies the app's quota; s.mu held.
func (s *Sim) appFromToken(r *req, kinds ...string) (*app, *apiError) {
	t, e := s.liveToken(r.q.Get("access_token"), kinds...)
	if e != nil {
		return nil, e
	}
	a := s.apps[t.appID]
	if a == nil {
		return nil, errc(wechat.CodeInvalidCredential)
	}
	if e := s.admit(a.AppID, r.path); e != nil {
		return nil, e
	}
	return a, nil
}
