package main

import (
	"context"
	"fmt"
	"strings"

	"oneid/app/demo"
	"oneid/app/server"
)

// prepareDemo makes (or finds) the demo workspace once the portal listens,
// and prints how to sign in.
func prepareDemo(ctx context.Context, run *server.Running, env *environment) error {
	portal := run.URL // pushes stay on loopback
	r, err := run.Demo.Prepare(ctx, portal, run.WeChat)
	if err != nil {
		return err
	}
	url := run.Config.PublicURL
	if strings.HasSuffix(url, ":0") {
		url = portal
	}
	what := "found the demo workspace"
	if r.Created {
		what = fmt.Sprintf("made the demo workspace: %d customers, %d identities, %d events", r.Seeded.Customers, r.Seeded.Identities, r.Seeded.Events)
	}
	w := env.stdout
	fmt.Fprintf(w, "\nOneID demo (%s in %.1fs)\n", what, r.Took.Seconds())
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
