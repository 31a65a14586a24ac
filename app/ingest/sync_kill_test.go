package ingest_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"oneid/app/ingest"
	"oneid/app/jobs"
	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// A sync killed with SIGKILL at random moments, in a real process of its own
// (this test binary again, in helper mode), and resumed by the next process
// once the dead one's lease runs out: the followers end up stored exactly as
// the simulator lists them, each page counted once.
func TestSyncSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	t.Parallel()
	db, url := dbtest.MySQLWithURL(t)
	sim := wechattest.Start(t) // outlives the killed processes
	sim.SetLatency("cgi-bin/user/info/batchget", 2*time.Millisecond)
	w := newSyncWorld(t, db, sim)
	a := w.app("killed", 25_000, true, 0) // three pages
	j := w.start(a)

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 42))
	t.Logf("kill schedule seed %d", seed)
	helper := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSyncHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			"ONEID_SYNC_HELPER=1",
			"ONEID_SYNC_HELPER_DB="+url,
			"ONEID_SYNC_HELPER_SIM="+sim.URL(),
			"ONEID_SYNC_HELPER_KEY="+hex.EncodeToString(w.key),
			fmt.Sprintf("ONEID_SYNC_HELPER_JOB=%d:%d", w.tenant, j.ID))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd
	}
	kills, midway := 0, 0
	for kills < 5 {
		was := w.job(j.ID)
		cmd := helper()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Once it has claimed the job (a claim waits up to a lease, 1 s, for
		// the last victim's to run out), kill it anywhere in its work:
		// listing, fetching, inside a page's transaction.
		w.waitJob(j.ID, "the helper's claim", func(j *models.Job) bool { return j.Attempts > was.Attempts || !j.Live() })
		if kills%2 == 0 {
			// After it has committed a page: inside the next one.
			w.waitJob(j.ID, "a page", func(j *models.Job) bool { return j.Processed > was.Processed || !j.Live() })
		}
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		kills++
		got := w.job(j.ID)
		if !got.Live() {
			t.Logf("kill %d came after the end", kills)
			break
		}
		if got.Processed > was.Processed {
			midway++
		}
		t.Logf("kill %d: %d of %d committed", kills, got.Processed, got.Total)
	}
	if err := helper().Run(); err != nil {
		t.Fatalf("the last helper: %v", err)
	}
	got := w.job(j.ID)
	t.Logf("%d kills (%d after progress), %d claims", kills, midway, got.Attempts)
	if got.State != models.JobSucceeded || got.Processed != 25_000 || got.Total != 25_000 {
		t.Fatalf("after the kills: %s, %d processed of %d: %s", got.State, got.Processed, got.Total, got.Error)
	}
	if res := ingest.ParseSyncResult(got.Result); res.Listed != 25_000 || res.Subscribed != 25_000 {
		t.Fatalf("result %+v: pages counted twice or lost", res)
	}
	w.checkMatches(a, w.followers(a, true))
	if n := w.count(&models.Customer{}, ""); n != 25_000 {
		t.Errorf("%d customers for 25,000 followers", n)
	}
}

// TestSyncHelperProcess is the process TestSyncSurvivesSIGKILL kills: a job
// runner with the sync, as in `oneid serve`, until the job has ended.
func TestSyncHelperProcess(t *testing.T) {
	if os.Getenv("ONEID_SYNC_HELPER") != "1" {
		t.Skip("helper process of TestSyncSurvivesSIGKILL")
	}
	db, err := models.Open(os.Getenv("ONEID_SYNC_HELPER_DB"))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := hex.DecodeString(os.Getenv("ONEID_SYNC_HELPER_KEY"))
	sealer, err := models.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	tenantText, idText, _ := strings.Cut(os.Getenv("ONEID_SYNC_HELPER_JOB"), ":")
	tenant, _ := strconv.ParseInt(tenantText, 10, 64)
	id, _ := strconv.ParseInt(idText, 10, 64)
	wx := wechat.New(wechat.Config{APIBase: os.Getenv("ONEID_SYNC_HELPER_SIM"),
		HTTPClient: &http.Client{Transport: wechattest.LoopbackTransport(t, nil)}, Tokens: wechat.NewMemoryStore()})
	s := ingest.NewSyncer(ingest.SyncConfig{DB: db, WeChat: wx, Sealer: sealer, Fetchers: 4, Writers: 2})
	r := jobs.New(jobs.Config{DB: db, Lease: time.Second, Heartbeat: 150 * time.Millisecond, Poll: 50 * time.Millisecond,
		MaxAttempts: 100})
	r.Register(s.Kind())
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go r.Run(ctx)
	for {
		j, err := models.FindJob(db, tenant, id)
		if err != nil {
			t.Fatal(err)
		}
		if !j.Live() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
