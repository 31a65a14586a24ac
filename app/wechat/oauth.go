package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/url"
)

// OAuth scopes.
const (
	ScopeBase     = "snsapi_base"
	ScopeUserInfo = "snsapi_userinfo"
)

// OAuthToken is the answer of sns/oauth2/access_token and refresh_token. The
// access token is the user's, not the app's.
type OAuthToken struct {
	AccessToken    string `json:"access_token"`
	ExpiresIn      int    `json:"expires_in"`
	RefreshToken   string `json:"refresh_token"`
	OpenID         string `json:"openid"`
	Scope          string `json:"scope"`
	IsSnapshotUser int    `json:"is_snapshotuser"`
	UnionID        string `json:"unionid"`
}

// Snapshot reports a virtual snapshot-page user: never store or link it.
func (t *OAuthToken) Snapshot() bool { return t.IsSnapshotUser == 1 }

// SNSUser is sns/userinfo. Since 2021 sex is 0 and the region fields are empty.
type SNSUser struct {
	OpenID     string   `json:"openid"`
	Nickname   string   `json:"nickname"`
	Sex        int      `json:"sex"`
	Province   string   `json:"province"`
	City       string   `json:"city"`
	Country    string   `json:"country"`
	HeadImgURL string   `json:"headimgurl"`
	Privilege  []string `json:"privilege"`
	UnionID    string   `json:"unionid"`
}

// ValidState reports whether s can be an OAuth state: a-zA-Z0-9, at most 128 bytes.
func ValidState(s string) bool {
	if len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9') {
			return false
		}
	}
	return true
}

// AuthorizeURL builds the official account's web OAuth URL. For an authorized
// app it names the component, whose token then exchanges the code.
func (c *Client) AuthorizeURL(app App, redirectURI, scope, state string) (string, error) {
	if scope != ScopeBase && scope != ScopeUserInfo {
		return "", fmt.Errorf("wechat: oauth scope %q is neither %s nor %s", scope, ScopeBase, ScopeUserInfo)
	}
	if !ValidState(state) {
		return "", errors.New("wechat: oauth state must be a-zA-Z0-9 and at most 128 bytes")
	}
	// WeChat expects the parameters in this order; url.Values would sort them.
	u := c.openBase + "/connect/oauth2/authorize?appid=" + url.QueryEscape(app.AppID) +
		"&redirect_uri=" + url.QueryEscape(redirectURI) +
		"&response_type=code&scope=" + scope + "&state=" + state
	if app.Authorized {
		u += "&component_appid=" + url.QueryEscape(c.component.AppID)
	}
	return u + "#wechat_redirect", nil
}

// OAuthExchange trades an OAuth code for the user's token, openid and, for
// snsapi_userinfo on a bound app, unionid. Codes are single-use and live 5 min.
func (c *Client) OAuthExchange(ctx context.Context, app App, code string) (*OAuthToken, error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	var r struct {
		apiStatus
		OAuthToken
	}
	if app.Authorized {
		q := url.Values{"appid": {app.AppID}, "code": {code}, "grant_type": {"authorization_code"}, "component_appid": {c.component.AppID}}
		if err := c.withComponentToken(ctx, call{endpoint: "sns/oauth2/component/access_token", query: q}, &r); err != nil {
			return nil, err
		}
		return &r.OAuthToken, nil
	}
	q := url.Values{"appid": {app.AppID}, "secret": {app.Secret}, "code": {code}, "grant_type": {"authorization_code"}}
	if err := c.do(ctx, call{endpoint: "sns/oauth2/access_token", query: q}, &r); err != nil {
		return nil, err
	}
	return &r.OAuthToken, nil
}

// OAuthRefresh renews a user's OAuth token (refresh tokens live 30 days).
func (c *Client) OAuthRefresh(ctx context.Context, app App, refreshToken string) (*OAuthToken, error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	var r struct {
		apiStatus
		OAuthToken
	}
	q := url.Values{"appid": {app.AppID}, "grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if app.Authorized {
		q.Set("component_appid", c.component.AppID)
		if err := c.withComponentToken(ctx, call{endpoint: "sns/oauth2/component/refresh_token", query: q}, &r); err != nil {
			return nil, err
		}
		return &r.OAuthToken, nil
	}
	if err := c.do(ctx, call{endpoint: "sns/oauth2/refresh_token", query: q}, &r); err != nil {
		return nil, err
	}
	return &r.OAuthToken, nil
}

// SNSUserInfo reads the profile behind a snsapi_userinfo user token.
func (c *Client) SNSUserInfo(ctx context.Context, userAccessToken, openID, lang string) (*SNSUser, error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	if lang == "" {
		lang = "zh_CN"
	}
	var r struct {
		apiStatus
		SNSUser
	}
	q := url.Values{"access_token": {userAccessToken}, "openid": {openID}, "lang": {lang}}
	if err := c.do(ctx, call{endpoint: "sns/userinfo", query: q}, &r); err != nil {
		return nil, err
	}
	return &r.SNSUser, nil
}
