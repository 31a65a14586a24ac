package faults_test

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/app/binding"
	"oneid/app/config"
	"oneid/app/export"
	"oneid/app/ingest"
	"oneid/app/jobs"
	"oneid/app/web"
	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/migrations"
	"oneid/models"
)

// inProcess is OneID wired as `oneid serve` wires it (app/serve.go: the
// HTTP application, the callback worker, the job runner with the sync,
// import and export kinds, the sync scheduler and the export sweeper), in
// the test's own process so the test can count its goroutines.
type inProcess struct {
	base    string
	db      *gorm.DB
	log     *logBuffer
	wechatT *http.Transport
	stop    func()
}

func startInProcess(t testing.TB, dbURL string, sim *wechattest.Sim, key []byte, extra map[string]string) *inProcess {
	t.Helper()
	addr := freeAddr(t)
	env := map[string]string{
		"ONEID_DATABASE_URL":    dbURL,
		"ONEID_SECRET_KEY":      base64.StdEncoding.EncodeToString(key),
		"ONEID_ADDR":            addr,
		"ONEID_DATA_DIR":        t.TempDir(),
		"ONEID_WECHAT_API_BASE": sim.URL(), "ONEID_WECHAT_OPEN_BASE": sim.URL(), "ONEID_WECHAT_MP_BASE": sim.URL(),
	}
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	p := &inProcess{base: "http://" + addr, log: &logBuffer{}}
	log := slog.New(slog.NewJSONHandler(p.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sealer, err := models.NewSealer(cfg.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	db, err := models.Open(cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.Apply(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	p.db = db
	p.wechatT = http.DefaultTransport.(*http.Transport).Clone()
	p.wechatT.MaxIdleConnsPerHost = 32
	wx := wechat.New(wechat.Config{APIBase: cfg.WeChat.APIBase, OpenBase: cfg.WeChat.OpenBase, MPBase: cfg.WeChat.MPBase,
		HTTPClient: &http.Client{Transport: wechattest.LoopbackTransport(t, p.wechatT)},
		Tokens:     binding.ObserveTokens(models.NewWechatTokenStore(db, sealer), db, log), Logger: log})
	deps := web.Deps{Config: cfg, DB: db, Log: log, Sealer: sealer, WeChat: wx}
	deps.Callbacks = web.NewCallbacks(deps)
	workerCtx, stopWorker := context.WithCancel(context.Background())
	workerDone := make(chan struct{})
	go func() { defer close(workerDone); _ = deps.Callbacks.Run(workerCtx) }()
	app, err := web.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	background, stopBackground := context.WithCancel(context.Background())
	var workers sync.WaitGroup
	runner := jobs.New(jobs.Config{DB: db, Log: log})
	syncer := ingest.NewSyncer(ingest.SyncConfig{DB: db, WeChat: wx, Sealer: sealer, Log: log})
	runner.Register(syncer.Kind())
	runner.Register(ingest.NewImporter(ingest.ImporterConfig{DB: db, Log: log}).Kind())
	exporter := export.New(export.Config{DB: db, Log: log, Keep: cfg.Export.Keep})
	runner.Register(exporter.Kind())
	workers.Go(func() { exporter.Sweep(background, 10*time.Minute) })
	workers.Go(func() { _ = runner.Run(background) })
	workers.Go(func() { _ = syncer.RunSchedules(background, time.Minute, runner.Wake) })
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = app.Listener(ln) }()
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = app.ShutdownWithContext(ctx)
			<-served
			stopBackground()
			workers.Wait()
			deps.Callbacks.Close()
			stopWorker()
			<-workerDone
			if sqlDB, err := db.DB(); err == nil {
				_ = sqlDB.Close()
			}
			p.wechatT.CloseIdleConnections()
		})
	}
	t.Cleanup(p.stop)
	waitFor(t, "the in-process portal", 10*time.Second, func() bool {
		status, _ := get(p.base + "/readyz")
		return status == http.StatusOK
	})
	return p
}

// dropIdle closes the idle connections of the database pool and of the
// WeChat client, so goroutine counts compare like with like.
func (p *inProcess) dropIdle() {
	if sqlDB, err := p.db.DB(); err == nil {
		sqlDB.SetMaxIdleConns(0)
		sqlDB.SetMaxIdleConns(32)
	}
	p.wechatT.CloseIdleConnections()
}
