package wechattest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Main is the `wxsim` subcommand:
//
//	wxsim [--addr 127.0.0.1:9100] [--fixture FILE]   serve until ctx ends
//	wxsim bench [--followers N] [--workers W]          run BenchSync
func Main(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "bench" {
		fs := flag.NewFlagSet("wxsim bench", flag.ContinueOnError)
		fs.SetOutput(stdout)
		n := fs.Int("followers", 1_000_000, "followers to page and fetch")
		workers := fs.Int("workers", 4, "concurrent batchget callers")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		_, err := BenchSync(ctx, *n, *workers, stdout)
		return err
	}
	fs := flag.NewFlagSet("wxsim", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:9100", "listen address")
	fixture := fs.String("fixture", "", "JSON fixture of open accounts, apps and components")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !IsLoopbackAddr(*addr) {
		return fmt.Errorf("wxsim: --addr %s is not a loopback address", *addr)
	}
	var f *Fixture
	opts := []Option{WithAddr(*addr)}
	if *fixture != "" {
		var err error
		if f, err = LoadFixture(*fixture); err != nil {
			return err
		}
		opts = append(opts, f.Options()...)
	}
	s, err := New(opts...)
	if err != nil {
		return err
	}
	defer s.Close()
	if f != nil {
		if err := s.Apply(f); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "wxsim listening on %s\n", s.URL())
	st := s.State()
	for _, a := range st.Apps {
		fmt.Fprintf(stdout, "app %s secret=%s type=%s followers=%d open=%s principal=%q\n", a.AppID, a.Secret, a.Type, a.Followers, a.OpenAppID, a.Principal)
	}
	if f != nil {
		for _, c := range f.Components {
			fmt.Fprintf(stdout, "component %s secret=%s callback=%s\n", c.AppID, c.Secret, c.CallbackURL)
			if c.CallbackURL != "" {
				every := time.Duration(c.TicketIntervalSeconds) * time.Second
				if every <= 0 {
					every = 10 * time.Minute
				}
				go s.tickets(ctx, c.AppID, every)
			}
		}
	}
	<-ctx.Done()
	return nil
}

// tickets pushes a verify ticket at once and then every interval, as WeChat does.
func (s *Sim) tickets(ctx context.Context, componentAppID string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		_, _, _ = s.PushVerifyTicket(componentAppID)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// IsLoopbackAddr reports whether a host:port listens on loopback only.
func IsLoopbackAddr(addr string) bool {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return false
	}
	if _, err := strconv.Atoi(port); err != nil {
		return false
	}
	return IsLoopback(host)
}

func splitHostPort(addr string) (string, string, error) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			h := addr[:i]
			if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
				h = h[1 : len(h)-1]
			}
			return h, addr[i+1:], nil
		}
	}
	return "", "", errors.New("no port")
}
