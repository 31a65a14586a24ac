package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"oneid/app/config"
	"oneid/app/server"
)

func embedded(t *testing.T, addr string) config.Config {
	t.Helper()
	env := map[string]string{"ONEID_DATA_DIR": t.TempDir(), "ONEID_ADDR": addr,
		"ONEID_SECRET_KEY": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// lingering are fasthttp's goroutines that outlive a server by design: the
// process-wide Date header ticker, and a worker pool's cleaner, which sees
// that its server stopped at its next tick (up to 10 s later).
var lingering = []string{"fasthttp.updateServerDate", "fasthttp.(*workerPool).Start"}

// goroutines counts the goroutines but lingering ones, waiting up to d for
// the count to fall to at most want; it returns the last count and the
// goroutines counted.
func goroutines(want int, d time.Duration) (int, string) {
	deadline := time.Now().Add(d)
	for {
		var dump bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&dump, 2)
		var kept []string
	stacks:
		for _, g := range strings.Split(dump.String(), "\n\n") {
			for _, l := range lingering {
				if strings.Contains(g, l) {
					continue stacks
				}
			}
			kept = append(kept, g)
		}
		if len(kept) <= want || time.Now().After(deadline) {
			return len(kept), strings.Join(kept, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStartServesAndStopLeavesNothingRunning: Start migrates the embedded
// database and serves /readyz on its URL; Stop stops the HTTP application
// (the URL refuses connections), closes the database and waits for every
// goroutine Start started, so the count returns to what it was before.
func TestStartServesAndStopLeavesNothingRunning(t *testing.T) {
	before, _ := goroutines(0, 0)
	logs, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	run, err := server.Start(context.Background(), embedded(t, "127.0.0.1:0"),
		server.Options{Log: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(run.URL, "http://127.0.0.1:") || strings.HasSuffix(run.URL, ":0") {
		t.Fatalf("URL %q", run.URL)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := client.Get(run.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %d", resp.StatusCode)
	}
	if logged, _ := os.ReadFile(logs.Name()); !bytes.Contains(logged, []byte(`"applied migrations"`)) {
		t.Fatalf("no migration log line in Options.Log:\n%s", logged)
	}
	running, _ := goroutines(0, 0)
	if err := run.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Get(run.URL + "/readyz"); err == nil {
		t.Fatal("the portal still answers after Stop")
	}
	if err := run.DB.Exec("SELECT 1").Error; err == nil {
		t.Fatal("the database is still open after Stop")
	}
	if after, left := goroutines(before, 5*time.Second); after > before {
		t.Fatalf("%d goroutines before Start, %d running, %d after Stop\n%s", before, running, after, left)
	}
	if err := run.Stop(context.Background()); err != nil {
		t.Fatalf("a second Stop: %v", err)
	}
}

// TestStartOnATakenAddressStopsWhatItStarted: when the listener cannot be
// opened, Start says so and leaves no worker running.
func TestStartOnATakenAddressStopsWhatItStarted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	before, _ := goroutines(0, 0)
	run, err := server.Start(context.Background(), embedded(t, ln.Addr().String()), server.Options{})
	var opErr *net.OpError
	if run != nil || !errors.As(err, &opErr) || !strings.Contains(err.Error(), "listen on "+ln.Addr().String()) {
		t.Fatalf("Start on a taken address: %v, %v", run, err)
	}
	if after, left := goroutines(before, 5*time.Second); after > before {
		t.Fatalf("%d goroutines before Start, %d after it failed\n%s", before, after, left)
	}
}
