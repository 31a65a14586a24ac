package main

import (
	"errors"
	"strings"
	"testing"
)

func TestSeedCommand(t *testing.T) {
	c := newCLI(t)
	if _, errOut, err := c.run("tenant", "create", "--name", "Seeded Co", "--principal", "某某数据（深圳）有限公司",
		"--admin-email", "seed@seeded.example", "--admin-password", "a long enough password"); err != nil {
		t.Fatalf("tenant: %v %s", err, errOut)
	}
	t.Run("HelpSaysWhatItDoes", func(t *testing.T) {
		_, errOut, err := c.run("seed", "--help")
		if !errors.Is(err, errHelp) || !strings.Contains(errOut, "-customers int") || !strings.Contains(errOut, "-tenant string") {
			t.Fatalf("err %v, help %q", err, errOut)
		}
	})
	t.Run("RefusesAnUnknownTenant", func(t *testing.T) {
		if _, _, err := c.run("seed", "--tenant", "nobody", "--customers", "5"); err == nil || !strings.Contains(err.Error(), `no tenant has the slug "nobody"`) {
			t.Fatalf("err %v", err)
		}
		if _, _, err := c.run("seed", "--customers", "5"); err == nil || !strings.Contains(err.Error(), "--tenant is required") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("SeedsPrintingProgressAndCounts", func(t *testing.T) {
		out, errOut, err := c.run("seed", "--tenant", "seeded-co", "--customers", "1500")
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		if !strings.HasPrefix(out, "seeded seeded-co: 6 apps, 1500 customers, ") || !strings.Contains(errOut, "customers 1500/1500 (100%)") ||
			!strings.Contains(errOut, "masks 1500/1500") || !strings.Contains(errOut, "dashboard figures") {
			t.Fatalf("out %q\nstderr %q", out, errOut)
		}
	})
}
