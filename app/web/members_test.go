package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"oneid/migrations/dbtest"
	"oneid/models"
)

var inviteLink = regexp.MustCompile(`data-testid="invite-link"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*data-testid="invite-link"`)

// invite has the client (an admin) invite email with role and returns the
// path of the link.
func invite(t *testing.T, c *client, w *workspace, email, role string) string {
	t.Helper()
	c.get(w.path("members"))
	r := c.post(w.path("invitations"), url.Values{"email": {email}, "role": {role}})
	if r.status != http.StatusOK {
		t.Fatalf("invite %s: %d\n%s", email, r.status, r.body)
	}
	m := inviteLink.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no invitation link on the page:\n%s", r.body)
	}
	link := m[1] + m[2]
	u, err := url.Parse(link)
	if err != nil || !strings.HasPrefix(link, "http://oneid.test/invitations/") {
		t.Fatalf("link %q", link)
	}
	return u.Path
}

func TestInvitations(t *testing.T) {
	h := newHarness(t, dbtest.MySQL(t))
	w := h.workspace("Invite Co")
	other := h.workspace("Other Co")
	admin := h.signedIn(w.people[models.RoleAdmin]).fresh()

	t.Run("ANewPersonSetsAPasswordAndJoins", func(t *testing.T) {
		link := invite(t, admin, w, "newbie@example.com", models.RoleMarketer)
		if !h.audited(w.tenant.ID, models.AuditInvitationCreated, "newbie@example.com") {
			t.Fatal("invitation not audited")
		}
		c := h.visitor()
		r := c.get(link)
		if r.status != http.StatusOK || !strings.Contains(r.body, `name="password"`) || !strings.Contains(r.body, "Invite Co") {
			t.Fatalf("accept page: %d", r.status)
		}
		if r := c.post(link, url.Values{"name": {"New Bie"}, "password": {"short"}}); r.status != http.StatusUnprocessableEntity {
			t.Fatalf("short password: %d", r.status)
		}
		if _, err := models.FindUserByEmail(h.db, "newbie@example.com"); err != models.ErrNotFound {
			t.Fatal("a refused form created the account")
		}
		r = c.post(link, url.Values{"name": {"New Bie"}, "password": {"a new long password"}})
		if r.status != http.StatusSeeOther || r.location() != w.path("dashboard") {
			t.Fatalf("accept: %d → %q\n%s", r.status, r.location(), r.body)
		}
		if r := c.get(w.path("customers")); r.status != http.StatusOK {
			t.Fatalf("the new marketer cannot open customers: %d", r.status)
		}
		if r := c.get(w.path("members")); r.status != http.StatusForbidden {
			t.Fatalf("the new marketer opens members: %d", r.status)
		}
		if r := h.visitor().get(link); r.status != http.StatusNotFound || !strings.Contains(r.body, `data-status="404"`) {
			t.Fatalf("a used link: %d", r.status)
		}
		if !h.audited(w.tenant.ID, models.AuditInvitationAccepted, "newbie@example.com") {
			t.Fatal("acceptance not audited")
		}
	})

	t.Run("AnExistingPersonSignsInToAccept", func(t *testing.T) {
		agent := other.people[models.RoleViewer]
		link := invite(t, admin, w, agent.Email, models.RoleViewer)
		c := h.visitor()
		r := c.get(link)
		if !strings.Contains(r.body, `autocomplete="current-password"`) || strings.Contains(r.body, `name="name"`) {
			t.Fatal("the page does not ask an existing person for their password")
		}
		if r := c.post(link, url.Values{"password": {"not it"}}); r.status != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d", r.status)
		}
		if r := c.post(link, url.Values{"password": {password}}); r.status != http.StatusSeeOther {
			t.Fatalf("accept: %d\n%s", r.status, r.body)
		}
		ws, _ := models.WorkspacesOf(h.db, agent.ID)
		if len(ws) != 2 {
			t.Fatalf("the agent belongs to %d workspaces, want 2", len(ws))
		}
	})

	t.Run("ASignedInPersonJoinsWithOneClickAndNobodyElseCan", func(t *testing.T) {
		them := other.people[models.RoleMarketer]
		link := invite(t, admin, w, them.Email, models.RoleViewer)
		wrong := h.signedIn(other.people[models.RoleAdmin])
		if r := wrong.get(link); !strings.Contains(r.body, `data-testid="accept-wrong-person"`) {
			t.Fatal("someone else signed in is not told the invitation is not theirs")
		}
		if r := wrong.post(link, url.Values{}); r.status != http.StatusForbidden {
			t.Fatalf("someone else accepted: %d", r.status)
		}
		c := h.signedIn(them)
		c.get(link)
		if r := c.post(link, url.Values{}); r.status != http.StatusSeeOther {
			t.Fatalf("one-click accept: %d", r.status)
		}
		if role, _ := models.MemberRole(h.db, w.tenant.ID, them.ID); role != models.RoleViewer {
			t.Fatalf("role %q", role)
		}
	})

	t.Run("RefusesBadInputWith422", func(t *testing.T) {
		before := h.count("invitations", w.tenant.ID)
		admin.get(w.path("members"))
		for _, form := range []url.Values{
			{"email": {"nope"}, "role": {"viewer"}},
			{"email": {"ok@example.com"}, "role": {"owner"}},
			{"email": {w.people[models.RoleViewer].Email}, "role": {"viewer"}},
		} {
			if r := admin.post(w.path("invitations"), form); r.status != http.StatusUnprocessableEntity {
				t.Fatalf("%v: %d", form, r.status)
			}
		}
		if h.count("invitations", w.tenant.ID) != before {
			t.Fatal("a refused invitation was stored")
		}
	})

	t.Run("RevokesAndExpires", func(t *testing.T) {
		link := invite(t, admin, w, "revoked@example.com", models.RoleViewer)
		invs, _ := models.ListPendingInvitations(h.db, w.tenant.ID, h.clock.Now())
		if r := admin.post(w.path("invitations/"+strconv.FormatInt(invs[0].ID, 10)+"/revoke"), nil); r.status != http.StatusSeeOther {
			t.Fatalf("revoke: %d", r.status)
		}
		if r := h.visitor().get(link); r.status != http.StatusNotFound {
			t.Fatalf("revoked link: %d", r.status)
		}
		late := invite(t, admin, w, "late@example.com", models.RoleViewer)
		h.clock.Advance(7*24*time.Hour + time.Minute)
		if r := h.visitor().get(late); r.status != http.StatusNotFound {
			t.Fatalf("expired link: %d", r.status)
		}
	})
}

func TestMembers(t *testing.T) {
	h := newHarness(t, dbtest.MySQL(t))
	w := h.workspace("Members Co")
	admin := h.signedIn(w.people[models.RoleAdmin]).fresh()
	changeRole := func(c *client, role string, to string) *response {
		c.get(w.path("members"))
		return c.post(w.path("members/"+strconv.FormatInt(w.member[role], 10)+"/role"), url.Values{"role": {to}})
	}

	t.Run("ListsMembersForAdmins", func(t *testing.T) {
		r := admin.get(w.path("members"))
		for _, u := range w.people {
			if !strings.Contains(r.body, u.Email) {
				t.Errorf("%s missing", u.Email)
			}
		}
		if !strings.Contains(r.body, `data-testid="invite-form"`) {
			t.Error("an admin gets no invite form")
		}
	})

	t.Run("ARoleChangeHoldsAtTheNextRequestOnAnotherInstance", func(t *testing.T) {
		_, second := h.instance(h.cfg)
		marketer := h.signedIn(w.people[models.RoleMarketer]).on(second)
		if r := marketer.get(w.path("exports")); r.status != http.StatusOK {
			t.Fatalf("marketer on exports: %d", r.status)
		}
		if r := changeRole(admin, models.RoleMarketer, models.RoleViewer); r.status != http.StatusSeeOther {
			t.Fatalf("change role: %d\n%s", r.status, r.body)
		}
		if r := marketer.get(w.path("exports")); r.status != http.StatusForbidden {
			t.Fatalf("demoted marketer on exports: %d", r.status)
		}
		if r := marketer.get(w.path("dashboard")); strings.Contains(r.body, `data-testid="nav-exports"`) {
			t.Fatal("the demoted marketer still sees Exports in the menu")
		}
		if !h.audited(w.tenant.ID, models.AuditRoleChanged, w.people[models.RoleMarketer].Email) {
			t.Fatal("role change not audited")
		}
		changeRole(admin, models.RoleMarketer, models.RoleMarketer)
	})

	t.Run("RefusesToDemoteTheLastAdmin", func(t *testing.T) {
		r := changeRole(admin, models.RoleAdmin, models.RoleViewer)
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="alert-error"`) {
			t.Fatalf("%d", r.status)
		}
		if role, _ := models.MemberRole(h.db, w.tenant.ID, w.people[models.RoleAdmin].ID); role != models.RoleAdmin {
			t.Fatalf("the last admin became %s", role)
		}
	})

	t.Run("RefusesToRemoveTheLastAdmin", func(t *testing.T) {
		r := admin.post(w.path("members/"+strconv.FormatInt(w.member[models.RoleAdmin], 10)+"/remove"), nil)
		if r.status != http.StatusUnprocessableEntity {
			t.Fatalf("%d", r.status)
		}
	})

	t.Run("RefusesAnUnknownRole", func(t *testing.T) {
		if r := changeRole(admin, models.RoleViewer, "owner"); r.status != http.StatusUnprocessableEntity {
			t.Fatalf("%d", r.status)
		}
	})

	t.Run("ARemovalHoldsAtTheNextRequest", func(t *testing.T) {
		viewer := h.signedIn(w.people[models.RoleViewer])
		if r := viewer.get(w.path("dashboard")); r.status != http.StatusOK {
			t.Fatalf("%d", r.status)
		}
		admin.get(w.path("members"))
		if r := admin.post(w.path("members/"+strconv.FormatInt(w.member[models.RoleViewer], 10)+"/remove"), nil); r.status != http.StatusSeeOther {
			t.Fatalf("remove: %d", r.status)
		}
		if r := viewer.get(w.path("dashboard")); r.status != http.StatusNotFound {
			t.Fatalf("removed viewer: %d", r.status)
		}
		if !h.audited(w.tenant.ID, models.AuditMemberRemoved, w.people[models.RoleViewer].Email) {
			t.Fatal("removal not audited")
		}
	})

	t.Run("ShowsTheAuditLogToAdmins", func(t *testing.T) {
		r := admin.get(w.path("audit"))
		for _, want := range []string{"Role changed", "Member removed", "Signed in", w.people[models.RoleViewer].Email} {
			if !strings.Contains(r.body, want) && !strings.Contains(r.body, map[string]string{"Role changed": "修改角色", "Member removed": "移除成员", "Signed in": "登录"}[want]) {
				t.Errorf("audit page lacks %q", want)
			}
		}
	})
}

func TestAuditPaging(t *testing.T) {
	h := newHarness(t, dbtest.MySQL(t))
	w := h.workspace("Paging Co")
	for i := range 120 {
		if err := models.RecordAudit(h.db, w.tenant.ID, models.AuditEvent{Action: "test_event", Target: "row-" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	c := h.signedIn(w.people[models.RoleAdmin])
	seen := map[string]bool{}
	path := w.path("audit")
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		r := c.get(path)
		for _, m := range regexp.MustCompile(`row-\d+`).FindAllString(r.body, -1) {
			seen[m] = true
		}
		path = ""
		if m := regexp.MustCompile(`href="([^"]+)" data-testid="audit-older"`).FindStringSubmatch(r.body); m != nil {
			path = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if len(seen) != 120 {
		t.Fatalf("paged through %d of 120 events", len(seen))
	}
}
