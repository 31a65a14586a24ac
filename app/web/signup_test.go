package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func TestSignUp(t *testing.T) {
	h := newHarness(t, dbtest.MySQL(t))
	tenants := func() int {
		list, err := models.ListTenants(h.db)
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}

	t.Run("CreatesTheWorkspaceAndItsAdminAndSignsIn", func(t *testing.T) {
		c := h.visitor()
		c.get("/signup")
		r := c.post("/signup", url.Values{
			"company": {"Lucky Tea"}, "principal": {"幸运茶饮（上海）有限公司"},
			"name": {"Li Lei"}, "email": {"LiLei@Example.com"}, "password": {"a good long password"},
		})
		if r.status != http.StatusSeeOther || r.location() != "/t/lucky-tea/dashboard" {
			t.Fatalf("%d → %q\n%s", r.status, r.location(), r.body)
		}
		if r := c.get("/t/lucky-tea/members"); r.status != http.StatusOK || !strings.Contains(r.body, "lilei@example.com") {
			t.Fatalf("members of the new workspace: %d", r.status)
		}
		tenant, _ := models.FindTenantBySlug(h.db, "lucky-tea")
		if tenant.PrincipalName != "幸运茶饮（上海）有限公司" || !h.audited(tenant.ID, models.AuditTenantCreated, "Lucky Tea") {
			t.Fatalf("tenant %+v", tenant)
		}
	})

	t.Run("ReRendersBadInputIn422WithMessagesInTheUsersLanguage", func(t *testing.T) {
		for lang, want := range map[string][]string{
			"en":    {"This field is required.", "Enter an email address", "at least 10 characters"},
			"zh-CN": {"此项为必填项。", "请输入有效的邮箱地址", "至少需要 10 个字符"},
		} {
			before := tenants()
			c := h.visitor()
			c.header.Set("Accept-Language", lang)
			c.get("/signup")
			r := c.post("/signup", url.Values{"company": {"  "}, "principal": {"某某"}, "email": {"not-an-email"}, "password": {"short"}})
			if r.status != http.StatusUnprocessableEntity {
				t.Fatalf("%s: %d", lang, r.status)
			}
			for _, w := range want {
				if !strings.Contains(r.body, w) {
					t.Errorf("%s: the page lacks %q", lang, w)
				}
			}
			if !strings.Contains(r.body, `value="某某"`) {
				t.Errorf("%s: the form lost what was typed", lang)
			}
			if tenants() != before {
				t.Fatalf("%s: bad input created a tenant", lang)
			}
		}
	})

	t.Run("RefusesATakenEmailWith422", func(t *testing.T) {
		before := tenants()
		c := h.visitor()
		c.get("/signup")
		r := c.post("/signup", url.Values{"company": {"Again"}, "principal": {"x"}, "email": {"lilei@example.com"}, "password": {"another long password"}})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-email"`) || tenants() != before {
			t.Fatalf("%d, %d tenants (was %d)", r.status, tenants(), before)
		}
	})

	t.Run("LetsASignedInPersonCreateAnotherWorkspace", func(t *testing.T) {
		lilei, _ := models.FindUserByEmail(h.db, "lilei@example.com")
		c := h.visitor()
		if r := c.signIn(lilei.Email, "a good long password"); r.status != http.StatusSeeOther {
			t.Fatalf("sign in: %d", r.status)
		}
		c.get("/signup")
		r := c.post("/signup", url.Values{"company": {"Lucky Tea Beijing"}, "principal": {"幸运茶饮（北京）有限公司"}})
		if r.status != http.StatusSeeOther || r.location() != "/t/lucky-tea-beijing/dashboard" {
			t.Fatalf("%d → %q\n%s", r.status, r.location(), r.body)
		}
		ws, _ := models.WorkspacesOf(h.db, lilei.ID)
		if len(ws) != 2 {
			t.Fatalf("workspaces: %+v", ws)
		}
		if r := c.get("/tenants"); !strings.Contains(r.body, "Lucky Tea Beijing") || !strings.Contains(r.body, `data-testid="switch-lucky-tea"`) {
			t.Fatal("the switcher does not list both workspaces")
		}
		if r := c.post("/tenants/switch", url.Values{"tenant": {"lucky-tea"}}); r.location() != "/t/lucky-tea/dashboard" {
			t.Fatalf("switch: %d → %q", r.status, r.location())
		}
		if r := c.get("/"); r.location() != "/t/lucky-tea/dashboard" {
			t.Fatalf("home after switching: %q", r.location())
		}
	})
}
