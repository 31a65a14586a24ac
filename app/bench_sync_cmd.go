package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gorm.io/gorm"

	"oneid/app/bench/benchkit"
	"oneid/app/ingest"
	"oneid/app/jobs"
	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/migrations"
	"oneid/models"
)

// runBenchSync measures the follower sync against the PRODUCT.md target: a
// full sync of N followers from the simulator into MySQL, then a re-sync with
// nothing changed. The simulator runs as a process of its own (`oneid wxsim`),
// so the peak RSS reported (getrusage) is the syncing process's alone, and
// the database is a fresh one (oneid_bench_sync, dropped and created). The
// last line is
//
//	bench-sync followers=N seconds=S rows_per_s=R resync_seconds=T peak_rss_mb=M
func runBenchSync(ctx context.Context, args []string, env *environment) error {
	fs := newFlagSet("bench-sync", "sync N followers from the simulator (own process) into a fresh MySQL database, then re-sync", env)
	n := fs.Int("followers", 1_000_000, "followers of the simulated official account")
	server := fs.String("mysql", "mysql://root@127.0.0.1:3306/", "MySQL server (the database oneid_bench_sync is dropped and created)")
	fetchers := fs.Int("fetchers", 0, "batchget calls in flight (0: the sync's default)")
	writers := fs.Int("writers", 0, "pages resolved at once (0: the sync's default)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the syncs to this file")
	keep := fs.Bool("keep", false, "keep the database afterwards")
	latency := fs.Duration("wechat-latency", 0, "latency the simulator adds to each batchget call (WeChat's is tens of milliseconds)")
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	if *n <= 0 {
		return errors.New("bench-sync: --followers must be positive")
	}
	out := env.stdout
	fmt.Fprintf(out, "load average at start: %s\n", benchkit.LoadAvg())

	sim, err := startSimProcess(ctx, *n, env)
	if err != nil {
		return err
	}
	defer sim.stop()
	fmt.Fprintf(out, "simulator (pid %d) on %s: app %s with %d followers\n", sim.cmd.Process.Pid, sim.url, sim.appID, *n)
	if *latency > 0 {
		if err := sim.setLatency("cgi-bin/user/info/batchget", *latency); err != nil {
			return err
		}
		fmt.Fprintf(out, "batchget answers after %s\n", *latency)
	}

	db, dropDB, err := freshBenchDatabase(ctx, *server, "oneid_bench_sync")
	if err != nil {
		return err
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
		if !*keep {
			dropDB()
		}
	}()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := models.NewSealer(key)
	if err != nil {
		return err
	}
	tenantID, appRowID, err := benchSyncTenant(db, sealer, sim)
	if err != nil {
		return err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	wx := wechat.New(wechat.Config{APIBase: sim.url, HTTPClient: &http.Client{Transport: transport}, Tokens: wechat.NewMemoryStore()})
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	syncer := ingest.NewSyncer(ingest.SyncConfig{DB: db, WeChat: wx, Sealer: sealer, Log: log, Fetchers: *fetchers, Writers: *writers})
	runner := jobs.New(jobs.Config{DB: db, Heartbeat: time.Second, Poll: 50 * time.Millisecond})
	runner.Register(syncer.Kind())

	stopProfile, err := benchkit.StartCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	admin := ingest.SyncActor{Email: "bench"}
	mysqld := findProcess("mariadbd", "mysqld")
	pass := func(name string) (time.Duration, *models.Job, error) {
		start := time.Now()
		cpu0 := [3]float64{selfCPU(), processCPU(sim.cmd.Process.Pid), processCPU(mysqld)}
		defer func() {
			cpu1 := [3]float64{selfCPU(), processCPU(sim.cmd.Process.Pid), processCPU(mysqld)}
			fmt.Fprintf(out, "  %s CPU seconds: sync process %.1f, simulator %.1f, database %.1f (over %.1f s of wall time)\n",
				name, cpu1[0]-cpu0[0], cpu1[1]-cpu0[1], cpu1[2]-cpu0[2], time.Since(start).Seconds())
		}()
		j, err := ingest.StartSync(db.WithContext(ctx), tenantID, appRowID, admin, time.Now().UTC())
		if err != nil {
			return 0, nil, err
		}
		done := make(chan error, 1)
		go func() { done <- runner.Drain(ctx) }()
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case err := <-done:
				el := time.Since(start)
				if err != nil {
					return el, nil, err
				}
				j, err = models.FindJob(db, tenantID, j.ID)
				if err != nil {
					return el, nil, err
				}
				if j.State != models.JobSucceeded {
					return el, j, fmt.Errorf("bench-sync: %s ended %s: %s %s", name, j.State, j.ErrorKind, j.Error)
				}
				return el, j, nil
			case <-tick.C:
				if p, err := models.FindJob(db, tenantID, j.ID); err == nil {
					fmt.Fprintf(out, "  %s: %d of %d after %.0fs (%.0f/s)\n", name, p.Processed, p.Total, time.Since(start).Seconds(), p.Rate)
				}
			}
		}
	}
	first, j1, err := pass("sync")
	if err != nil {
		return err
	}
	var identities int64
	if err := db.Model(&models.Identity{}).Scopes(models.ForTenant(tenantID)).Where("app_id = ?", appRowID).Count(&identities).Error; err != nil {
		return err
	}
	res := ingest.ParseSyncResult(j1.Result)
	fmt.Fprintf(out, "sync: %d followers listed (%d following) in %s; %d identities stored\n", res.Listed, res.Subscribed, first.Round(time.Millisecond), identities)
	if identities != int64(*n) || res.Listed != int64(*n) {
		return fmt.Errorf("bench-sync: %d identities and %d listed for %d followers", identities, res.Listed, *n)
	}
	second, j2, err := pass("re-sync")
	if err != nil {
		return err
	}
	res2 := ingest.ParseSyncResult(j2.Result)
	fmt.Fprintf(out, "re-sync: %d listed, %d marked unsubscribed in %s\n", res2.Listed, res2.Unsubscribed, second.Round(time.Millisecond))
	fmt.Fprintf(out, "load average at end: %s\n", benchkit.LoadAvg())
	fmt.Fprintf(out, "bench-sync followers=%d seconds=%.1f rows_per_s=%.0f resync_seconds=%.1f peak_rss_mb=%.0f\n",
		*n, first.Seconds(), float64(*n)/first.Seconds(), second.Seconds(), peakRSSMB())
	return nil
}

// simProcess is the simulator running as `oneid wxsim` in a process of its own.
type simProcess struct {
	cmd           *exec.Cmd
	url           string
	appID, secret string
	openAppID     string
	dir           string
}

func (s *simProcess) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
	_ = os.RemoveAll(s.dir)
}

// setLatency asks the simulator, through its control API, to answer every
// call to path after d.
func (s *simProcess) setLatency(path string, d time.Duration) error {
	body := fmt.Sprintf(`{"path":%q,"latency_ms":%d}`, path, d.Milliseconds())
	resp, err := http.Post(s.url+"/_sim/faults", "application/json", strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("bench-sync: set the simulator's latency: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench-sync: set the simulator's latency: HTTP %d", resp.StatusCode)
	}
	return nil
}

// startSimProcess starts this binary as `wxsim` on a free loopback port with
// one open-platform account and an official account of n followers in it.
func startSimProcess(ctx context.Context, n int, env *environment) (*simProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "oneid-bench-sync")
	if err != nil {
		return nil, err
	}
	const principal = "模拟科技（深圳）有限公司"
	fixture := wechattest.Fixture{
		OpenAccounts: []wechattest.FixtureOpen{{ID: "bench", OpenAccountSpec: wechattest.OpenAccountSpec{Name: "bench-open", Principal: principal, Verified: true}}},
		Apps: []wechattest.FixtureApp{{OpenAccount: "bench",
			AppSpec: wechattest.AppSpec{Name: "bench-service", Principal: principal, Followers: n}}},
	}
	b, _ := json.Marshal(fixture)
	path := filepath.Join(dir, "fixture.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cmd := exec.CommandContext(ctx, self, "wxsim", "--addr", addr, "--fixture", path)
	cmd.Stderr = env.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench-sync: start the simulator: %w", err)
	}
	s := &simProcess{cmd: cmd, dir: dir}
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		line := lines.Text()
		if u, ok := strings.CutPrefix(line, "wxsim listening on "); ok {
			s.url = u
		}
		if rest, ok := strings.CutPrefix(line, "app "); ok {
			f := strings.Fields(rest)
			s.appID = f[0]
			for _, kv := range f[1:] {
				if v, ok := strings.CutPrefix(kv, "secret="); ok {
					s.secret = v
				}
				if v, ok := strings.CutPrefix(kv, "open="); ok {
					s.openAppID = v
				}
			}
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if s.url == "" || s.appID == "" || s.secret == "" {
		s.stop()
		return nil, errors.New("bench-sync: the simulator did not say where it listens and which app it has")
	}
	return s, nil
}

// freshBenchDatabase drops and creates a database on server and migrates it.
func freshBenchDatabase(ctx context.Context, server, name string) (*gorm.DB, func(), error) {
	server = strings.TrimRight(server, "/") + "/"
	admin, err := models.Open(server + "mysql")
	if err != nil {
		return nil, nil, err
	}
	for _, stmt := range []string{"DROP DATABASE IF EXISTS " + name, "CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"} {
		if err := admin.Exec(stmt).Error; err != nil {
			return nil, nil, fmt.Errorf("bench-sync: %s: %w", stmt, err)
		}
	}
	drop := func() {
		_ = admin.Exec("DROP DATABASE IF EXISTS " + name).Error
		if sqlDB, err := admin.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}
	db, err := models.Open(server + name)
	if err != nil {
		drop()
		return nil, nil, err
	}
	if _, err := migrations.Apply(ctx, db); err != nil {
		drop()
		return nil, nil, err
	}
	return db, drop, nil
}

// benchSyncTenant binds the simulator's app to a new tenant, self-managed.
func benchSyncTenant(db *gorm.DB, sealer *models.Sealer, sim *simProcess) (tenantID, appID int64, err error) {
	const principal = "模拟科技（深圳）有限公司"
	tenant, _, err := models.CreateTenant(db, models.NewTenant{Name: "Bench Sync", PrincipalName: principal,
		Admin: models.User{Email: "bench@example.com", Name: "Bench", PasswordHash: "-", Locale: "en"}})
	if err != nil {
		return 0, 0, err
	}
	oa := models.OpenAccount{OpenAppID: sim.openAppID, PrincipalName: principal, Verified: true, Declared: true, CreatedVia: models.OpenViaDeclared}
	if err := models.CreateOpenAccount(db, tenant.ID, &oa); err != nil {
		return 0, 0, err
	}
	sealed, err := models.SealAppSecret(sealer, tenant.ID, sim.appID, models.ColAppSecret, sim.secret)
	if err != nil {
		return 0, 0, err
	}
	app := &models.App{AppID: sim.appID, Kind: models.KindService, Name: "bench-service", PrincipalName: principal,
		Declared: true, BindingMode: models.ModeSelfManaged, OpenAccountID: &oa.ID, SecretSealed: sealed}
	if err := models.BindApp(db, tenant.ID, app); err != nil {
		return 0, 0, err
	}
	return tenant.ID, app.ID, nil
}

// peakRSSMB is this process's peak resident set size (getrusage ru_maxrss,
// in KiB on Linux).
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return float64(ru.Maxrss) / 1024
}

// selfCPU is this process's user and system CPU time in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// processCPU is another process's user and system CPU time in seconds (0
// when it cannot be read).
func processCPU(pid int) float64 {
	cpu, _ := benchkit.CPUSecondsOf(pid)
	return cpu
}

// findProcess is the pid of the first process running one of the commands
// (the database server, to report its CPU time); 0 when none is found.
func findProcess(names ...string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil {
			continue
		}
		for _, n := range names {
			if strings.TrimSpace(string(comm)) == n {
				return pid
			}
		}
	}
	return 0
}
