package benchkit

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMySQLServer(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if got := MySQLServer("", getenv); got != "mysql://root@127.0.0.1:3306/" {
		t.Errorf("default: %q", got)
	}
	env["ONEID_BENCH_MYSQL_URL"] = "mysql://bench@127.0.0.1:3307"
	if got := MySQLServer("", getenv); got != "mysql://bench@127.0.0.1:3307/" {
		t.Errorf("from the environment: %q", got)
	}
	if got := MySQLServer("mysql://flag@127.0.0.1:3308//", getenv); got != "mysql://flag@127.0.0.1:3308/" {
		t.Errorf("from the flag: %q", got)
	}
}

func TestStartCPUProfile(t *testing.T) {
	stop, err := StartCPUProfile("")
	if err != nil {
		t.Fatal(err)
	}
	stop()
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	stop, err = StartCPUProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("profile file: %v, %v", fi, err)
	}
	// Profiling was stopped: another can start.
	stop, err = StartCPUProfile(filepath.Join(t.TempDir(), "again.pprof"))
	if err != nil {
		t.Fatalf("a second profile after stop: %v", err)
	}
	stop()
	if _, err := StartCPUProfile(filepath.Join(t.TempDir(), "missing", "x.pprof")); err == nil {
		t.Error("a profile in a missing folder should fail")
	}
}
