package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func TestSignIn(t *testing.T) {
	h := newHarness(t, dbtest.MySQL(t))
	w := h.workspace("Sign In Co")
	admin := w.people[models.RoleAdmin]

	t.Run("LandsOnTheWorkspaceDashboard", func(t *testing.T) {
		c := h.visitor()
		r := c.signIn(admin.Email, password)
		if r.status != http.StatusSeeOther || r.location() != "/" {
			t.Fatalf("sign in: %d → %q", r.status, r.location())
		}
		if r := c.get("/"); r.location() != w.path("dashboard") {
			t.Fatalf("home sends to %q", r.location())
		}
		if r := c.get(w.path("dashboard")); r.status != http.StatusOK || !strings.Contains(r.body, "Sign In Co") {
			t.Fatalf("dashboard: %d", r.status)
		}
		if !h.audited(w.tenant.ID, models.AuditSignIn, admin.Email) {
			t.Fatal("sign-in not in the audit log")
		}
	})

	t.Run("RotatesTheSessionID", func(t *testing.T) {
		c := h.visitor()
		c.cookies["oneid_session"] = "chosen-by-an-attacker"
		c.signIn(admin.Email, password)
		first := c.cookies["oneid_session"]
		if first == "" || first == "chosen-by-an-attacker" {
			t.Fatalf("session cookie after sign-in: %q", first)
		}
		c.fresh().post("/signin", url.Values{"email": {w.people[models.RoleViewer].Email}, "password": {password}})
		second := c.cookies["oneid_session"]
		if second == "" || second == first {
			t.Fatal("signing in again kept the session id")
		}
		if _, err := models.FindSession(h.db, first); err != models.ErrNotFound {
			t.Fatalf("the old session still exists: %v", err)
		}
		old := h.visitor()
		old.cookies["oneid_session"] = first
		if r := old.get(w.path("dashboard")); r.status != http.StatusSeeOther {
			t.Fatalf("the old session id still works: %d", r.status)
		}
	})

	t.Run("StoresOnlyTheHashOfTheSessionID", func(t *testing.T) {
		c := h.signedIn(admin)
		var n int64
		h.db.Model(&models.Session{}).Where("id_hash = ?", c.cookies["oneid_session"]).Count(&n)
		if n != 0 {
			t.Fatal("the raw session id is in the sessions table")
		}
	})

	t.Run("EndsAfterThirtyIdleMinutes", func(t *testing.T) {
		c := h.signedIn(admin)
		h.clock.Advance(29 * time.Minute)
		if r := c.get(w.path("dashboard")); r.status != http.StatusOK {
			t.Fatalf("after 29 idle minutes: %d", r.status)
		}
		h.clock.Advance(29 * time.Minute)
		if r := c.get(w.path("dashboard")); r.status != http.StatusOK {
			t.Fatalf("29 minutes after the last request: %d", r.status)
		}
		h.clock.Advance(31 * time.Minute)
		r := c.get(w.path("dashboard"))
		if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/signin?") || !strings.Contains(r.location(), "expired=1") {
			t.Fatalf("after 31 idle minutes: %d → %q", r.status, r.location())
		}
		if r := c.get(r.location()); !strings.Contains(r.body, "Your session ended") && !strings.Contains(r.body, "登录已过期") {
			t.Fatal("the sign-in page does not say the session ended")
		}
	})

	t.Run("EndsTwelveHoursAfterSignInWhatever", func(t *testing.T) {
		c := h.signedIn(admin)
		start := h.clock.Now()
		for h.clock.Now().Sub(start) < 12*time.Hour-20*time.Minute {
			h.clock.Advance(20 * time.Minute)
			if r := c.get(w.path("dashboard")); r.status != http.StatusOK {
				t.Fatalf("active session ended after %v: %d", h.clock.Now().Sub(start), r.status)
			}
		}
		h.clock.Advance(21 * time.Minute)
		if r := c.get(w.path("dashboard")); r.status != http.StatusSeeOther {
			t.Fatalf("session alive %v after sign-in: %d", h.clock.Now().Sub(start), r.status)
		}
	})

	t.Run("AnswersTheSameForAnUnknownAccountAndAWrongPassword", func(t *testing.T) {
		unknown := h.visitor().signIn("nobody-here@example.com", "wrong password")
		wrong := h.visitor().signIn(admin.Email, "wrong password")
		if unknown.status != http.StatusUnauthorized || wrong.status != unknown.status {
			t.Fatalf("statuses: unknown %d, wrong password %d", unknown.status, wrong.status)
		}
		normalise := func(body, email string) string {
			body = strings.ReplaceAll(body, email, "EMAIL")
			return csrfValues.ReplaceAllString(body, "TOKEN")
		}
		if a, b := normalise(unknown.body, "nobody-here@example.com"), normalise(wrong.body, admin.Email); a != b {
			t.Fatalf("the answers differ:\n%s\n---\n%s", a, b)
		}
		if !h.audited(w.tenant.ID, models.AuditSignInFailed, admin.Email) {
			t.Fatal("the failed sign-in is not in the audit log")
		}
	})

	t.Run("ThrottlesAnAccountAfterFiveFailures", func(t *testing.T) {
		victim := w.people[models.RoleMarketer]
		for i := range 5 {
			if r := h.visitor().signIn(victim.Email, "guess "+string(rune('a'+i))); r.status != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d", i+1, r.status)
			}
		}
		r := h.visitor().signIn(victim.Email, password)
		if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "15") {
			t.Fatalf("right password while locked: %d", r.status)
		}
		ghost := "ghost@example.com"
		for range 5 {
			h.visitor().signIn(ghost, "guess")
		}
		if r := h.visitor().signIn(ghost, "guess"); r.status != http.StatusTooManyRequests {
			t.Fatalf("an unknown account is not throttled alike: %d", r.status)
		}
		h.clock.Advance(16 * time.Minute)
		if r := h.visitor().signIn(victim.Email, password); r.status != http.StatusSeeOther {
			t.Fatalf("after the lock: %d", r.status)
		}
	})

	t.Run("ReRendersAnEmptyFormWith422", func(t *testing.T) {
		c := h.visitor()
		c.header.Set("Accept-Language", "en")
		c.get("/signin")
		r := c.post("/signin", url.Values{"email": {""}, "password": {""}})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "Enter your email and password") {
			t.Fatalf("%d\n%s", r.status, r.body)
		}
	})

	t.Run("SignsOut", func(t *testing.T) {
		c := h.signedIn(admin).fresh()
		id := c.cookies["oneid_session"]
		if r := c.post("/signout", nil); r.status != http.StatusSeeOther || r.location() != "/signin" {
			t.Fatalf("sign out: %d → %q", r.status, r.location())
		}
		if _, err := models.FindSession(h.db, id); err != models.ErrNotFound {
			t.Fatal("the session row survived sign-out")
		}
		if r := c.get(w.path("dashboard")); r.status != http.StatusSeeOther {
			t.Fatalf("after sign-out: %d", r.status)
		}
	})

	t.Run("SetsSafeCookies", func(t *testing.T) {
		line := h.visitor().signIn(admin.Email, password).setCookie("oneid_session")
		for _, want := range []string{"httponly", "samesite=lax", "max-age=43200", "path=/"} {
			if !strings.Contains(line, want) {
				t.Errorf("session cookie %q lacks %s", line, want)
			}
		}
		if strings.Contains(line, "secure") {
			t.Error("Secure set on a plain-http deployment")
		}
		cfg := h.cfg
		cfg.PublicURL = "https://oneid.example.com"
		_, app := h.instance(cfg)
		line = h.visitor().on(app).signIn(admin.Email, password).setCookie("oneid_session")
		if !strings.Contains(line, "secure") {
			t.Errorf("no Secure flag behind https: %q", line)
		}
	})
}
