package web_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"oneid/migrations/dbtest"
	"oneid/models"
)

var newKeyField = regexp.MustCompile(`value="(oneid_[^"]+)"[^>]*data-testid="new-key"`)

// TestAdminMakesAndRevokesAPIKeysInSettings: the key is shown once, works on
// the JSON API, is kept only as a hash, stops working when revoked; a refused
// name writes nothing; every change is audited.
func TestAdminMakesAndRevokesAPIKeysInSettings(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	w := h.workspace("Keys Co")
	admin := h.signedIn(w.people[models.RoleAdmin])

	page := admin.get(w.path("settings"))
	if page.status != http.StatusOK || !strings.Contains(page.body, `data-testid="no-keys"`) ||
		!strings.Contains(page.body, `data-testid="workspace-principal"`) || !strings.Contains(page.body, `data-testid="key-form"`) {
		t.Fatalf("settings: %d\n%.400s", page.status, page.body)
	}

	// A refused name: 422, the message, no row.
	for _, name := range []string{"", "   ", strings.Repeat("键", 101)} {
		r := admin.post(w.path("settings/api-keys"), url.Values{"name": {name}})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "请为密钥填写 1 到 100 个字符的名称") {
			t.Fatalf("name %q: %d", name, r.status)
		}
	}
	if n := h.count("api_keys", w.tenant.ID); n != 0 {
		t.Fatalf("refused names wrote %d keys", n)
	}

	r := admin.post(w.path("settings/api-keys"), url.Values{"name": {"小程序后端"}})
	m := newKeyField.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d, cache %q, key field %v", r.status, r.header.Get("Cache-Control"), m)
	}
	key := html.UnescapeString(m[1])
	var stored models.APIKey
	if err := h.db.Scopes(models.ForTenant(w.tenant.ID)).Take(&stored).Error; err != nil {
		t.Fatal(err)
	}
	if stored.Name != "小程序后端" || strings.Contains(stored.KeyHash, key) || !strings.HasPrefix(key, "oneid_"+stored.Prefix+"_") {
		t.Fatalf("stored %+v for key %s", stored, key)
	}
	// Shown once: the page afterwards lists the key by its prefix only.
	again := admin.get(w.path("settings"))
	if strings.Contains(again.body, key) || !strings.Contains(again.body, "oneid_"+stored.Prefix+"_…") || !strings.Contains(again.body, `data-revoked="false"`) {
		t.Fatal("the settings page shows the key again, or not its prefix")
	}
	if !h.audited(w.tenant.ID, models.AuditAPIKeyCreated, "小程序后端") {
		t.Fatal("the new key is not audited")
	}

	// The key works on the JSON API; a look-up of no one is 404, not 401.
	api := h.visitor()
	api.header.Set("Authorization", "Bearer "+key)
	if got := api.get("/api/v1/customers?unionid=nobody"); got.status != http.StatusNotFound {
		t.Fatalf("API with the new key: %d %s", got.status, got.body)
	}

	rev := admin.post(w.path("settings/api-keys/"+strconv.FormatInt(stored.ID, 10)+"/revoke"), url.Values{})
	if rev.status != http.StatusSeeOther || rev.location() != w.path("settings?done=revoked") {
		t.Fatalf("revoke: %d → %s", rev.status, rev.location())
	}
	after := admin.get(rev.location())
	if !strings.Contains(after.body, `data-testid="notice"`) || !strings.Contains(after.body, `data-revoked="true"`) || strings.Contains(after.body, `data-testid="key-revoke"`) {
		t.Fatal("the revoked key is not shown as revoked")
	}
	if got := api.get("/api/v1/customers?unionid=nobody"); got.status != http.StatusUnauthorized {
		t.Fatalf("API with the revoked key: %d", got.status)
	}
	if !h.audited(w.tenant.ID, models.AuditAPIKeyRevoked, "小程序后端") {
		t.Fatal("the revocation is not audited")
	}
	// Revoking again changes nothing; an id that is not there is 404.
	if r := admin.post(w.path("settings/api-keys/"+strconv.FormatInt(stored.ID, 10)+"/revoke"), url.Values{}); r.status != http.StatusSeeOther {
		t.Fatalf("second revoke: %d", r.status)
	}
	if r := admin.post(w.path("settings/api-keys/99999999/revoke"), url.Values{}); r.status != http.StatusNotFound {
		t.Fatalf("unknown key: %d", r.status)
	}
	// Without the CSRF token nothing is made.
	if r := admin.post(w.path("settings/api-keys"), url.Values{"name": {"x"}, "_csrf": {"forged"}}); r.status != http.StatusForbidden {
		t.Fatalf("forged form: %d", r.status)
	}
	if n := h.count("api_keys", w.tenant.ID); n != 1 {
		t.Fatalf("%d keys, want 1", n)
	}
}
