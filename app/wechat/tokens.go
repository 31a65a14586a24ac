package wechat

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"oneid/models"
)

// Token kinds kept in the TokenStore, keyed with an appid. The component's own
// tokens use the component appid.
const (
	KindAccessToken       = "access_token"             // self-managed app, from stable_token
	KindAuthorizerToken   = "authorizer_access_token"  // authorized app, from api_authorizer_token
	KindAuthorizerRefresh = "authorizer_refresh_token" // authorized app; no fixed lifetime
	KindComponentToken    = "component_access_token"   // the component
	KindVerifyTicket      = "component_verify_ticket"  // the component, pushed every 10 min
)

// Token is one stored token. ExpiresAt is when OneID stops using it (a margin
// before WeChat's own expiry); zero means no known expiry. Version grows with
// every new value, so a caller can expire exactly the token it used.
type Token = models.WechatToken

// TokenStats counts, per app, token refreshes and tokens WeChat rejected as
// stale although OneID still held them as valid.
type TokenStats = models.WechatTokenStats

// TokenStore keeps tokens where every instance of OneID sees them.
type TokenStore interface {
	// Get returns the stored token, or the zero Token if there is none.
	Get(ctx context.Context, appID, kind string) (Token, error)
	// Put stores a value obtained elsewhere (verify ticket, authorizer tokens
	// from api_query_auth). An empty value is refused and never overwrites.
	Put(ctx context.Context, appID, kind string, t Token) error
	// Refresh runs fn while holding a lock on (appID, kind) that excludes every
	// other instance. fn sees the current token; if it reports a change, the new
	// value is stored with the next version and counted as a refresh.
	Refresh(ctx context.Context, appID, kind string, fn func(cur Token) (next Token, changed bool, err error)) (Token, error)
	// CompareAndExpire records that WeChat rejected the token of that version
	// and expires it if it is still the stored one; it reports whether it did.
	CompareAndExpire(ctx context.Context, appID, kind string, version int64) (bool, error)
	// Stats sums the counters of all the app's tokens.
	Stats(ctx context.Context, appID string) (TokenStats, error)
}

// ErrNoTokenStore is returned by calls that need a token from a Client built without a store.
var ErrNoTokenStore = errors.New("wechat: client has no token store")

// ErrNotAuthorized means OneID holds no authorizer refresh token for the app:
// it has not been authorized through the component, or the authorization was cancelled.
var ErrNotAuthorized = errors.New("wechat: app has not authorized the component")

// ErrNoVerifyTicket means no component_verify_ticket has been pushed yet.
var ErrNoVerifyTicket = errors.New("wechat: no component_verify_ticket received yet")

type tokenCache struct {
	mu sync.Mutex
	m  map[string]Token
}

func (tc *tokenCache) get(key string) (Token, bool) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	t, ok := tc.m[key]
	return t, ok
}

func (tc *tokenCache) put(key string, t Token) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if cur, ok := tc.m[key]; !ok || cur.Version <= t.Version {
		tc.m[key] = t
	}
}

func (tc *tokenCache) drop(key string, version int64) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if cur, ok := tc.m[key]; ok && cur.Version <= version {
		delete(tc.m, key)
	}
}

func (c *Client) usable(t Token) bool {
	return t.Value != "" && (t.ExpiresAt.IsZero() || c.now().Before(t.ExpiresAt))
}

// expiry turns WeChat's expires_in into the moment OneID stops using the token.
func (c *Client) expiry(expiresIn int) time.Time {
	life := time.Duration(expiresIn) * time.Second
	if life <= 0 {
		life = 7200 * time.Second
	}
	margin := c.margin
	if margin > life/2 {
		margin = life / 2
	}
	return c.now().Add(life - margin)
}

// managed returns a usable token of (appID, kind), fetching a new one when the
// stored one is missing or expired. Within a process one caller fetches
// (singleflight); across processes the store's lock admits one, and the others
// find its token when they get the lock.
func (c *Client) managed(ctx context.Context, appID, kind string, fetch func(context.Context) (string, int, error)) (Token, error) {
	if c.tokens == nil {
		return Token{}, ErrNoTokenStore
	}
	key := appID + "|" + kind
	if t, ok := c.cache.get(key); ok && c.usable(t) {
		return t, nil
	}
	ch := c.flight.DoChan(key, func() (any, error) {
		// The leader's caller may give up; the others still want the token.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		t, err := c.tokens.Get(fctx, appID, kind)
		if err != nil {
			return Token{}, err
		}
		if c.usable(t) {
			c.cache.put(key, t)
			return t, nil
		}
		t, err = c.tokens.Refresh(fctx, appID, kind, func(cur Token) (Token, bool, error) {
			if c.usable(cur) {
				return cur, false, nil
			}
			value, expiresIn, err := fetch(fctx)
			if err != nil {
				return cur, false, err
			}
			if value == "" {
				return cur, false, fmt.Errorf("wechat: %s for %s: empty token in answer: %w", kind, appID, errBadAnswer)
			}
			c.log.InfoContext(fctx, "wechat token refreshed", "appid", appID, "kind", kind, "expires_in", expiresIn)
			return Token{Value: value, ExpiresAt: c.expiry(expiresIn)}, true, nil
		})
		if err != nil {
			return Token{}, err
		}
		c.cache.put(key, t)
		return t, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return Token{}, res.Err
		}
		return res.Val.(Token), nil
	case <-ctx.Done():
		return Token{}, fmt.Errorf("wechat: waiting for %s of %s: %w", kind, appID, ctx.Err())
	}
}

// invalidate expires exactly the token WeChat refused, here and in the store.
func (c *Client) invalidate(ctx context.Context, appID, kind string, t Token) {
	c.cache.drop(appID+"|"+kind, t.Version)
	expired, err := c.tokens.CompareAndExpire(ctx, appID, kind, t.Version)
	if err != nil {
		c.log.WarnContext(ctx, "wechat token expire failed", "appid", appID, "kind", kind, "err", err)
		return
	}
	c.log.WarnContext(ctx, "wechat rejected a token OneID held as valid", "appid", appID, "kind", kind, "version", t.Version, "expired_here", expired)
}

func appTokenKind(app App) string {
	if app.Authorized {
		return KindAuthorizerToken
	}
	return KindAccessToken
}

// AccessToken returns a usable access token for the app, shared with every
// other instance through the store. Self-managed apps use stable_token without
// force_refresh; authorized apps use api_authorizer_token.
func (c *Client) AccessToken(ctx context.Context, app App) (string, error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	t, err := c.appToken(ctx, app)
	return t.Value, err
}

func (c *Client) appToken(ctx context.Context, app App) (Token, error) {
	if app.AppID == "" {
		return Token{}, errors.New("wechat: app has no appid")
	}
	if app.Authorized {
		return c.managed(ctx, app.AppID, KindAuthorizerToken, func(ctx context.Context) (string, int, error) {
			return c.refreshAuthorizerToken(ctx, app.AppID)
		})
	}
	if app.Secret == "" {
		return Token{}, fmt.Errorf("wechat: app %s has neither a secret nor an authorization", app.AppID)
	}
	return c.managed(ctx, app.AppID, KindAccessToken, func(ctx context.Context) (string, int, error) {
		at, err := c.StableToken(ctx, app.AppID, app.Secret, false)
		if err != nil {
			return "", 0, err
		}
		return at.AccessToken, at.ExpiresIn, nil
	})
}

// TokenStats reports the app's refresh and rejection counters.
func (c *Client) TokenStats(ctx context.Context, appID string) (TokenStats, error) {
	if c.tokens == nil {
		return TokenStats{}, ErrNoTokenStore
	}
	return c.tokens.Stats(ctx, appID)
}

// MemoryStore is a TokenStore for one process (tests, the simulator's
// benchmark). Production uses models.WechatTokenStore.
type MemoryStore struct {
	mu    sync.Mutex
	rows  map[string]*memRow
	locks map[string]*sync.Mutex
	now   func() time.Time
}

type memRow struct {
	appID string
	tok   Token
	stats TokenStats
}

// NewMemoryStore returns an empty in-process store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{rows: map[string]*memRow{}, locks: map[string]*sync.Mutex{}, now: time.Now}
}

func (s *MemoryStore) row(appID, kind string) *memRow {
	k := appID + "|" + kind
	r := s.rows[k]
	if r == nil {
		r = &memRow{appID: appID}
		s.rows[k] = r
	}
	return r
}

func (s *MemoryStore) Get(_ context.Context, appID, kind string) (Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.row(appID, kind).tok, nil
}

func (s *MemoryStore) Put(_ context.Context, appID, kind string, t Token) error {
	if t.Value == "" {
		return fmt.Errorf("wechat: refusing to store an empty %s for %s", kind, appID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.row(appID, kind)
	t.Version = r.tok.Version + 1
	r.tok = t
	return nil
}

func (s *MemoryStore) Refresh(ctx context.Context, appID, kind string, fn func(Token) (Token, bool, error)) (Token, error) {
	s.mu.Lock()
	k := appID + "|" + kind
	l := s.locks[k]
	if l == nil {
		l = &sync.Mutex{}
		s.locks[k] = l
	}
	cur := s.row(appID, kind).tok
	s.mu.Unlock()
	l.Lock()
	defer l.Unlock()
	s.mu.Lock()
	cur = s.row(appID, kind).tok
	s.mu.Unlock()
	next, changed, err := fn(cur)
	if err != nil || !changed {
		return cur, err
	}
	if next.Value == "" {
		return cur, fmt.Errorf("wechat: refusing to store an empty %s for %s", kind, appID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.row(appID, kind)
	next.Version = r.tok.Version + 1
	r.tok = next
	r.stats.Refreshes++
	r.stats.LastRefreshAt = s.now()
	return next, nil
}

func (s *MemoryStore) CompareAndExpire(_ context.Context, appID, kind string, version int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.row(appID, kind)
	r.stats.Rejections++
	r.stats.LastRejectionAt = s.now()
	if r.tok.Version != version || r.tok.Value == "" {
		return false, nil
	}
	r.tok.ExpiresAt = time.Unix(0, 0)
	return true, nil
}

func (s *MemoryStore) Stats(_ context.Context, appID string) (TokenStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out TokenStats
	for _, r := range s.rows {
		if r.appID == appID {
			out.Add(r.stats)
		}
	}
	return out, nil
}
