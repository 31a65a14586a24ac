package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func TestTenantResolution(t *testing.T) {
	h := newHarness(t, dbtest.MySQL(t))
	a, b := h.workspace("Tenant A"), h.workspace("Tenant B")
	outsider := h.signedIn(b.people[models.RoleAdmin])

	t.Run("ANonMemberAndAMissingTenantGetTheSame404", func(t *testing.T) {
		notMine := outsider.get(a.path("members"))
		missing := outsider.get("/t/no-such-tenant/members")
		if notMine.status != http.StatusNotFound || missing.status != http.StatusNotFound {
			t.Fatalf("statuses %d and %d, want 404", notMine.status, missing.status)
		}
		if notMine.body != missing.body {
			t.Fatalf("the two 404 pages differ:\n%s\n---\n%s", notMine.body, missing.body)
		}
		unknownRoute := outsider.get("/t/no-such-tenant/no-such-page")
		if unknownRoute.status != http.StatusNotFound || unknownRoute.body != missing.body {
			t.Fatal("an unknown page answers differently")
		}
	})

	t.Run("ASuspendedTenantShowsItsMembersANotice", func(t *testing.T) {
		member := h.signedIn(a.people[models.RoleViewer])
		if _, err := models.SetTenantStatus(h.db, a.tenant.Slug, models.TenantSuspended); err != nil {
			t.Fatal(err)
		}
		defer models.SetTenantStatus(h.db, a.tenant.Slug, models.TenantActive)
		r := member.get(a.path("dashboard"))
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "error-code") {
			t.Fatalf("member of a suspended tenant: %d", r.status)
		}
		if !strings.Contains(r.body, "suspended") && !strings.Contains(r.body, "已停用") {
			t.Fatal("the page does not say the workspace is suspended")
		}
		if r := outsider.get(a.path("dashboard")); r.status != http.StatusNotFound {
			t.Fatalf("non-member of a suspended tenant: %d, want 404", r.status)
		}
		if r := member.get("/"); r.location() != "/tenants" {
			t.Fatalf("home with only a suspended workspace: %q", r.location())
		}
	})

	t.Run("AVisitorIsSentToSignInAndBack", func(t *testing.T) {
		c := h.visitor()
		r := c.get(a.path("members"))
		if r.status != http.StatusSeeOther || r.location() != "/signin?next="+url.QueryEscape(a.path("members")) {
			t.Fatalf("%d → %q", r.status, r.location())
		}
		c.get(r.location())
		r = c.post("/signin", url.Values{"email": {a.people[models.RoleAdmin].Email}, "password": {password}, "next": {a.path("members")}})
		if r.location() != a.path("members") {
			t.Fatalf("after sign-in: %q", r.location())
		}
		c.fresh()
		if r := c.post("/signout", url.Values{}); r.status != http.StatusSeeOther {
			t.Fatal(r.status)
		}
		c.get("/signin")
		r = c.post("/signin", url.Values{"email": {a.people[models.RoleAdmin].Email}, "password": {password}, "next": {"//evil.example/x"}})
		if r.location() != "/" {
			t.Fatalf("an open redirect: %q", r.location())
		}
	})
}

func TestResponsesCarrySecurityHeadersAndARequestID(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	c := h.visitor()
	ids := map[string]bool{}
	for _, path := range []string{"/signin", "/no-such-page", "/healthz", "/static/css/app.css"} {
		r := c.get(path)
		want := map[string]string{
			"X-Frame-Options":        "DENY",
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "same-origin",
		}
		for k, v := range want {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", path, k, got, v)
			}
		}
		csp := r.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		id := r.header.Get("X-Request-ID")
		if len(id) != 16 || ids[id] {
			t.Errorf("%s: request id %q", path, id)
		}
		ids[id] = true
	}
	r := c.get("/static/css/app.css")
	if !strings.Contains(r.header.Get("Cache-Control"), "max-age=31536000") || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") {
		t.Errorf("static: %v", r.header)
	}
	if r := c.get("/static/../../go.mod"); r.status != http.StatusNotFound {
		t.Errorf("path traversal: %d", r.status)
	}
	if r := c.get("/signin"); !regexp.MustCompile(`<script src="/static/vendor/htmx-2\.0\.4\.min\.js"`).MatchString(r.body) || strings.Contains(r.body, "<script>") {
		t.Error("the page should load htmx from /static and have no inline script")
	}
}

func TestLocale(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	c := h.visitor()
	if r := c.get("/signin"); !strings.Contains(r.body, `<html lang="zh-CN"`) || !strings.Contains(r.body, "登录") {
		t.Fatal("the default is not zh-CN")
	}
	c.header.Set("Accept-Language", "en-GB,en;q=0.9")
	if r := c.get("/signin"); !strings.Contains(r.body, `<html lang="en"`) || !strings.Contains(r.body, "Sign in") {
		t.Fatal("Accept-Language en is ignored")
	}
	c.header.Set("Referer", "http://example.com/signin?next=%2Ft%2Fx%2Fmembers")
	r := c.post("/locale", url.Values{"lang": {"zh-CN"}})
	if r.status != http.StatusSeeOther || r.location() != "/signin?next=%2Ft%2Fx%2Fmembers" {
		t.Fatalf("switch: %d → %q", r.status, r.location())
	}
	if r := c.get("/signin"); !strings.Contains(r.body, `<html lang="zh-CN"`) {
		t.Fatal("the switch does not beat Accept-Language")
	}
}

// The logs say what happened to each request without passwords, session ids,
// CSRF tokens or invitation tokens.
func TestLogsCarryNoSecrets(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	w := h.workspace("Log Co")
	admin := h.signedIn(w.people[models.RoleAdmin]).fresh()
	link := invite(t, admin, w, "logged@example.com", models.RoleViewer)
	newbie := h.visitor()
	newbie.get(link)
	newbie.post(link, url.Values{"password": {"new person's secret password"}})
	h.visitor().signIn(w.people[models.RoleAdmin].Email, "a wrong secret password")

	logs := h.logs.String()
	secrets := map[string]string{
		"password":          password,
		"new password":      "new person's secret password",
		"wrong password":    "a wrong secret password",
		"session id":        admin.cookies["oneid_session"],
		"csrf token":        admin.csrf,
		"invitation token":  strings.TrimPrefix(link, "/invitations/"),
		"newbie session id": newbie.cookies["oneid_session"],
	}
	for what, s := range secrets {
		if s == "" {
			t.Fatalf("no %s to look for", what)
		}
		if strings.Contains(logs, s) {
			t.Errorf("the logs contain the %s", what)
		}
	}
	var sawTenantLine bool
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON line: %s", line)
		}
		if rec["msg"] != "request" {
			continue
		}
		for _, k := range []string{"request_id", "method", "path", "status", "duration_ms"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line without %s: %s", k, line)
			}
		}
		if rec["path"] == w.path("members") {
			sawTenantLine = rec["tenant_id"] != nil && rec["user_id"] != nil
		}
		if strings.Contains(rec["path"].(string), "/invitations/") && rec["path"] != "/invitations/[redacted]" {
			t.Errorf("invitation path logged as %v", rec["path"])
		}
	}
	if !sawTenantLine {
		t.Error("no log line of a tenant request with tenant_id and user_id")
	}
}

// A failure inside a request is logged with the request id, which the page shows.
func TestServerErrorShowsTheRequestID(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	w := h.workspace("Broken Co")
	c := h.signedIn(w.people[models.RoleAdmin])
	sqlDB, _ := h.db.DB()
	sqlDB.Close()
	r := c.get(w.path("members"))
	id := r.header.Get("X-Request-ID")
	if r.status != http.StatusInternalServerError || !strings.Contains(r.body, id) {
		t.Fatalf("%d, request id %q shown: %v", r.status, id, strings.Contains(r.body, id))
	}
	if !strings.Contains(h.logs.String(), `"msg":"request failed","request_id":"`+id) {
		t.Fatalf("the failure is not logged with the request id:\n%s", h.logs.String())
	}
}
