// Package web is OneID's HTTP application: the route table, middleware and the
// handlers of every screen. It is the only package that imports fiber.
package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"

	"oneid/app/binding"
	"oneid/app/config"
	"oneid/app/ingest"
	"oneid/app/wechat"
	"oneid/models"
	"oneid/static"
	"oneid/tenants"
	"oneid/views"
)

// Deps are the dependencies of the HTTP application, passed explicitly.
type Deps struct {
	Config config.Config
	DB     *gorm.DB
	Log    *slog.Logger
	Sealer *models.Sealer
	// Hasher hashes passwords; nil makes one bounded to twice the CPU count.
	Hasher *models.PasswordHasher
	// Now is the clock; tests pass a fake one to walk through session timeouts.
	Now func() time.Time
	// WeChat is the client for binding apps and WeChat's pushes; nil leaves
	// binding through WeChat unconfigured (the Apps page says so).
	WeChat *wechat.Client
	// Callbacks receives official accounts' pushes; nil makes one whose
	// worker nobody runs (tests drive it). serve runs its worker.
	Callbacks *ingest.Callbacks
	// APIRate limits each API key (per instance); zero takes the defaults.
	APIRate RateLimit
	// ImportInlineRows is the largest CSV import written during its upload;
	// larger ones run as jobs. Zero takes the default (5,000).
	ImportInlineRows int
}

// Server holds the dependencies every handler uses.
type Server struct {
	cfg    config.Config
	db     *gorm.DB
	log    *slog.Logger
	sealer *models.Sealer
	hasher *models.PasswordHasher
	authz  *tenants.Authorizer
	apps   *binding.Service
	now    func() time.Time
	assets views.Assets
	csp    string // the Content-Security-Policy of every answer
	// browse caches each tenant's apps and customer-list stats briefly.
	browse browseCache
	// navPerms is the permission of each navigation section, read from the
	// route table so the menu and the routes cannot disagree.
	navPerms map[string]tenants.Permission

	// callbacks takes official accounts' pushes; flows are web OAuth and the
	// JSON API's WeChat calls; apiLimiter is the per-key token bucket.
	callbacks  *ingest.Callbacks
	flows      *ingest.Flows
	apiLimiter *rateLimiter
	importer   *ingest.Importer

	// export is the configuration of CSV exports, defaults filled in.
	export config.Export
	// streams bounds each workspace's direct downloads in flight.
	streams *streamSlots
}

// New builds the fiber application with every route of the table registered.
func New(d Deps) (*fiber.App, error) {
	s, err := NewServer(d)
	if err != nil {
		return nil, err
	}
	return s.App()
}

// NewServer builds the server without its fiber application; tests use it to
// read the route table.
func NewServer(d Deps) (*Server, error) {
	if d.Now == nil {
		d.Now = func() time.Time { return time.Now().UTC() }
	}
	if d.Hasher == nil {
		d.Hasher = models.NewPasswordHasher(0)
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	authz, err := tenants.NewAuthorizer(d.DB)
	if err != nil {
		return nil, err
	}
	assets, err := assetURLs()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: d.Config, db: d.DB, log: d.Log, sealer: d.Sealer, hasher: d.Hasher, authz: authz, now: d.Now, assets: assets}
	s.callbacks = d.Callbacks
	if s.callbacks == nil {
		s.callbacks = NewCallbacks(d)
	}
	// Binding, rebinding and unbinding an app drop its callback secrets from
	// this instance's memory at once (others wait out the cache's TTL).
	s.apps = binding.New(binding.Config{DB: d.DB, WeChat: d.WeChat, Sealer: d.Sealer, Now: d.Now, Log: d.Log,
		ForgetCallback: s.callbacks.ForgetApp})
	s.flows = ingest.NewFlows(ingest.FlowsConfig{DB: d.DB, WeChat: d.WeChat, Sealer: d.Sealer, Log: d.Log, Now: d.Now, PublicURL: d.Config.PublicURL})
	s.apiLimiter = newRateLimiter(d.APIRate, time.Now)
	s.importer = ingest.NewImporter(ingest.ImporterConfig{DB: d.DB, Log: d.Log, Now: d.Now, InlineRows: d.ImportInlineRows})
	s.export = d.Config.Export.WithDefaults()
	s.streams = newStreamSlots(MaxStreamsPerWorkspace)
	s.navPerms = s.navigationPermissions()
	s.csp = contentSecurityPolicy(d.Config.WeChat.MPBase)
	return s, nil
}

// App makes the fiber application.
func (s *Server) App() (*fiber.App, error) {
	app := fiber.New(fiber.Config{
		AppName:               "OneID",
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          5 * time.Minute,
		IdleTimeout:           90 * time.Second,
		BodyLimit:             32 << 20,
		ProxyHeader:           "",
		// Strings from the request stay valid after the handler returns.
		Immutable: true,
	})
	app.Use(s.observe, s.negotiateLocale, s.loadSession, s.checkCSRF)
	if err := s.register(app); err != nil {
		return nil, err
	}
	return app, nil
}

// dbFor is the database handle bound to the request's context.
func (s *Server) dbFor(c *fiber.Ctx) *gorm.DB { return s.db.WithContext(c.UserContext()) }

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.SendString("ok")
}

// readyz answers 503 when the database does not answer within a second.
func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), time.Second)
	defer cancel()
	sqlDB, err := s.db.DB()
	if err == nil {
		err = sqlDB.PingContext(ctx)
	}
	if err != nil {
		return c.Status(fiber.StatusServiceUnavailable).SendString("database unavailable")
	}
	return c.SendString("ready")
}

// assetURLs gives the stylesheet a version from its content, so it can be
// cached for a year and still change with a release. Vendored scripts carry
// their version in their name.
func assetURLs() (views.Assets, error) {
	css, err := fs.ReadFile(static.Files, "css/app.css")
	if err != nil {
		return views.Assets{}, fmt.Errorf("web: read stylesheet: %w", err)
	}
	sum := sha256.Sum256(css)
	versioned := map[string]string{}
	for _, dir := range []string{"css", "js"} {
		err := fs.WalkDir(static.Files, dir, func(name string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			body, err := fs.ReadFile(static.Files, name)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(body)
			versioned[name] = "/static/" + name + "?v=" + hex.EncodeToString(sum[:5])
			return nil
		})
		if err != nil {
			return views.Assets{}, fmt.Errorf("web: version static files: %w", err)
		}
	}
	return views.Assets{
		CSS:       "/static/css/app.css?v=" + hex.EncodeToString(sum[:5]),
		HTMX:      "/static/vendor/htmx-2.0.4.min.js",
		Versioned: versioned,
	}, nil
}
