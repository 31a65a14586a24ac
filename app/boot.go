package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"gorm.io/gorm"

	"oneid/app/binding"
	"oneid/app/config"
	"oneid/app/wechat"
	"oneid/migrations"
	"oneid/models"
)

// system is what most subcommands start from: validated configuration, a logger
// and a migrated database.
type system struct {
	cfg    config.Config
	log    *slog.Logger
	db     *gorm.DB
	sealer *models.Sealer
	// wrapWeChat, when set, wraps the WeChat client's transport (demo mode:
	// loopback only).
	wrapWeChat func(http.RoundTripper) http.RoundTripper
}

func boot(ctx context.Context, env *environment) (*system, error) {
	cfg, err := config.Load(env.getenv)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewJSONHandler(env.stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if err := cfg.EnsureEmbeddedKey(); err != nil {
		return nil, err
	}
	if cfg.SecretKeyGenerated {
		log.Warn("generated a new secret key for the embedded database; keep it with the data folder, and set ONEID_SECRET_KEY in production",
			"path", cfg.DataDir+"/secret.key")
	}
	sealer, err := models.NewSealer(cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	db, err := models.Open(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	applied, err := migrations.Apply(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", models.RedactURL(cfg.DatabaseURL), err)
	}
	if len(applied) > 0 {
		log.Info("applied migrations", "versions", applied)
	}
	return &system{cfg: cfg, log: log, db: db, sealer: sealer}, nil
}

// wechatClient is the process's one WeChat client: API hosts and OneID's
// third-party platform from the configuration, tokens shared through the
// database (sealed) and watched for the Apps page's token health.
func (s *system) wechatClient() *wechat.Client {
	w := s.cfg.WeChat
	store := binding.ObserveTokens(models.NewWechatTokenStore(s.db, s.sealer), s.db, s.log)
	// A follower sync keeps several batchget calls in flight: keep their
	// connections open rather than the default two per host.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 32
	var rt http.RoundTripper = transport
	if s.wrapWeChat != nil {
		rt = s.wrapWeChat(rt)
	}
	return wechat.New(wechat.Config{
		APIBase:    w.APIBase,
		OpenBase:   w.OpenBase,
		MPBase:     w.MPBase,
		HTTPClient: &http.Client{Transport: rt},
		Tokens:     store,
		Logger:     s.log,
		Component: wechat.Component{
			AppID:  w.ComponentAppID,
			Secret: w.ComponentSecret,
			Token:  w.ComponentToken,
			AESKey: w.ComponentAESKey,
		},
	})
}

func (s *system) close() {
	if sqlDB, err := s.db.DB(); err == nil {
		_ = sqlDB.Close()
	}
}

func runMigrate(ctx context.Context, args []string, env *environment) error {
	fs := newFlagSet("migrate", "apply every pending migration to ONEID_DATABASE_URL and exit", env)
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	sys, err := boot(ctx, env)
	if err != nil {
		return err
	}
	defer sys.close()
	all, err := migrations.All()
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "schema is at version %d\n", all[len(all)-1].Version)
	return nil
}
