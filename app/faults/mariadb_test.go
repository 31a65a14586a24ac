package faults_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
)

// mariaDB is a MariaDB server of the test's own, on a loopback port, that
// the test may stop, kill, pause and start again (the shared server on 3306
// is everybody's and is never touched).
type mariaDB struct {
	t       testing.TB
	dir     string
	port    int
	cmd     *exec.Cmd
	done    chan struct{}
	started int
}

// startMariaDB installs a fresh data folder and starts the server. It skips
// (fails under CI=true) when the MariaDB server binaries are missing.
func startMariaDB(t testing.TB) *mariaDB {
	t.Helper()
	for _, bin := range []string{"mariadb-install-db", "mariadbd"} {
		if _, err := lookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required under CI: %v", bin, err)
			}
			t.Skipf("%s not installed: %v", bin, err)
		}
	}
	m := &mariaDB{t: t, dir: t.TempDir()}
	port, _ := strconv.Atoi(freeAddr(t)[len("127.0.0.1:"):])
	m.port = port
	install, _ := lookPath("mariadb-install-db")
	cmd := exec.Command(install, "--no-defaults", "--datadir="+filepath.Join(m.dir, "data"),
		"--auth-root-authentication-method=normal", "--user="+osUser(), "--skip-test-db")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	m.start()
	t.Cleanup(func() {
		if m.cmd != nil && !m.exited() {
			_ = m.cmd.Process.Signal(syscall.SIGCONT)
			_ = m.cmd.Process.Signal(syscall.SIGKILL)
			<-m.done
		}
	})
	return m
}

func lookPath(bin string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/mysql/bin"} {
		if p := filepath.Join(dir, bin); fileExists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", bin)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func osUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}

// serverURL is the server's URL for models.Open, without a database.
func (m *mariaDB) serverURL() string { return fmt.Sprintf("mysql://root@127.0.0.1:%d/", m.port) }

func (m *mariaDB) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// start runs mariadbd on the data folder and port and waits until it answers.
func (m *mariaDB) start() time.Duration {
	m.t.Helper()
	begin := time.Now()
	bin, _ := lookPath("mariadbd")
	m.started++
	logFile, err := os.OpenFile(filepath.Join(m.dir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		m.t.Fatal(err)
	}
	m.cmd = exec.Command(bin, "--no-defaults", "--datadir="+filepath.Join(m.dir, "data"),
		"--port="+strconv.Itoa(m.port), "--bind-address=127.0.0.1", "--socket="+filepath.Join(m.dir, "sock"),
		"--pid-file="+filepath.Join(m.dir, "pid"), "--user="+osUser(), "--skip-name-resolve",
		"--innodb-buffer-pool-size=64M", "--max-connections=300")
	m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.done = make(chan struct{})
	done, cmd := m.done, m.cmd
	go func() { _ = cmd.Wait(); logFile.Close(); close(done) }()
	db, _ := sql.Open("mysql", fmt.Sprintf("root@tcp(127.0.0.1:%d)/mysql?timeout=1s", m.port))
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return time.Since(begin)
		}
		if m.exited() || time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(m.dir, "server.log"))
			m.t.Fatalf("mariadbd did not start: %v\n%s", err, tail(string(log), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the server with sig (SIGTERM: a clean shutdown; SIGKILL: a
// crash) and waits until it is gone.
func (m *mariaDB) stop(sig syscall.Signal) {
	m.t.Helper()
	_ = m.cmd.Process.Signal(sig)
	select {
	case <-m.done:
	case <-time.After(60 * time.Second):
		m.t.Fatalf("mariadbd did not stop on %v", sig)
	}
}

// pause freezes the server (SIGSTOP): connections stay open, nothing
// answers. It returns once every thread of the server is stopped.
func (m *mariaDB) pause() {
	m.t.Helper()
	_ = m.cmd.Process.Signal(syscall.SIGSTOP)
	deadline := time.Now().Add(5 * time.Second)
	for !m.stopped() {
		if time.Now().After(deadline) {
			m.t.Fatal("mariadbd did not stop on SIGSTOP")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stopped reports whether every thread of the server is in the stopped state.
func (m *mariaDB) stopped() bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", m.cmd.Process.Pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			return false
		}
		// pid (comm) state ...: the state follows the last ')'.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		if f := strings.Fields(rest); len(f) == 0 || (f[0] != "T" && f[0] != "t") {
			return false
		}
	}
	return true
}

func (m *mariaDB) resume() { _ = m.cmd.Process.Signal(syscall.SIGCONT) }

// createDatabase makes a database on the server and returns its URL.
func (m *mariaDB) createDatabase(name string) string {
	m.t.Helper()
	db, err := sql.Open("mysql", fmt.Sprintf("root@tcp(127.0.0.1:%d)/mysql", m.port))
	if err != nil {
		m.t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		m.t.Fatal(err)
	}
	return m.serverURL() + strings.TrimPrefix(name, "/")
}
