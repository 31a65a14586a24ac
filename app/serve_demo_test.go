package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeDemoRefusesADatabaseURL: --demo writes a workspace with a printed
// password, so it runs on the embedded database only, and says so before
// touching the configured one.
func TestServeDemoRefusesADatabaseURL(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"ONEID_DATABASE_URL": "mysql://nobody@127.0.0.1:1/production",
		"ONEID_SECRET_KEY":   "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"ONEID_DATA_DIR":     dir,
	}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"serve", "--demo"}, func(k string) string { return env[k] }, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "embedded database only") {
		t.Fatalf("serve --demo with a MySQL URL: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("the refused demo wrote into its data folder: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(dir, "demo.json")); err == nil {
		t.Fatal("demo.json written")
	}
}
