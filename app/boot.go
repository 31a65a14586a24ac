package main

import (
	"context"
	"fmt"
	"log/slog"

	"gorm.io/gorm"

	"oneid/app/config"
	"oneid/app/server"
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
}

func boot(ctx context.Context, env *environment) (*system, error) {
	cfg, log, err := loadConfig(env)
	if err != nil {
		return nil, err
	}
	db, sealer, err := server.Open(ctx, &cfg, log)
	if err != nil {
		return nil, err
	}
	return &system{cfg: cfg, log: log, db: db, sealer: sealer}, nil
}

// loadConfig reads the configuration from the environment and makes the
// process's logger (JSON lines on stderr at ONEID_LOG_LEVEL).
func loadConfig(env *environment) (config.Config, *slog.Logger, error) {
	cfg, err := config.Load(env.getenv)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, slog.New(slog.NewJSONHandler(env.stderr, &slog.HandlerOptions{Level: cfg.LogLevel})), nil
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
