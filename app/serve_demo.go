package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"oneid/app/demo"
	"oneid/app/wechat"
)

// startDemo starts the WeChat simulator of `serve --demo` and points the
// portal's WeChat settings at it, through a loopback-only transport.
func startDemo(sys *system) (*demo.Demo, error) {
	dm, err := demo.Start(demo.Config{DB: sys.db, Sealer: sys.sealer, Log: sys.log, DataDir: sys.cfg.DataDir})
	if err != nil {
		return nil, err
	}
	sys.cfg.WeChat = dm.WeChat()
	sys.wrapWeChat = dm.Transport
	sys.log.Info("demo mode: WeChat is the in-process simulator", "simulator", dm.SimURL())
	return dm, nil
}

// prepareDemo makes (or finds) the demo workspace once the portal listens on
// addr, and prints how to sign in.
func prepareDemo(ctx context.Context, sys *system, dm *demo.Demo, addr net.Addr, wx *wechat.Client, env *environment) error {
	start := time.Now()
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	portal := "http://" + net.JoinHostPort(host, port) // pushes stay on loopback
	r, err := dm.Prepare(ctx, portal, wx)
	if err != nil {
		return err
	}
	url := sys.cfg.PublicURL
	if strings.HasSuffix(url, ":0") {
		url = portal
	}
	what := "found the demo workspace"
	if r.Created {
		what = fmt.Sprintf("made the demo workspace: %d customers, %d identities, %d events", r.Seeded.Customers, r.Seeded.Identities, r.Seeded.Events)
	}
	w := env.stdout
	fmt.Fprintf(w, "\nOneID demo (%s in %.1fs)\n", what, time.Since(start).Seconds())
	fmt.Fprintf(w, "  open:      %s/signin\n", url)
	fmt.Fprintf(w, "  sign in:   %s\n", r.Email)
	fmt.Fprintf(w, "  password:  %s\n", r.Password)
	fmt.Fprintf(w, "  workspace: %s/t/%s/customers\n", url, r.Slug)
	fmt.Fprintf(w, "  WeChat:    simulated in process at %s (loopback only; nothing reaches WeChat)\n", r.SimURL)
	if r.FollowCommand != "" {
		fmt.Fprintf(w, "  a follow event: run\n    %s\n  then open %s%s to see it on the timeline\n", r.FollowCommand, url, r.CustomerPath)
	}
	fmt.Fprintf(w, "  principal refusal: 应用 (Apps) > 使用微信授权绑定 (Bind with WeChat) > %s, then 绑定到此账号 (Bind to this account)\n\n", demo.OtherName)
	return nil
}
