package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Component authorisation types for the login page.
const (
	AuthTypeOfficialAccount = 1
	AuthTypeMiniProgram     = 2
	AuthTypeBoth            = 3
)

// VerifyTicketLifetime is how long a component_verify_ticket stays valid.
const VerifyTicketLifetime = 12 * time.Hour

// FuncInfo is one permission set the authorizer granted.
type FuncInfo struct {
	FuncscopeCategory struct {
		ID int `json:"id"`
	} `json:"funcscope_category"`
	ConfirmInfo *struct {
		NeedConfirm    int `json:"need_confirm"`
		AlreadyConfirm int `json:"already_confirm"`
		CanConfirm     int `json:"can_confirm"`
	} `json:"confirm_info,omitempty"`
}

// AuthorizationInfo is what api_query_auth (with tokens) and
// api_get_authorizer_info (without the access token) say of an authorization.
type AuthorizationInfo struct {
	AuthorizerAppID        string     `json:"authorizer_appid"`
	AuthorizerAccessToken  string     `json:"authorizer_access_token"`
	ExpiresIn              int        `json:"expires_in"`
	AuthorizerRefreshToken string     `json:"authorizer_refresh_token"`
	FuncInfo               []FuncInfo `json:"func_info"`
}

// HasFunc reports whether the permission set id was granted.
func (a *AuthorizationInfo) HasFunc(id int) bool {
	for _, f := range a.FuncInfo {
		if f.FuncscopeCategory.ID == id {
			return true
		}
	}
	return false
}

// AuthorizerInfo describes an authorized official account or mini program.
type AuthorizerInfo struct {
	NickName        string `json:"nick_name"`
	HeadImg         string `json:"head_img"`
	ServiceTypeInfo struct {
		ID int `json:"id"`
	} `json:"service_type_info"`
	VerifyTypeInfo struct {
		ID int `json:"id"`
	} `json:"verify_type_info"`
	UserName      string `json:"user_name"`
	PrincipalName string `json:"principal_name"`
	Alias         string `json:"alias"`
	QRCodeURL     string `json:"qrcode_url"`
	BusinessInfo  struct {
		OpenStore int `json:"open_store"`
		OpenScan  int `json:"open_scan"`
		OpenPay   int `json:"open_pay"`
		OpenCard  int `json:"open_card"`
		OpenShake int `json:"open_shake"`
	} `json:"business_info"`
	AccountStatus int    `json:"account_status"`
	IDC           int    `json:"idc"`
	Signature     string `json:"signature"`
	RegisterType  int    `json:"register_type"`
	BasicConfig   struct {
		IsPhoneConfigured bool `json:"is_phone_configured"`
		IsEmailConfigured bool `json:"is_email_configured"`
	} `json:"basic_config"`
	MiniProgramInfo *MiniProgramInfo `json:"MiniProgramInfo,omitempty"`
}

// MiniProgramInfo is present for mini programs only (note WeChat's capitalised key).
type MiniProgramInfo struct {
	Network     map[string][]string              `json:"network"`
	Categories  []struct{ First, Second string } `json:"categories"`
	VisitStatus int                              `json:"visit_status"`
}

// Verified reports whether WeChat verified the principal (verify_type_info.id ≠ -1).
func (a *AuthorizerInfo) Verified() bool { return a.VerifyTypeInfo.ID != -1 }

// IsMiniProgram reports whether the authorizer is a mini program.
func (a *AuthorizerInfo) IsMiniProgram() bool { return a.MiniProgramInfo != nil }

// Authorizer is the answer of api_get_authorizer_info.
type Authorizer struct {
	AuthorizerInfo    AuthorizerInfo    `json:"authorizer_info"`
	AuthorizationInfo AuthorizationInfo `json:"authorization_info"`
}

// ComponentTokenResult is the answer of api_component_token.
type ComponentTokenResult struct {
	ComponentAccessToken string `json:"component_access_token"`
	ExpiresIn            int    `json:"expires_in"`
}

var errNoComponent = errors.New("wechat: no third-party platform (component) is configured")

// SaveVerifyTicket stores the component_verify_ticket from a push; it is valid 12 h.
func (c *Client) SaveVerifyTicket(ctx context.Context, ticket string) error {
	if c.component.AppID == "" {
		return errNoComponent
	}
	if c.tokens == nil {
		return ErrNoTokenStore
	}
	return c.tokens.Put(ctx, c.component.AppID, KindVerifyTicket, Token{Value: ticket, ExpiresAt: c.now().Add(VerifyTicketLifetime)})
}

// ComponentToken calls api_component_token with a given ticket, bypassing the
// store. Most callers want the managed token, which the other calls use.
func (c *Client) ComponentToken(ctx context.Context, ticket string) (*ComponentTokenResult, error) {
	if c.component.AppID == "" {
		return nil, errNoComponent
	}
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	var r struct {
		apiStatus
		ComponentTokenResult
	}
	body := map[string]string{
		"component_appid":         c.component.AppID,
		"component_appsecret":     c.component.Secret,
		"component_verify_ticket": ticket,
	}
	if err := c.do(ctx, call{endpoint: "cgi-bin/component/api_component_token", body: body}, &r); err != nil {
		return nil, err
	}
	return &r.ComponentTokenResult, nil
}

func (c *Client) componentToken(ctx context.Context) (Token, error) {
	if c.component.AppID == "" {
		return Token{}, errNoComponent
	}
	return c.managed(ctx, c.component.AppID, KindComponentToken, func(ctx context.Context) (string, int, error) {
		ticket, err := c.tokens.Get(ctx, c.component.AppID, KindVerifyTicket)
		if err != nil {
			return "", 0, err
		}
		if !c.usable(ticket) {
			return "", 0, ErrNoVerifyTicket
		}
		r, err := c.ComponentToken(ctx, ticket.Value)
		if err != nil {
			return "", 0, err
		}
		return r.ComponentAccessToken, r.ExpiresIn, nil
	})
}

// CreatePreAuthCode returns a pre-auth code for the authorisation page.
func (c *Client) CreatePreAuthCode(ctx context.Context) (code string, expiresIn int, err error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	var r struct {
		apiStatus
		PreAuthCode string `json:"pre_auth_code"`
		ExpiresIn   int    `json:"expires_in"`
	}
	body := map[string]string{"component_appid": c.component.AppID}
	if err := c.withComponentToken(ctx, call{endpoint: "cgi-bin/component/api_create_preauthcode", body: body}, &r); err != nil {
		return "", 0, err
	}
	return r.PreAuthCode, r.ExpiresIn, nil
}

// ComponentLoginURL is the PC authorisation page the admin scans. authType is
// one of the AuthType constants; bizAppID, if set, pins one account instead.
func (c *Client) ComponentLoginURL(preAuthCode, redirectURI string, authType int, bizAppID string) string {
	return c.mpBase + "/cgi-bin/componentloginpage?" + componentPageQuery(c.component.AppID, preAuthCode, redirectURI, authType, bizAppID)
}

// ComponentMobileURL is the same authorisation opened inside WeChat on a phone.
func (c *Client) ComponentMobileURL(preAuthCode, redirectURI string, authType int, bizAppID string) string {
	return c.openBase + "/wxaopen/safe/bindcomponent?action=bindcomponent&no_scan=1&" +
		componentPageQuery(c.component.AppID, preAuthCode, redirectURI, authType, bizAppID) + "#wechat_redirect"
}

func componentPageQuery(componentAppID, preAuthCode, redirectURI string, authType int, bizAppID string) string {
	q := "component_appid=" + url.QueryEscape(componentAppID) +
		"&pre_auth_code=" + url.QueryEscape(preAuthCode) +
		"&redirect_uri=" + url.QueryEscape(redirectURI)
	if bizAppID != "" {
		return q + "&biz_appid=" + url.QueryEscape(bizAppID)
	}
	if authType == 0 {
		authType = AuthTypeBoth
	}
	return q + "&auth_type=" + strconv.Itoa(authType)
}

// QueryAuth trades the auth_code the authorisation page returned for the
// authorizer's tokens and stores them (the refresh token only when present).
func (c *Client) QueryAuth(ctx context.Context, authCode string) (*AuthorizationInfo, error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	var r struct {
		apiStatus
		Info AuthorizationInfo `json:"authorization_info"`
	}
	body := map[string]string{"component_appid": c.component.AppID, "authorization_code": authCode}
	if err := c.withComponentToken(ctx, call{endpoint: "cgi-bin/component/api_query_auth", body: body}, &r); err != nil {
		return nil, err
	}
	info := &r.Info
	if info.AuthorizerAppID == "" {
		return nil, errors.New("wechat: api_query_auth: answer names no authorizer_appid")
	}
	if info.AuthorizerRefreshToken != "" {
		if err := c.tokens.Put(ctx, info.AuthorizerAppID, KindAuthorizerRefresh, Token{Value: info.AuthorizerRefreshToken}); err != nil {
			return nil, err
		}
	}
	if info.AuthorizerAccessToken != "" {
		if err := c.tokens.Put(ctx, info.AuthorizerAppID, KindAuthorizerToken, Token{Value: info.AuthorizerAccessToken, ExpiresAt: c.expiry(info.ExpiresIn)}); err != nil {
			return nil, err
		}
		c.cache.drop(info.AuthorizerAppID+"|"+KindAuthorizerToken, 1<<62)
	}
	return info, nil
}

// AuthorizerTokenResult is the answer of api_authorizer_token.
type AuthorizerTokenResult struct {
	AuthorizerAccessToken  string `json:"authorizer_access_token"`
	ExpiresIn              int    `json:"expires_in"`
	AuthorizerRefreshToken string `json:"authorizer_refresh_token"`
}

// AuthorizerToken calls api_authorizer_token, bypassing the store.
func (c *Client) AuthorizerToken(ctx context.Context, authorizerAppID, refreshToken string) (*AuthorizerTokenResult, error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	var r struct {
		apiStatus
		AuthorizerTokenResult
	}
	body := map[string]string{
		"component_appid":          c.component.AppID,
		"authorizer_appid":         authorizerAppID,
		"authorizer_refresh_token": refreshToken,
	}
	if err := c.withComponentToken(ctx, call{endpoint: "cgi-bin/component/api_authorizer_token", body: body}, &r); err != nil {
		return nil, err
	}
	return &r.AuthorizerTokenResult, nil
}

// refreshAuthorizerToken runs under the access-token lock, so the refresh
// token is read and replaced by one caller at a time.
func (c *Client) refreshAuthorizerToken(ctx context.Context, appID string) (string, int, error) {
	rt, err := c.tokens.Get(ctx, appID, KindAuthorizerRefresh)
	if err != nil {
		return "", 0, err
	}
	if rt.Value == "" {
		return "", 0, ErrNotAuthorized
	}
	r, err := c.AuthorizerToken(ctx, appID, rt.Value)
	if err != nil {
		return "", 0, err
	}
	if r.AuthorizerRefreshToken != "" && r.AuthorizerRefreshToken != rt.Value {
		if err := c.tokens.Put(ctx, appID, KindAuthorizerRefresh, Token{Value: r.AuthorizerRefreshToken}); err != nil {
			return "", 0, err
		}
	}
	return r.AuthorizerAccessToken, r.ExpiresIn, nil
}

// GetAuthorizer returns an authorized account's profile (principal name,
// verification, type) and its granted permissions.
func (c *Client) GetAuthorizer(ctx context.Context, authorizerAppID string) (*Authorizer, error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	var r struct {
		apiStatus
		Authorizer
	}
	body := map[string]string{"component_appid": c.component.AppID, "authorizer_appid": authorizerAppID}
	if err := c.withComponentToken(ctx, call{endpoint: "cgi-bin/component/api_get_authorizer_info", body: body}, &r); err != nil {
		return nil, err
	}
	return &r.Authorizer, nil
}

// HandleComponentPush checks and decrypts a push to the component's
// authorisation-event URL (always safe mode, component token and key), stores
// a component_verify_ticket, and returns the notice so the caller can act on
// authorized, updateauthorized and unauthorized. Answer WeChat "success".
func (c *Client) HandleComponentPush(ctx context.Context, q CallbackQuery, body []byte) (*Event, error) {
	if c.component.AppID == "" {
		return nil, errNoComponent
	}
	cr, err := NewCrypter(c.component.AESKey, c.component.AppID)
	if err != nil {
		return nil, err
	}
	if q.EncryptType == "" {
		q.EncryptType = "aes" // component pushes are always encrypted
	}
	plain, err := OpenPush(c.component.Token, cr, q, body)
	if err != nil {
		return nil, err
	}
	ev, err := ParseEvent(plain)
	if err != nil {
		return nil, err
	}
	if ev.AppID != c.component.AppID {
		return nil, fmt.Errorf("%w: push names component %q", ErrCallbackBody, ev.AppID)
	}
	if ev.InfoType == InfoVerifyTicket {
		if ev.ComponentVerifyTicket == "" {
			return nil, fmt.Errorf("%w: empty verify ticket", ErrCallbackBody)
		}
		if err := c.SaveVerifyTicket(ctx, ev.ComponentVerifyTicket); err != nil {
			return nil, err
		}
	}
	return ev, nil
}
