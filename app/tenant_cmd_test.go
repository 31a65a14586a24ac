package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"oneid/migrations/dbtest"
)

// cli runs the whole program against a database of its own.
type cli struct {
	t   *testing.T
	url string
	key string
}

func newCLI(t *testing.T) *cli {
	_, url := dbtest.MySQLWithURL(t)
	return &cli{t: t, url: url, key: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))}
}

func (c *cli) run(args ...string) (string, string, error) {
	c.t.Helper()
	env := map[string]string{"ONEID_DATABASE_URL": c.url, "ONEID_SECRET_KEY": c.key, "ONEID_DATA_DIR": c.t.TempDir(), "ONEID_LOG_LEVEL": "error"}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestTenantCommand(t *testing.T) {
	c := newCLI(t)

	t.Run("CreatePrintsTheSlug", func(t *testing.T) {
		out, errOut, err := c.run("tenant", "create", "--name", "Acme Coffee", "--principal", "某某咖啡（上海）有限公司",
			"--admin-email", "boss@acme.example", "--admin-password", "a long enough password")
		if err != nil || out != "acme-coffee\n" {
			t.Fatalf("out %q, err %v, stderr %s", out, err, errOut)
		}
	})
	t.Run("CreateRefusesMissingFlags", func(t *testing.T) {
		_, _, err := c.run("tenant", "create", "--name", "X")
		if err == nil || !strings.Contains(err.Error(), "--principal is required") {
			t.Fatalf("err %v", err)
		}
		_, _, err = c.run("tenant", "create", "--name", "X", "--principal", "Y", "--admin-email", "new@x.example", "--admin-password", "short")
		if err == nil || !strings.Contains(err.Error(), "10 to 128") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("CreateMakesAnExistingPersonAdmin", func(t *testing.T) {
		out, errOut, err := c.run("tenant", "create", "--name", "Acme Tea", "--principal", "某某茶（上海）有限公司", "--admin-email", "boss@acme.example")
		if err != nil || out != "acme-tea\n" || !strings.Contains(errOut, "already has an account") {
			t.Fatalf("out %q err %v stderr %q", out, err, errOut)
		}
	})
	t.Run("ListShowsEveryTenant", func(t *testing.T) {
		out, _, err := c.run("tenant", "list")
		if err != nil || !strings.Contains(out, "acme-coffee") || !strings.Contains(out, "acme-tea") || !strings.Contains(out, "某某咖啡（上海）有限公司") {
			t.Fatalf("out %q err %v", out, err)
		}
	})
	t.Run("SuspendAndResume", func(t *testing.T) {
		if out, _, err := c.run("tenant", "suspend", "--tenant", "acme-tea"); err != nil || !strings.Contains(out, "suspended") {
			t.Fatalf("out %q err %v", out, err)
		}
		out, _, _ := c.run("tenant", "list")
		if !strings.Contains(out, "acme-tea     suspended") {
			t.Fatalf("list after suspend:\n%s", out)
		}
		if _, _, err := c.run("tenant", "resume", "--tenant", "acme-tea"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.run("tenant", "suspend", "--tenant", "nope"); err == nil || !strings.Contains(err.Error(), `no tenant has the slug "nope"`) {
			t.Fatalf("unknown slug: %v", err)
		}
	})
	t.Run("HelpOnEachSubcommand", func(t *testing.T) {
		for _, sub := range [][]string{{"tenant", "create"}, {"tenant", "list"}, {"tenant", "suspend"}, {"apikey", "create"}} {
			_, errOut, err := c.run(append(sub, "--help")...)
			if !errors.Is(err, errHelp) || !strings.Contains(errOut, "Usage: oneid "+strings.Join(sub, " ")) {
				t.Errorf("%v --help: %v\n%s", sub, err, errOut)
			}
		}
		if out, _, err := c.run("tenant", "--help"); err != nil || !strings.Contains(out, "create|list|suspend|resume") {
			t.Errorf("tenant --help: %v %q", err, out)
		}
	})
}
