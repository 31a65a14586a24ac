package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"oneid/app/server"
)

func runServe(ctx context.Context, args []string, env *environment) error {
	fs := newFlagSet("serve", "start the portal on ONEID_ADDR (default 127.0.0.1:8080)", env)
	demoMode := fs.Bool("demo", false, "also run a WeChat simulator in process and make a demo workspace on the embedded database (printed sign-in)")
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	cfg, log, err := loadConfig(env)
	if err != nil {
		return err
	}
	opts := server.Options{Log: log}
	if *demoMode {
		if !cfg.Embedded {
			return errors.New("serve --demo runs on the embedded database only: unset ONEID_DATABASE_URL (the demo writes a workspace with a printed password)")
		}
		opts.Demo = &server.DemoOptions{}
	}
	run, err := server.Start(ctx, cfg, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "OneID is listening on http://%s\n", run.Addr)
	if run.Demo != nil {
		if err := prepareDemo(ctx, run, env); err != nil {
			_ = run.Stop(context.Background())
			return err
		}
	}
	select {
	case err := <-run.Served():
		_ = run.Stop(context.Background())
		return err
	case <-ctx.Done():
	}
	// SIGTERM: stop accepting, let requests in flight finish, then exit.
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := run.Stop(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
