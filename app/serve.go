package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"oneid/app/config"
	"oneid/app/demo"
	"oneid/app/export"
	"oneid/app/ingest"
	"oneid/app/jobs"
	"oneid/app/web"
)

func runServe(ctx context.Context, args []string, env *environment) error {
	fs := newFlagSet("serve", "start the portal on ONEID_ADDR (default 127.0.0.1:8080)", env)
	demoMode := fs.Bool("demo", false, "also run a WeChat simulator in process and make a demo workspace on the embedded database (printed sign-in)")
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	if *demoMode {
		if cfg, err := config.Load(env.getenv); err == nil && !cfg.Embedded {
			return errors.New("serve --demo runs on the embedded database only: unset ONEID_DATABASE_URL (the demo writes a workspace with a printed password)")
		}
	}
	sys, err := boot(ctx, env)
	if err != nil {
		return err
	}
	defer sys.close()
	var dm *demo.Demo
	if *demoMode {
		if dm, err = startDemo(sys); err != nil {
			return err
		}
		defer dm.Close()
	}
	wx := sys.wechatClient()
	deps := web.Deps{Config: sys.cfg, DB: sys.db, Log: sys.log, Sealer: sys.sealer, WeChat: wx}
	// Official accounts' pushes: stored by the HTTP handlers, resolved by
	// this worker (every instance runs one; they share the inbox by lease).
	deps.Callbacks = web.NewCallbacks(deps)
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	workerDone := make(chan struct{})
	go func() {
		defer close(workerDone)
		_ = deps.Callbacks.Run(workerCtx)
	}()
	defer func() {
		deps.Callbacks.Close()
		stopWorker()
		<-workerDone
	}()
	app, err := web.New(deps)
	if err != nil {
		return err
	}
	// Background work stops with the server: the job runner hands the jobs
	// it holds back to the queue (another instance, or this one restarted,
	// resumes them from their checkpoints) and the sync scheduler stops.
	background, stopBackground := context.WithCancel(ctx)
	var workers sync.WaitGroup
	defer func() { stopBackground(); workers.Wait() }()
	runner := jobs.New(jobs.Config{DB: sys.db, Log: sys.log})
	syncer := ingest.NewSyncer(ingest.SyncConfig{DB: sys.db, WeChat: wx, Sealer: sys.sealer, Log: sys.log})
	runner.Register(syncer.Kind())
	// CSV imports too large to write during the upload.
	runner.Register(ingest.NewImporter(ingest.ImporterConfig{DB: sys.db, Log: sys.log}).Kind())
	// Large CSV exports run as jobs; their kept files expire and are swept.
	exporter := export.New(export.Config{DB: sys.db, Log: sys.log, Keep: sys.cfg.Export.Keep})
	runner.Register(exporter.Kind())
	workers.Go(func() { exporter.Sweep(background, 10*time.Minute) })
	// Expired OAuth states and tickets, purged here rather than in visitors' requests.
	workers.Go(func() { ingest.SweepOAuth(background, sys.db, sys.log, time.Minute) })
	workers.Go(func() { _ = runner.Run(background) })
	workers.Go(func() { _ = syncer.RunSchedules(background, time.Minute, runner.Wake) })

	ln, err := net.Listen("tcp", sys.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sys.cfg.Addr, err)
	}
	fmt.Fprintf(env.stdout, "OneID is listening on http://%s\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	if dm != nil {
		if err := prepareDemo(ctx, sys, dm, ln.Addr(), wx, env); err != nil {
			_ = app.Shutdown()
			return err
		}
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// SIGTERM: stop accepting, let requests in flight finish, then exit.
	sys.log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := app.ShutdownWithContext(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
