// Command oneid runs the OneID portal and its operator subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"oneid/app/wechat/wechattest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil && !errors.Is(err, errHelp) {
		fmt.Fprintln(os.Stderr, "oneid:", err)
		os.Exit(1)
	}
}

// command is one subcommand: its name, a one-line summary and what it does.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, env *environment) error
}

// environment is what every subcommand may use; tests pass their own.
type environment struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

func commands() []command {
	return []command{
		{"serve", "start the portal (the default)", runServe},
		{"migrate", "apply database migrations and exit", runMigrate},
		{"tenant", "create, list or suspend tenants (platform operator)", runTenant},
		{"apikey", "create an API key for a tenant's own systems", runAPIKey},
		{"seed", "write a large generated tenant for development and benchmarks (--tenant, --customers)", runSeed},
		{"healthcheck", "exit 0 when the local portal is ready (for container health checks)", runHealthcheck},
		{"rekey", "re-encrypt every secret at rest under a new ONEID_SECRET_KEY", runRekey},
		{"bench-sync", "measure a full follower sync and a re-sync of N followers from the simulator into MySQL (--followers)", runBenchSync},
		{"wxsim", "run the WeChat simulator (--addr, --fixture; `wxsim bench` measures it)", func(ctx context.Context, args []string, env *environment) error {
			return wechattest.Main(ctx, args, env.stdout)
		}},
	}
}

// run is the whole program; main only adds signals and the real environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	env := &environment{getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) == 0 || (len(args[0]) > 0 && args[0][0] == '-' && args[0] != "-h" && args[0] != "--help") {
		return runServe(ctx, args, env)
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], env)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: oneid <command> [flags]   (run 'oneid <command> --help' for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
}
