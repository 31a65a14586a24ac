package wechat

import "context"

// Open-platform binding. These calls need an authorized app (the authorizer
// access token with permission set 24/25); a plain app token gets 48001.

// OpenCreate creates an unverified open-platform account with the app's
// principal and binds the app to it; it returns the new open_appid.
func (c *Client) OpenCreate(ctx context.Context, app App) (string, error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	var r struct {
		apiStatus
		OpenAppID string `json:"open_appid"`
	}
	if err := c.withToken(ctx, app, call{endpoint: "cgi-bin/open/create", body: map[string]string{"appid": app.AppID}}, &r); err != nil {
		return "", err
	}
	return r.OpenAppID, nil
}

// OpenBind binds the app to an open-platform account. WeChat refuses a
// principal mismatch with 89001 and an app already bound with 89000.
func (c *Client) OpenBind(ctx context.Context, app App, openAppID string) error {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	var r struct{ apiStatus }
	return c.withToken(ctx, app, call{endpoint: "cgi-bin/open/bind", body: map[string]string{"appid": app.AppID, "open_appid": openAppID}}, &r)
}

// OpenUnbind unbinds the app from an open-platform account created by the API.
func (c *Client) OpenUnbind(ctx context.Context, app App, openAppID string) error {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	var r struct{ apiStatus }
	return c.withToken(ctx, app, call{endpoint: "cgi-bin/open/unbind", body: map[string]string{"appid": app.AppID, "open_appid": openAppID}}, &r)
}

// OpenGet returns the open_appid the app is bound to, or "" when it is not
// bound (WeChat's 89002, which is an answer here, not an error).
func (c *Client) OpenGet(ctx context.Context, app App) (string, error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	var r struct {
		apiStatus
		OpenAppID string `json:"open_appid"`
	}
	err := c.withToken(ctx, app, call{endpoint: "cgi-bin/open/get", body: map[string]string{"appid": app.AppID}}, &r)
	if IsCode(err, CodeOpenNotExists) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return r.OpenAppID, nil
}
