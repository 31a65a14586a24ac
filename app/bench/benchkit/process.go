// Package benchkit holds what the benchmark programs share: a real oneid
// process to measure (built from this checkout, serving on loopback against a
// benchmark's database) and the machine's conditions to report with figures.
package benchkit

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// BuildOneID builds the oneid binary of this checkout into a temporary folder;
// cleanup removes it. It works from any folder inside the module.
func BuildOneID(ctx context.Context, out io.Writer) (binary string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "oneid-bench")
	if err != nil {
		return "", nil, err
	}
	binary = filepath.Join(dir, "oneid")
	build := exec.CommandContext(ctx, "go", "build", "-o", binary, "oneid/app")
	build.Stdout, build.Stderr = out, out
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build oneid: %w", err)
	}
	return binary, func() { os.RemoveAll(dir) }, nil
}

// Process is a oneid process under measurement.
type Process struct {
	Cmd    *exec.Cmd
	Base   string // http://127.0.0.1:port
	exited chan error
}

// StartOneID runs `oneid serve` on a free loopback port against databaseURL
// with a fresh secret key, warnings only in its log (to stderr), plus env
// (NAME=value, ONEID_LOG_LEVEL=info say), and waits until /readyz answers
// 200.
func StartOneID(ctx context.Context, binary, databaseURL string, env ...string) (*Process, error) {
	return StartOneIDLogging(ctx, binary, databaseURL, os.Stderr, env...)
}

// StartOneIDLogging is StartOneID with the process's log (JSON lines) written
// to log.
func StartOneIDLogging(ctx context.Context, binary, databaseURL string, log io.Writer, env ...string) (*Process, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cmd := exec.CommandContext(ctx, binary, "serve")
	cmd.Env = append(os.Environ(),
		"ONEID_DATABASE_URL="+databaseURL,
		"ONEID_SECRET_KEY="+base64.StdEncoding.EncodeToString(key),
		"ONEID_ADDR="+addr,
		"ONEID_LOG_LEVEL=warn",
	)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = io.Discard, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p := &Process{Cmd: cmd, Base: "http://" + addr, exited: exited}
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(p.Base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("oneid serve exited before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return nil, fmt.Errorf("oneid did not become ready on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop ends the process with SIGTERM (a graceful shutdown), killing it when
// it has not exited after 15 s. It reports how it exited.
func (p *Process) Stop() error {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		return err
	case <-time.After(15 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.exited
		return errors.New("oneid did not stop within 15 s of SIGTERM; killed")
	}
}

// PeakRSS is the process's high-water mark of resident memory, in MB.
func (p *Process) PeakRSS() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// CPUSeconds is the user+system CPU time the process has used so far.
func (p *Process) CPUSeconds() (float64, error) { return CPUSecondsOf(p.Cmd.Process.Pid) }

// CPUSecondsOf is the user+system CPU time process pid has used so far.
func CPUSecondsOf(pid int) (float64, error) {
	if pid <= 0 {
		return 0, errors.New("no process")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields count from after it.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad /proc stat")
	}
	return (utime + stime) / 100, nil // clock ticks; 100 a second on Linux
}

// LoadAvg is the machine's 1, 5 and 15 minute load averages.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// CPUs is how many processors the machine has.
func CPUs() int { return runtime.NumCPU() }

// StartCPUProfile writes a CPU profile of this process to path until stop is
// called; with no path it profiles nothing and stop does nothing.
func StartCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
