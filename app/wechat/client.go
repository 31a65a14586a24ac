// Package wechat is OneID's thin client for WeChat's server APIs: access and
// component tokens shared through the database, follower lists, OAuth,
// mini-program login, the third-party platform and open-platform binding, and
// the callback signature and AES scheme. WECHAT-API.md is its reference.
//
// One Client serves every tenant of a process. Every call has a deadline, every
// WeChat answer with a non-zero errcode comes back as *Error, and no token,
// secret or code is ever logged.
package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"
)

// Default hosts of the live service.
const (
	DefaultAPIBase  = "https://api.weixin.qq.com"
	DefaultOpenBase = "https://open.weixin.qq.com"
	DefaultMPBase   = "https://mp.weixin.qq.com"
)

// Config is what a Client is built from. Zero fields take the defaults.
type Config struct {
	APIBase  string // ONEID_WECHAT_API_BASE; default https://api.weixin.qq.com
	OpenBase string // host of the OAuth authorize page; default https://open.weixin.qq.com
	MPBase   string // host of the component login page; default https://mp.weixin.qq.com

	HTTPClient *http.Client  // default: a client with no timeout of its own (deadlines come from Timeout)
	Timeout    time.Duration // deadline of one call, retries and token refresh included; default 10 s
	Tokens     TokenStore    // required for any call that needs a token
	Logger     *slog.Logger  // default: discard

	// Component is OneID's third-party platform; empty when not configured.
	Component Component

	// Retries bounds the extra attempts after -1 or HTTP 5xx; default 3.
	Retries int
	// TokenMargin is how long before WeChat's expiry a token is replaced;
	// default 5 min, never more than half its lifetime.
	TokenMargin time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Component is the third-party platform's own registration.
type Component struct {
	AppID  string
	Secret string
	Token  string // callback token of the authorisation-event URL
	AESKey string // EncodingAESKey (43 characters)
}

// App is an app on whose behalf a call is made. A self-managed app carries its
// AppSecret; an authorized app gets its tokens through the component.
type App struct {
	AppID      string
	Secret     string
	Authorized bool
}

// Client talks to WeChat. It is safe for concurrent use.
type Client struct {
	apiBase, openBase, mpBase string
	http                      *http.Client
	timeout                   time.Duration
	tokens                    TokenStore
	log                       *slog.Logger
	component                 Component
	retries                   int
	margin                    time.Duration
	now                       func() time.Time

	flight singleflight.Group
	cache  tokenCache
}

// New builds a Client.
func New(cfg Config) *Client {
	c := &Client{
		apiBase:   trimBase(cfg.APIBase, DefaultAPIBase),
		openBase:  trimBase(cfg.OpenBase, DefaultOpenBase),
		mpBase:    trimBase(cfg.MPBase, DefaultMPBase),
		http:      cfg.HTTPClient,
		timeout:   cfg.Timeout,
		tokens:    cfg.Tokens,
		log:       cfg.Logger,
		component: cfg.Component,
		retries:   cfg.Retries,
		margin:    cfg.TokenMargin,
		now:       cfg.Now,
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.timeout <= 0 {
		c.timeout = 10 * time.Second
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.retries <= 0 {
		c.retries = 3
	}
	if c.margin <= 0 {
		c.margin = 5 * time.Minute
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.cache.m = map[string]Token{}
	return c
}

func trimBase(s, def string) string {
	s = strings.TrimRight(strings.TrimSpace(s), "/")
	if s == "" {
		return def
	}
	return s
}

// ComponentAppID is the third-party platform's appid ("" when not configured).
func (c *Client) ComponentAppID() string { return c.component.AppID }

// apiStatus is the errcode/errmsg pair every answer may carry.
type apiStatus struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func (s *apiStatus) status() *apiStatus { return s }

type withStatus interface{ status() *apiStatus }

// call is one API request: path below the API base, query, and a JSON body for POST.
type call struct {
	endpoint string
	query    url.Values
	body     any // nil for GET
}

// withDeadline bounds a public call by the client's timeout.
func (c *Client) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// do sends one call, retrying -1, HTTP 5xx and transport failures with jittered
// backoff while the deadline allows, and decodes the answer into out.
func (c *Client) do(ctx context.Context, r call, out withStatus) error {
	var err error
	for attempt := 0; ; attempt++ {
		err = c.once(ctx, r, out)
		if err == nil {
			return nil
		}
		var we *Error
		transient := Retryable(err) || (!errors.As(err, &we) && ctx.Err() == nil && !errors.Is(err, errBadAnswer))
		if !transient || attempt >= c.retries {
			return err
		}
		wait := backoff(attempt)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return err
		}
		c.log.DebugContext(ctx, "wechat retry", "endpoint", r.endpoint, "attempt", attempt+1, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// backoff is full jitter over 50 ms · 2^attempt, capped at 1 s.
func backoff(attempt int) time.Duration {
	ceil := 50 * time.Millisecond << attempt
	if ceil > time.Second {
		ceil = time.Second
	}
	return time.Duration(rand.Int64N(int64(ceil))) + time.Millisecond
}

var errBadAnswer = errors.New("answer is not WeChat JSON")

// maxAnswer bounds a response body; the largest legitimate one (a user/get page
// of 10,000 openids) is about 320 KB.
const maxAnswer = 8 << 20

func (c *Client) once(ctx context.Context, r call, out withStatus) error {
	u := c.apiBase + "/" + r.endpoint
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	method := http.MethodGet
	var body io.Reader
	if r.body != nil {
		method = http.MethodPost
		b, err := json.Marshal(r.body)
		if err != nil {
			return fmt.Errorf("wechat: %s: encode request: %w", r.endpoint, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("wechat: %s: %w", r.endpoint, stripURL(err))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error quotes the URL, which holds the token or secret.
		return fmt.Errorf("wechat: %s: %w", r.endpoint, stripURL(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return fmt.Errorf("wechat: %s: read answer: %w", r.endpoint, stripURL(err))
	}
	if resp.StatusCode != http.StatusOK {
		return &Error{Endpoint: r.endpoint, Status: resp.StatusCode}
	}
	if len(raw) > maxAnswer {
		return fmt.Errorf("wechat: %s: answer larger than %d bytes: %w", r.endpoint, maxAnswer, errBadAnswer)
	}
	st := out.status()
	*st = apiStatus{}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("wechat: %s: %w: %v", r.endpoint, errBadAnswer, err)
	}
	c.log.DebugContext(ctx, "wechat call", "endpoint", r.endpoint, "errcode", st.ErrCode, "ms", time.Since(start).Milliseconds())
	if st.ErrCode != 0 {
		return &Error{Endpoint: r.endpoint, Code: st.ErrCode, Msg: st.ErrMsg}
	}
	return nil
}

// stripURL drops the URL from a transport error so no token reaches a log.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// withToken runs a call that needs the app's access token: on 40001, 40014 or
// 42001 it expires exactly the token it used and retries once with a fresh one.
func (c *Client) withToken(ctx context.Context, app App, r call, out withStatus) error {
	kind := appTokenKind(app)
	refused := int64(-1)
	for retried := false; ; retried = true {
		tok, err := c.newerToken(app.AppID, kind, refused, func() (Token, error) { return c.appToken(ctx, app) })
		if err != nil {
			return err
		}
		q := url.Values{}
		for k, v := range r.query {
			q[k] = v
		}
		q.Set("access_token", tok.Value)
		err = c.do(ctx, call{endpoint: r.endpoint, query: q, body: r.body}, out)
		if err == nil || retried || !IsTokenInvalid(err) {
			return err
		}
		c.invalidate(ctx, app.AppID, kind, tok)
		refused = tok.Version
	}
}

// newerToken is get, but never a token of version refused or older (unless
// refused is -1): a refresh that began before WeChat refused the token may
// still hand it out (it read the store first, or put it back in this
// process's cache), and with 100 callers on one expired token that is the
// usual case, not the exception. It asks up to 3 more times.
func (c *Client) newerToken(appID, kind string, refused int64, get func() (Token, error)) (Token, error) {
	for i := 0; ; i++ {
		t, err := get()
		if err != nil || refused < 0 || t.Version > refused || i == 3 {
			return t, err
		}
		c.cache.drop(appID+"|"+kind, refused)
	}
}

// withComponentToken is withToken for calls authenticated by the component.
func (c *Client) withComponentToken(ctx context.Context, r call, out withStatus) error {
	refused := int64(-1)
	for retried := false; ; retried = true {
		tok, err := c.newerToken(c.component.AppID, KindComponentToken, refused, func() (Token, error) { return c.componentToken(ctx) })
		if err != nil {
			return err
		}
		q := url.Values{}
		for k, v := range r.query {
			q[k] = v
		}
		q.Set("component_access_token", tok.Value)
		err = c.do(ctx, call{endpoint: r.endpoint, query: q, body: r.body}, out)
		if err == nil || retried || !IsTokenInvalid(err) {
			return err
		}
		c.invalidate(ctx, c.component.AppID, KindComponentToken, tok)
		refused = tok.Version
	}
}
