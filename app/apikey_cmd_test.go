package main

import (
	"strings"
	"testing"

	"oneid/models"
)

func TestAPIKeyCommand(t *testing.T) {
	c := newCLI(t)
	if _, _, err := c.run("tenant", "create", "--name", "Key Co", "--principal", "x", "--admin-email", "k@key.example", "--admin-password", "a long enough password"); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := c.run("apikey", "create", "--tenant", "key-co", "--name", "crm backend")
	if err != nil {
		t.Fatal(err, errOut)
	}
	key := strings.TrimSpace(out)
	if !strings.HasPrefix(key, "oneid_") || !strings.Contains(errOut, "not shown again") {
		t.Fatalf("out %q stderr %q", out, errOut)
	}
	db, err := models.Open(c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s, _ := db.DB(); s.Close() }()
	found, err := models.FindAPIKey(db, key)
	if err != nil || found.Name != "crm backend" {
		t.Fatalf("stored key: %+v, %v", found, err)
	}
	if found.KeyHash == key || strings.Contains(found.KeyHash, key) {
		t.Fatal("the key is stored in the clear")
	}
	if _, _, err := c.run("apikey", "create", "--tenant", "nope"); err == nil {
		t.Fatal("a key for an unknown tenant")
	}
}
