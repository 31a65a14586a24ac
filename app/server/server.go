// Package server is the running system of `oneid serve`, wired in one place:
// the migrated database, the WeChat client, the HTTP application on its
// listener, the callback worker, the job runner with the sync, import and
// export kinds, the sync scheduler, the export sweeper and the OAuth purge
// sweep, and (serve --demo) the in-process WeChat simulator. serve and the
// tests that run OneID in process start it through Start, so they run what
// serve runs.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"

	"oneid/app/binding"
	"oneid/app/config"
	"oneid/app/demo"
	"oneid/app/export"
	"oneid/app/ingest"
	"oneid/app/jobs"
	"oneid/app/web"
	"oneid/app/wechat"
	"oneid/migrations"
	"oneid/models"
)

// Options is what a caller adds to the configuration.
type Options struct {
	// Log receives every log line; nil discards them.
	Log *slog.Logger
	// WrapWeChat, when set, wraps the WeChat client's transport (tests: a
	// transport that refuses any host but loopback).
	WrapWeChat func(http.RoundTripper) http.RoundTripper
	// Demo, when set, starts serve --demo's WeChat simulator before anything
	// else and points the WeChat settings at it, through a loopback-only
	// transport. The caller runs Running.Demo.Prepare once Start returns.
	Demo *DemoOptions
}

// DemoOptions are the simulator's settings (demo.Config's Scale and
// SyncLatency; zero: serve --demo's).
type DemoOptions struct {
	Scale       float64
	SyncLatency time.Duration
}

// Running is a started system. Its HTTP application serves on Addr until
// Stop.
type Running struct {
	// Config is the configuration as started: with the secret key of the
	// embedded database and, in demo mode, the simulator's WeChat settings.
	Config config.Config
	DB     *gorm.DB
	// WeChat is the process's one WeChat client; WeChatTransport is its
	// transport before any wrapping (for closing idle connections).
	WeChat          *wechat.Client
	WeChatTransport *http.Transport
	// Demo is the simulator of Options.Demo (nil without it).
	Demo *demo.Demo
	// Addr is the listener's address; URL reaches it on this machine
	// (http://, an unspecified host replaced by 127.0.0.1).
	Addr net.Addr
	URL  string

	app            *fiber.App
	callbacks      *ingest.Callbacks
	stopWorker     context.CancelFunc
	workerDone     chan struct{}
	stopBackground context.CancelFunc
	workers        sync.WaitGroup
	served         chan error
	listenerDone   chan struct{}
	stopOnce       sync.Once
	stopErr        error
}

// Open prepares what every subcommand starts from: the secret key (the
// embedded database's is read from, or made in, the data folder), the sealer
// and the database with every migration applied.
func Open(ctx context.Context, cfg *config.Config, log *slog.Logger) (*gorm.DB, *models.Sealer, error) {
	if err := cfg.EnsureEmbeddedKey(); err != nil {
		return nil, nil, err
	}
	if cfg.SecretKeyGenerated {
		log.Warn("generated a new secret key for the embedded database; keep it with the data folder, and set ONEID_SECRET_KEY in production",
			"path", cfg.DataDir+"/secret.key")
	}
	sealer, err := models.NewSealer(cfg.SecretKey)
	if err != nil {
		return nil, nil, err
	}
	db, err := models.Open(cfg.DatabaseURL)
	if err != nil {
		return nil, nil, err
	}
	applied, err := migrations.Apply(ctx, db)
	if err != nil {
		return nil, nil, fmt.Errorf("migrate %s: %w", models.RedactURL(cfg.DatabaseURL), err)
	}
	if len(applied) > 0 {
		log.Info("applied migrations", "versions", applied)
	}
	return db, sealer, nil
}

// Start opens the database (Open), then starts, in this order: the demo
// simulator (Options.Demo), the callback worker, the job runner with its
// kinds, the export sweeper, the OAuth purge sweep, the sync scheduler, and
// the HTTP application on cfg.Addr. When ctx ends the background loops stop
// (the job runner hands the jobs it holds back to the queue); the HTTP
// application and the callback worker run until Stop. On an error, whatever
// was started is stopped again.
func Start(ctx context.Context, cfg config.Config, opts Options) (_ *Running, err error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, sealer, err := Open(ctx, &cfg, log)
	if err != nil {
		return nil, err
	}
	r := &Running{Config: cfg, DB: db, served: make(chan error, 1), listenerDone: make(chan struct{})}
	defer func() {
		if err != nil {
			r.teardown()
		}
	}()
	wraps := []func(http.RoundTripper) http.RoundTripper{}
	if opts.Demo != nil {
		dm, err := demo.Start(demo.Config{DB: db, Sealer: sealer, Log: log, DataDir: cfg.DataDir,
			Scale: opts.Demo.Scale, SyncLatency: opts.Demo.SyncLatency})
		if err != nil {
			return nil, err
		}
		r.Demo = dm
		r.Config.WeChat = dm.WeChat()
		wraps = append(wraps, dm.Transport)
		log.Info("demo mode: WeChat is the in-process simulator", "simulator", dm.SimURL())
	}
	if opts.WrapWeChat != nil {
		wraps = append(wraps, opts.WrapWeChat)
	}
	r.WeChat, r.WeChatTransport = newWeChat(r.Config, db, sealer, log, wraps)
	deps := web.Deps{Config: r.Config, DB: db, Log: log, Sealer: sealer, WeChat: r.WeChat}
	// Official accounts' pushes: stored by the HTTP handlers, resolved by
	// this worker (every instance runs one; they share the inbox by lease).
	r.callbacks = web.NewCallbacks(deps)
	deps.Callbacks = r.callbacks
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	r.stopWorker, r.workerDone = stopWorker, make(chan struct{})
	go func() {
		defer close(r.workerDone)
		_ = r.callbacks.Run(workerCtx)
	}()
	app, err := web.New(deps)
	if err != nil {
		return nil, err
	}
	// Background work stops with the server: the job runner hands the jobs
	// it holds back to the queue (another instance, or this one restarted,
	// resumes them from their checkpoints) and the sync scheduler stops.
	background, stopBackground := context.WithCancel(ctx)
	r.stopBackground = stopBackground
	runner := jobs.New(jobs.Config{DB: db, Log: log})
	syncer := ingest.NewSyncer(ingest.SyncConfig{DB: db, WeChat: r.WeChat, Sealer: sealer, Log: log})
	runner.Register(syncer.Kind())
	// CSV imports too large to write during the upload.
	runner.Register(ingest.NewImporter(ingest.ImporterConfig{DB: db, Log: log}).Kind())
	// Large CSV exports run as jobs; their kept files expire and are swept.
	exporter := export.New(export.Config{DB: db, Log: log, Keep: r.Config.Export.Keep})
	runner.Register(exporter.Kind())
	r.workers.Go(func() { exporter.Sweep(background, 10*time.Minute) })
	// Expired OAuth states and tickets, purged here rather than in visitors' requests.
	r.workers.Go(func() { ingest.SweepOAuth(background, db, log, time.Minute) })
	r.workers.Go(func() { _ = runner.Run(background) })
	r.workers.Go(func() { _ = syncer.RunSchedules(background, time.Minute, runner.Wake) })

	ln, err := net.Listen("tcp", r.Config.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", r.Config.Addr, err)
	}
	r.Addr, r.URL = ln.Addr(), loopbackURL(ln.Addr())
	r.app = app
	go func() {
		err := app.Listener(ln)
		close(r.listenerDone)
		r.served <- err // buffered: never blocks
	}()
	return r, nil
}

// Served receives what the HTTP application's serving loop returned, should
// it stop by itself (an accept error); Stop does not send to it.
func (r *Running) Served() <-chan error { return r.served }

// Stop stops everything Start started, in serve's order: the HTTP
// application stops accepting and lets requests in flight finish (ctx bounds
// that wait, and only that one), then the background loops, the callback
// worker and the demo simulator stop, and the database closes. It waits for
// every goroutine Start started, but for the HTTP application's own when its
// shutdown failed (ctx ended first). It returns the HTTP shutdown's error;
// later calls return the first one's.
func (r *Running) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() {
		select {
		case <-r.listenerDone: // stopped by itself: nothing to shut down
		default:
			if r.stopErr = r.app.ShutdownWithContext(ctx); r.stopErr == nil {
				<-r.listenerDone
			}
		}
		r.teardown()
	})
	return r.stopErr
}

// teardown stops what Start started besides the HTTP application, in
// reverse order of starting; parts not started yet are skipped.
func (r *Running) teardown() {
	if r.stopBackground != nil {
		r.stopBackground()
	}
	r.workers.Wait()
	if r.callbacks != nil {
		r.callbacks.Close()
		r.stopWorker()
		<-r.workerDone
	}
	if r.Demo != nil {
		r.Demo.Close()
	}
	if sqlDB, err := r.DB.DB(); err == nil {
		_ = sqlDB.Close()
	}
	if r.WeChatTransport != nil {
		r.WeChatTransport.CloseIdleConnections()
	}
}

// newWeChat is the process's one WeChat client: API hosts and OneID's
// third-party platform from the configuration, tokens shared through the
// database (sealed) and watched for the Apps page's token health. It returns
// the client and its transport before wraps (applied in order).
func newWeChat(cfg config.Config, db *gorm.DB, sealer *models.Sealer, log *slog.Logger, wraps []func(http.RoundTripper) http.RoundTripper) (*wechat.Client, *http.Transport) {
	w := cfg.WeChat
	store := binding.ObserveTokens(models.NewWechatTokenStore(db, sealer), db, log)
	// A follower sync keeps several batchget calls in flight: keep their
	// connections open rather than the default two per host.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 32
	var rt http.RoundTripper = transport
	for _, wrap := range wraps {
		rt = wrap(rt)
	}
	return wechat.New(wechat.Config{
		APIBase:    w.APIBase,
		OpenBase:   w.OpenBase,
		MPBase:     w.MPBase,
		HTTPClient: &http.Client{Transport: rt},
		Tokens:     store,
		Logger:     log,
		Component: wechat.Component{
			AppID:  w.ComponentAppID,
			Secret: w.ComponentSecret,
			Token:  w.ComponentToken,
			AESKey: w.ComponentAESKey,
		},
	}), transport
}

// loopbackURL is http:// and addr, an unspecified host (0.0.0.0, ::)
// replaced by 127.0.0.1 so that the URL reaches the listener from here.
func loopbackURL(addr net.Addr) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
