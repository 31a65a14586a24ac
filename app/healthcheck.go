package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"oneid/app/config"
)

// runHealthcheck asks the local portal's /readyz; the container image has no
// shell or curl, so the binary checks itself.
func runHealthcheck(ctx context.Context, args []string, env *environment) error {
	fs := newFlagSet("healthcheck", "exit 0 when the portal on ONEID_ADDR answers /readyz", env)
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	cfg, err := config.Load(env.getenv)
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(cfg.Addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /readyz answered %s", resp.Status)
	}
	return nil
}
