package faults_test

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/app/config"
	"oneid/app/server"
	"oneid/app/wechat/wechattest"
)

// inProcess is OneID started as `oneid serve` starts it (server.Start: the
// HTTP application, the callback worker, the job runner with the sync,
// import and export kinds, the sync scheduler, the export sweeper and the
// OAuth purge sweep), in the test's own process so the test can count its
// goroutines.
type inProcess struct {
	*server.Running
	base string
	db   *gorm.DB
	log  *logBuffer
}

func startInProcess(t testing.TB, dbURL string, sim *wechattest.Sim, key []byte, extra map[string]string) *inProcess {
	t.Helper()
	env := map[string]string{
		"ONEID_DATABASE_URL":    dbURL,
		"ONEID_SECRET_KEY":      base64.StdEncoding.EncodeToString(key),
		"ONEID_ADDR":            freeAddr(t),
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
	logs := &logBuffer{}
	run, err := server.Start(context.Background(), cfg, server.Options{
		Log:        slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		WrapWeChat: func(rt http.RoundTripper) http.RoundTripper { return wechattest.LoopbackTransport(t, rt) },
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &inProcess{Running: run, base: run.URL, db: run.DB, log: logs}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = run.Stop(ctx)
	})
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
	p.WeChatTransport.CloseIdleConnections()
}
