// Package wechattest is OneID's WeChat simulator: an HTTP server that answers
// every endpoint the wechat client uses with WeChat's shapes, errors and
// semantics (WECHAT-API.md), plus a JSON control API under /_sim/ and Go
// methods to set up accounts, apps and people, push events and inject faults.
//
// Tests start one per test with Start(t); `oneid wxsim` serves one standalone.
package wechattest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"oneid/app/wechat"
)

// Sim is a running simulator. All methods are safe for concurrent use.
type Sim struct {
	opts   options
	ids    *ids
	ln     net.Listener
	srv    *http.Server
	url    string
	push   *http.Client
	router map[string]route
	wg     sync.WaitGroup
	rid    atomic.Uint64

	mu        sync.Mutex
	offset    time.Duration // added to the wall clock by Advance
	opens     map[string]*openAccount
	apps      map[string]*app
	appOrder  []string
	comps     map[string]*component
	tokens    map[string]*token
	ccLatest  map[string]*token // appid → latest cgi-bin/token token
	stable    map[string]*token // appid → current stable token
	forceLog  map[string][]time.Time
	codes     map[string]*code // OAuth and js codes
	refreshes map[string]*oauthRefresh
	people    map[Person]*personState
	payments  map[string]*payment
	nextRange uint64
	nextOwn   Person
	faults    map[string][]*Fault
	latency   map[string]time.Duration
	exhausted map[string]int // appid|path → 45009 or 45011
	daily     map[string]int // day|appid|path → calls
	minute    map[string]int // minute|appid|person → jscode2session calls
	calls     map[string]int
	log       []Delivery
}

type options struct {
	seed        string
	tokenTTL    time.Duration
	grace       time.Duration
	stableGrace time.Duration
	codeTTL     time.Duration
	addr        string
	pushClient  *http.Client
	pushTimeout time.Duration
	logger      *slog.Logger
	dailyLimits map[string]int
}

// Option configures New.
type Option func(*options)

// WithSeed changes the seed all ids derive from (default "oneid-wxsim").
func WithSeed(seed string) Option { return func(o *options) { o.seed = seed } }

// WithTokenTTL sets expires_in of access, authorizer and component tokens (default 7200 s).
func WithTokenTTL(d time.Duration) Option { return func(o *options) { o.tokenTTL = d } }

// WithGrace sets how long a cgi-bin/token token keeps working after the next
// one is minted (default 5 min).
func WithGrace(d time.Duration) Option { return func(o *options) { o.grace = d } }

// WithStableForceGrace sets how long a stable token keeps working after a
// force_refresh (default 0: it dies at once; WECHAT-API.md §11 leaves this open).
func WithStableForceGrace(d time.Duration) Option { return func(o *options) { o.stableGrace = d } }

// WithAddr listens on addr instead of 127.0.0.1:0.
func WithAddr(addr string) Option { return func(o *options) { o.addr = addr } }

// WithPushClient replaces the client that delivers pushes (default: loopback only, 5 s per attempt).
func WithPushClient(c *http.Client) Option { return func(o *options) { o.pushClient = c } }

// WithLogger logs each API call at debug level.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithDailyLimit caps calls per app and day to an endpoint path (then 45009).
// cgi-bin/token is capped at 2000 by default, as WeChat does.
func WithDailyLimit(path string, n int) Option {
	return func(o *options) { o.dailyLimits[trimPath(path)] = n }
}

// New starts a simulator on 127.0.0.1:0 (or WithAddr). Close it when done.
func New(opts ...Option) (*Sim, error) {
	o := options{
		seed:        "oneid-wxsim",
		tokenTTL:    7200 * time.Second,
		grace:       5 * time.Minute,
		codeTTL:     5 * time.Minute,
		addr:        "127.0.0.1:0",
		pushTimeout: 5 * time.Second,
		dailyLimits: map[string]int{"cgi-bin/token": 2000},
	}
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, fmt.Errorf("wechattest: listen %s: %w", o.addr, err)
	}
	s := &Sim{
		opts:      o,
		ids:       newIDs(o.seed),
		ln:        ln,
		url:       "http://" + ln.Addr().String(),
		opens:     map[string]*openAccount{},
		apps:      map[string]*app{},
		comps:     map[string]*component{},
		tokens:    map[string]*token{},
		ccLatest:  map[string]*token{},
		stable:    map[string]*token{},
		forceLog:  map[string][]time.Time{},
		codes:     map[string]*code{},
		refreshes: map[string]*oauthRefresh{},
		people:    map[Person]*personState{},
		payments:  map[string]*payment{},
		nextRange: 1 << 32,
		nextOwn:   1 << 56,
		faults:    map[string][]*Fault{},
		latency:   map[string]time.Duration{},
		exhausted: map[string]int{},
		daily:     map[string]int{},
		minute:    map[string]int{},
		calls:     map[string]int{},
	}
	s.router = s.routes()
	s.push = o.pushClient
	if s.push == nil {
		s.push = &http.Client{Timeout: o.pushTimeout, Transport: loopbackTransport{base: http.DefaultTransport}}
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Start is New for a test: it fails the test on error and closes at cleanup.
func Start(t testing.TB, opts ...Option) *Sim {
	t.Helper()
	s, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// URL is the base URL of the simulator: API, OAuth and component pages alike.
func (s *Sim) URL() string { return s.url }

// Close stops the server and waits for pushes in flight.
func (s *Sim) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	s.wg.Wait()
}

// Config returns a wechat.Config aimed at the simulator (API, OAuth and
// component pages), using hc for HTTP.
func (s *Sim) Config(hc *http.Client, store wechat.TokenStore) wechat.Config {
	return wechat.Config{APIBase: s.url, OpenBase: s.url, MPBase: s.url, HTTPClient: hc, Tokens: store}
}

// Client returns a wechat client on the simulator for a test, with the
// loopback guard and an in-memory token store unless store is given.
func (s *Sim) Client(t testing.TB, store wechat.TokenStore) *wechat.Client {
	if store == nil {
		store = wechat.NewMemoryStore()
	}
	return wechat.New(s.Config(LoopbackOnly(t), store))
}

// Now is the simulator's clock: the wall clock plus every Advance.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

func (s *Sim) now() time.Time { return time.Now().Add(s.offset) }

// Advance moves the simulator's clock forward: codes and tokens expire,
// grace periods end, quotas roll over.
func (s *Sim) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// Calls reports how many requests reached an endpoint path ("cgi-bin/stable_token").
func (s *Sim) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[trimPath(path)]
}

// Deliveries returns every push attempt report so far.
func (s *Sim) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.log...)
}

func trimPath(p string) string { return strings.Trim(p, "/") }

// Fault makes the next Times calls to Path (all apps, or AppID's only) fail
// with ErrCode, or with HTTP status HTTPStatus, after Latency.
type Fault struct {
	Path       string        `json:"path"`
	ErrCode    int           `json:"errcode,omitempty"`
	HTTPStatus int           `json:"http_status,omitempty"`
	Times      int           `json:"times,omitempty"` // default 1
	Latency    time.Duration `json:"-"`
}

// FailNext queues a fault for the next calls to path.
func (s *Sim) FailNext(path string, errcode, times int) {
	s.Inject(Fault{Path: path, ErrCode: errcode, Times: times})
}

// FailNextHTTP makes the next calls to path answer with an HTTP status.
func (s *Sim) FailNextHTTP(path string, status, times int) {
	s.Inject(Fault{Path: path, HTTPStatus: status, Times: times})
}

// Inject queues any fault.
func (s *Sim) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.Path = trimPath(f.Path)
	if f.Times <= 0 {
		f.Times = 1
	}
	s.faults[f.Path] = append(s.faults[f.Path], &f)
}

// SetLatency adds latency to every call to path (0 removes it).
func (s *Sim) SetLatency(path string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.latency, trimPath(path))
		return
	}
	s.latency[trimPath(path)] = d
}

// ExhaustQuota makes every call of the app to path answer errcode (45009 daily
// or 45011 per-minute) until ClearQuota. path "" means every path.
func (s *Sim) ExhaustQuota(appID, path string, errcode int) {
	if errcode == 0 {
		errcode = wechat.CodeDailyQuota
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exhausted[appID+"|"+trimPath(path)] = errcode
}

// ClearQuota lifts ExhaustQuota and the day's counters for the app.
func (s *Sim) ClearQuota(appID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearQuota(appID)
}

func (s *Sim) clearQuota(appID string) {
	for k := range s.exhausted {
		if strings.HasPrefix(k, appID+"|") {
			delete(s.exhausted, k)
		}
	}
	for k := range s.daily {
		if strings.Contains(k, "|"+appID+"|") {
			delete(s.daily, k)
		}
	}
}

// admit applies quota exhaustion and daily limits; s.mu held.
func (s *Sim) admit(appID, path string) *apiError {
	if c, ok := s.exhausted[appID+"|"+path]; ok {
		return errc(c)
	}
	if c, ok := s.exhausted[appID+"|"]; ok {
		return errc(c)
	}
	if limit, ok := s.opts.dailyLimits[path]; ok {
		k := s.now().Format("20060102") + "|" + appID + "|" + path
		if s.daily[k] >= limit {
			return errc(wechat.CodeDailyQuota)
		}
		s.daily[k]++
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var errUnknownApp = errors.New("wechattest: unknown appid")
