package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"oneid/migrations/dbtest"
	"oneid/models"
)

// csrfValues matches CSRF tokens (32 random bytes, base64url) in a page.
var csrfValues = regexp.MustCompile(`[A-Za-z0-9_-]{43}`)

func TestCSRF(t *testing.T) {
	h := newHarness(t, dbtest.MySQL(t))
	w := h.workspace("CSRF Co")
	admin := h.signedIn(w.people[models.RoleAdmin]).fresh()
	invite := url.Values{"email": {"csrf-victim@example.com"}, "role": {"admin"}}
	invitations := func() int64 { return h.count("invitations", w.tenant.ID) }

	t.Run("RefusesAFormWithoutTheToken", func(t *testing.T) {
		before := invitations()
		r := admin.post(w.path("invitations"), url.Values{"email": invite["email"], "role": invite["role"], "_csrf": {""}})
		if r.status != http.StatusForbidden || !strings.Contains(r.body, `data-status="403"`) {
			t.Fatalf("%d", r.status)
		}
		if !strings.Contains(r.body, "This form has expired") && !strings.Contains(r.body, "表单已失效") {
			t.Fatal("the refusal does not say why")
		}
		if invitations() != before {
			t.Fatal("the refused form changed the database")
		}
	})
	t.Run("RefusesAnotherSessionsToken", func(t *testing.T) {
		other := h.signedIn(w.people[models.RoleViewer]).fresh()
		form := cloneValues(invite)
		form.Set("_csrf", other.csrf)
		if r := admin.post(w.path("invitations"), form); r.status != http.StatusForbidden {
			t.Fatalf("%d", r.status)
		}
	})
	t.Run("RefusesAnotherOrigin", func(t *testing.T) {
		admin.header.Set("Origin", "https://evil.example")
		defer admin.header.Del("Origin")
		if r := admin.post(w.path("invitations"), invite); r.status != http.StatusForbidden {
			t.Fatalf("%d", r.status)
		}
	})
	t.Run("AcceptsTheTokenInTheHtmxHeader", func(t *testing.T) {
		admin.header.Set("X-CSRF-Token", admin.csrf)
		defer admin.header.Del("X-CSRF-Token")
		r := admin.post(w.path("invitations"), url.Values{"email": invite["email"], "role": invite["role"], "_csrf": {""}})
		if r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="invite-link"`) {
			t.Fatalf("%d", r.status)
		}
	})
	t.Run("ProtectsTheSignInFormToo", func(t *testing.T) {
		c := h.visitor()
		c.get("/signin")
		r := c.post("/signin", url.Values{"email": {w.people[models.RoleAdmin].Email}, "password": {password}, "_csrf": {"forged"}})
		if r.status != http.StatusForbidden || c.cookies["oneid_session"] != "" {
			t.Fatalf("login CSRF: %d", r.status)
		}
	})
	t.Run("PutsTheTokenOnTheBodyForHtmx", func(t *testing.T) {
		r := admin.get(w.path("members"))
		if !strings.Contains(r.body, `hx-headers="{&#34;X-CSRF-Token&#34;:&#34;`+admin.csrf) {
			t.Fatal("<body hx-headers> does not carry the session's token")
		}
	})
}
