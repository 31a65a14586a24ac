package wechat

import (
	"context"
	"net/url"
)

// AccessTokenResult is the answer of cgi-bin/token and cgi-bin/stable_token.
type AccessTokenResult struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

// StableToken calls POST cgi-bin/stable_token. Without force, repeated calls
// return the same token while it is valid, so several holders of one AppSecret
// do not invalidate each other; force invalidates the previous token (20/day).
// It bypasses the TokenStore: use AccessToken for the shared token.
func (c *Client) StableToken(ctx context.Context, appID, secret string, force bool) (*AccessTokenResult, error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	body := map[string]any{"grant_type": "client_credential", "appid": appID, "secret": secret}
	if force {
		body["force_refresh"] = true
	}
	var r struct {
		apiStatus
		AccessTokenResult
	}
	if err := c.do(ctx, call{endpoint: "cgi-bin/stable_token", body: body}, &r); err != nil {
		return nil, err
	}
	return &r.AccessTokenResult, nil
}

// ClientCredentialToken calls GET cgi-bin/token. Every call mints a new token
// and the previous one dies about five minutes later, so OneID does not use it
// for shared tokens; it is here for completeness and for the simulator's tests.
func (c *Client) ClientCredentialToken(ctx context.Context, appID, secret string) (*AccessTokenResult, error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	q := url.Values{"grant_type": {"client_credential"}, "appid": {appID}, "secret": {secret}}
	var r struct {
		apiStatus
		AccessTokenResult
	}
	if err := c.do(ctx, call{endpoint: "cgi-bin/token", query: q}, &r); err != nil {
		return nil, err
	}
	return &r.AccessTokenResult, nil
}
