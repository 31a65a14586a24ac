// Package ingest brings identities into OneID from WeChat: official-account
// pushes (callback*.go), web OAuth (oauth*.go), the tenant's API calls for
// mini-program login, paid UnionIDs and look-ups (api*.go), CSV imports
// (import*.go) and follower syncs (sync*.go). Every path ends in
// models.Resolve; none of them knows HTTP.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"oneid/app/wechat"
	"oneid/models"
)

// Callback errors. The HTTP layer maps them: unknown → 404 without detail,
// signature → 403, body → 400, unavailable → 503 (WeChat then retries).
var (
	ErrUnknownCallback  = errors.New("ingest: no app has this callback URL")
	ErrInboxUnavailable = errors.New("ingest: the event could not be stored in time")
)

// Callbacks receives the pushes of official accounts at their callback URLs
// (/wechat/callback/<callback_key>). A push is checked (signature, safe-mode
// decryption), stored in the inbox with one small insert shared with the
// pushes arriving alongside it (group commit), and answered; a worker (Run)
// resolves stored events in batches. WeChat waits 5 s: when the inbox cannot
// take an event within AckBudget the push is refused so WeChat retries it.
// It is safe for concurrent use.
type Callbacks struct {
	db        *gorm.DB
	wx        *wechat.Client
	sealer    *models.Sealer
	log       *slog.Logger
	now       func() time.Time
	component wechat.Component
	cfg       CallbacksConfig

	mu   sync.Mutex
	apps map[string]cachedApp // by callback key
	// forgets counts ForgetApp calls: a look-up that read the database before
	// one does not keep what it read, which may be the secrets just dropped.
	forgets uint64

	startOnce sync.Once
	queue     chan *inboxItem
	stop      chan struct{}
	wake      chan struct{}
	writers   sync.WaitGroup
}

// CallbacksConfig tunes Callbacks; zero fields take the defaults.
type CallbacksConfig struct {
	DB     *gorm.DB
	WeChat *wechat.Client // for user/info on subscribe; nil: events are stored without UnionIDs
	Sealer *models.Sealer // opens the apps' callback tokens, AES keys and secrets
	Log    *slog.Logger
	Now    func() time.Time
	// Component is OneID's third-party platform: pushes to an authorized app
	// are signed and encrypted with its token and key.
	Component wechat.Component

	AckBudget time.Duration // longest wait to store a push before refusing it; default 4 s
	Writers   int           // concurrent inbox inserts; default 4
	MaxBatch  int           // most pushes per insert; default 500
	// AppCacheTTL is how long an app's callback secrets are kept in memory;
	// default 30 s. When an admin unbinds or rebinds an app, the portal calls
	// ForgetApp on the instance that served the admin, which refuses the old
	// secrets at once; other instances know nothing of it and keep accepting
	// pushes signed with them until their copy is this old.
	AppCacheTTL time.Duration
	ClaimBatch  int           // events the worker resolves at once; default 1000
	Lease       time.Duration // how long a claimed batch is the worker's; default 2 min
	Poll        time.Duration // how often the worker looks for events stored elsewhere; default 1 s
	Gather      time.Duration // how long the worker lets a batch fill after a wake-up; default 200 ms
	Retention   time.Duration // how long settled events are kept to catch retries; default 24 h
}

// NewCallbacks builds the receiver. The inbox writers start with the first push.
func NewCallbacks(cfg CallbacksConfig) *Callbacks {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.AckBudget, 4*time.Second)
	def(&cfg.AppCacheTTL, 30*time.Second)
	def(&cfg.Lease, 2*time.Minute)
	def(&cfg.Poll, time.Second)
	def(&cfg.Gather, 200*time.Millisecond)
	def(&cfg.Retention, 24*time.Hour)
	if cfg.Writers <= 0 {
		cfg.Writers = 4
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 500
	}
	if cfg.ClaimBatch <= 0 {
		cfg.ClaimBatch = 1000
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Now().UTC() }
	}
	return &Callbacks{db: cfg.DB, wx: cfg.WeChat, sealer: cfg.Sealer, log: cfg.Log, now: cfg.Now,
		component: cfg.Component, cfg: cfg, apps: map[string]cachedApp{},
		queue: make(chan *inboxItem, 8192), stop: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// callbackApp is what checking a push needs of its app, secrets opened.
type callbackApp struct {
	id, tenantID int64
	appID        string
	token        string
	crypter      *wechat.Crypter // nil: plaintext mode (the app has no EncodingAESKey)
}

type cachedApp struct {
	app    *callbackApp
	loaded time.Time
}

// app finds the app of a callback key, from memory when it was looked up
// lately: a push then needs no database read before its insert.
func (c *Callbacks) app(ctx context.Context, key string) (*callbackApp, error) {
	now := time.Now()
	c.mu.Lock()
	hit, ok := c.apps[key]
	forgets := c.forgets
	c.mu.Unlock()
	if ok && now.Sub(hit.loaded) < c.cfg.AppCacheTTL {
		return hit.app, nil
	}
	a, err := models.FindAppByCallbackKey(c.db.WithContext(ctx), key)
	var ca *callbackApp
	switch {
	case errors.Is(err, models.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrInboxUnavailable, err)
	case !a.IsOfficialAccount():
	default:
		if ca, err = c.openCallbackSecrets(a); err != nil {
			c.log.Warn("ingest: callback secrets do not open", "app_id", a.ID, "err", err)
			ca = nil
		}
	}
	c.mu.Lock()
	if len(c.apps) > 10000 {
		clear(c.apps) // only bound apps are kept; past this many, start afresh rather than grow
	}
	if ca != nil && c.forgets == forgets {
		c.apps[key] = cachedApp{app: ca, loaded: now}
	}
	c.mu.Unlock()
	if ca == nil {
		return nil, ErrUnknownCallback
	}
	return ca, nil
}

// ForgetApp drops a callback key from memory, after its app was unbound or
// its secrets changed: the next push under it reads the app again. Only this
// instance forgets; others wait out AppCacheTTL.
func (c *Callbacks) ForgetApp(key string) {
	c.mu.Lock()
	delete(c.apps, key)
	c.forgets++
	c.mu.Unlock()
}

// openCallbackSecrets reads the token and key that sign and encrypt the
// app's pushes: its own, or for an authorized app without its own, those of
// OneID's third-party platform (whose appid is then inside the ciphertext).
// An app with no token has no usable callback URL.
func (c *Callbacks) openCallbackSecrets(a *models.App) (*callbackApp, error) {
	token, err := models.OpenAppSecret(c.sealer, a, models.ColCallbackToken)
	if err != nil {
		return nil, err
	}
	aesKey, err := models.OpenAppSecret(c.sealer, a, models.ColAESKey)
	if err != nil {
		return nil, err
	}
	cryptAppID := a.AppID
	if token == "" && a.BindingMode == models.ModeAuthorized && c.component.Token != "" {
		token, aesKey, cryptAppID = c.component.Token, c.component.AESKey, c.component.AppID
	}
	if token == "" {
		return nil, errors.New("ingest: the app has no callback token")
	}
	ca := &callbackApp{id: a.ID, tenantID: a.TenantID, appID: a.AppID, token: token}
	if aesKey != "" {
		if ca.crypter, err = wechat.NewCrypter(aesKey, cryptAppID); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

// VerifyURL answers WeChat's GET check of a callback URL: the echostr when
// the signature is the app's.
func (c *Callbacks) VerifyURL(ctx context.Context, key string, q wechat.CallbackQuery) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.AckBudget)
	defer cancel()
	a, err := c.app(ctx, key)
	if err != nil {
		return "", err
	}
	return wechat.VerifyURL(a.token, q)
}

// Followers' events the inbox keeps; other pushes (messages, menu clicks,
// location reports) are answered and dropped.
var keptEvents = map[string]bool{wechat.EventSubscribe: true, wechat.EventUnsubscribe: true, wechat.EventScan: true}

// Receive takes one push. nil means "answer success": the event is stored
// (or was stored by an earlier attempt, or is not one OneID keeps). Nothing
// is stored when the push does not verify.
func (c *Callbacks) Receive(ctx context.Context, key string, q wechat.CallbackQuery, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.AckBudget)
	defer cancel()
	a, err := c.app(ctx, key)
	if err != nil {
		return err
	}
	plain, err := wechat.OpenPush(a.token, a.crypter, q, body)
	if err != nil {
		return err
	}
	ev, err := wechat.ParseEvent(plain)
	if err != nil {
		return err
	}
	if ev.MsgType != "event" || !keptEvents[ev.Event] {
		return nil
	}
	if !models.ValidWeChatID(ev.FromUserName) {
		c.log.Warn("ingest: push without a usable openid dropped", "app_id", a.id, "event", ev.Event)
		return nil
	}
	row := models.CallbackEvent{TenantID: a.tenantID, AppID: a.id,
		DedupKey: models.CallbackDedupKey(ev.FromUserName, ev.CreateTime, ev.Event),
		OpenID:   ev.FromUserName, Event: ev.Event, EventKey: ev.EventKey, CreateTime: ev.CreateTime,
		ReceivedAt: c.now()}
	return c.store(ctx, row)
}

// IsRefusal reports a push that failed its checks (signature, body, key):
// WeChat should not retry it, and nothing was stored.
func IsRefusal(err error) bool {
	return errors.Is(err, wechat.ErrSignature) || errors.Is(err, wechat.ErrDecrypt) ||
		errors.Is(err, wechat.ErrCallbackBody) || errors.Is(err, ErrUnknownCallback)
}

// inboxItem is one push waiting for the insert that stores it.
type inboxItem struct {
	ctx  context.Context
	row  models.CallbackEvent
	done chan error
}

// store hands the event to the inbox writers and waits until it is committed,
// or until ctx's deadline.
func (c *Callbacks) store(ctx context.Context, row models.CallbackEvent) error {
	c.startOnce.Do(c.startWriters)
	it := &inboxItem{ctx: ctx, row: row, done: make(chan error, 1)}
	select {
	case c.queue <- it:
	case <-ctx.Done():
		return ErrInboxUnavailable
	}
	select {
	case err := <-it.done:
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInboxUnavailable, err)
		}
		return nil
	case <-ctx.Done():
		return ErrInboxUnavailable
	}
}

func (c *Callbacks) startWriters() {
	for i := 0; i < c.cfg.Writers; i++ {
		c.writers.Add(1)
		go c.writeInbox()
	}
}

// writeInbox is one inbox writer: it takes the first waiting push and every
// other one already queued (up to MaxBatch) and stores them in one insert.
// While one insert commits, the next batch gathers, so under load each commit
// carries many events and the latency stays one commit or two.
func (c *Callbacks) writeInbox() {
	defer c.writers.Done()
	batch := make([]*inboxItem, 0, c.cfg.MaxBatch)
	rows := make([]models.CallbackEvent, 0, c.cfg.MaxBatch)
	for {
		select {
		case <-c.stop:
			return
		case first := <-c.queue:
			batch = append(batch[:0], first)
		}
	gather:
		for len(batch) < c.cfg.MaxBatch {
			select {
			case it := <-c.queue:
				batch = append(batch, it)
			default:
				break gather
			}
		}
		rows = rows[:0]
		live := batch[:0]
		for _, it := range batch {
			if it.ctx.Err() != nil {
				continue // its push was refused already; WeChat retries it
			}
			live = append(live, it)
			rows = append(rows, it.row)
		}
		if len(live) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.AckBudget)
		err := models.StoreCallbackEvents(c.db.WithContext(ctx), rows)
		cancel()
		if err != nil {
			c.log.Error("ingest: store callback events", "events", len(rows), "err", err)
		}
		for _, it := range live {
			it.done <- err
		}
		if err == nil {
			c.nudge()
		}
	}
}

// nudge wakes the worker of this process: events are waiting.
func (c *Callbacks) nudge() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Close stops the inbox writers (after the HTTP server stopped taking pushes).
func (c *Callbacks) Close() {
	c.startOnce.Do(func() {})
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.writers.Wait()
}

// sceneOf is the subscribe scene a push implies when user/info gives none.
func sceneOf(ev *models.CallbackEvent) string {
	if ev.Event == wechat.EventSubscribe && strings.HasPrefix(ev.EventKey, "qrscene_") {
		return "ADD_SCENE_QR_CODE"
	}
	return ""
}
