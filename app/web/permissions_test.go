package web_test

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"oneid/migrations/dbtest"
	"oneid/models"
)

// permissionMatrix is who may use each route, written out by hand from
// PRODUCT.md "Who uses it": a viewer reads profiles and the dashboard, a
// marketer also exports, an admin does everything. "public" needs nothing,
// "signed-in" a session. Adding a route means adding its line here.
var permissionMatrix = map[string]string{
	"GET /healthz":                                 "public",
	"GET /readyz":                                  "public",
	"GET /static/*":                                "public",
	"GET /":                                        "public",
	"GET /signin":                                  "public",
	"POST /signin":                                 "public",
	"POST /signout":                                "signed-in",
	"GET /signup":                                  "public",
	"POST /signup":                                 "public",
	"POST /locale":                                 "public",
	"GET /invitations/:token":                      "public",
	"POST /invitations/:token":                     "public",
	"POST /wechat/component":                       "public",
	"GET /wechat/callback/:key":                    "public",
	"POST /wechat/callback/:key":                   "public",
	"GET /oauth/:key/start":                        "public",
	"GET /oauth/:key/callback":                     "public",
	"POST /api/v1/miniprogram/login":               "api-key",
	"POST /api/v1/paid-unionid":                    "api-key",
	"GET /api/v1/customers":                        "api-key",
	"POST /api/v1/oauth/ticket":                    "api-key",
	"GET /t/:tenant/apps/:id/oauth":                "admin marketer viewer",
	"GET /t/:tenant/imports":                       "admin",
	"POST /t/:tenant/imports":                      "admin",
	"GET /t/:tenant/imports/:id":                   "admin",
	"POST /t/:tenant/apps/:id/oauth":               "admin",
	"GET /tenants":                                 "signed-in",
	"POST /tenants/switch":                         "signed-in",
	"GET /t/:tenant":                               "admin marketer viewer",
	"GET /t/:tenant/dashboard":                     "admin marketer viewer",
	"GET /t/:tenant/customers":                     "admin marketer viewer",
	"GET /t/:tenant/customers/:id":                 "admin marketer viewer",
	"GET /t/:tenant/customers/:id/delete":          "admin",
	"POST /t/:tenant/customers/:id/delete":         "admin",
	"GET /t/:tenant/exports":                       "admin marketer",
	"GET /t/:tenant/exports/:id/download":          "admin marketer",
	"POST /t/:tenant/exports/:id/cancel":           "admin marketer",
	"GET /t/:tenant/customers/export":              "admin marketer",
	"POST /t/:tenant/customers/export":             "admin marketer",
	"GET /t/:tenant/apps":                          "admin marketer viewer",
	"GET /t/:tenant/apps/new":                      "admin",
	"POST /t/:tenant/apps/authorize":               "admin",
	"GET /t/:tenant/apps/authorized":               "admin",
	"POST /t/:tenant/apps/self-managed":            "admin",
	"POST /t/:tenant/open-accounts":                "admin",
	"GET /t/:tenant/apps/:id":                      "admin marketer viewer",
	"POST /t/:tenant/apps/:id/open/create":         "admin",
	"POST /t/:tenant/apps/:id/open/bind":           "admin",
	"POST /t/:tenant/apps/:id/secret":              "admin",
	"GET /t/:tenant/apps/:id/unbind":               "admin",
	"POST /t/:tenant/apps/:id/unbind":              "admin",
	"GET /t/:tenant/apps/:id/sync":                 "admin marketer viewer",
	"POST /t/:tenant/apps/:id/sync":                "admin",
	"POST /t/:tenant/apps/:id/sync/cancel":         "admin",
	"POST /t/:tenant/apps/:id/sync/schedule":       "admin",
	"GET /t/:tenant/settings":                      "admin",
	"POST /t/:tenant/settings/api-keys":            "admin",
	"POST /t/:tenant/settings/api-keys/:id/revoke": "admin",
	"GET /t/:tenant/members":                       "admin",
	"GET /t/:tenant/audit":                         "admin",
	"POST /t/:tenant/members/:id/role":             "admin",
	"POST /t/:tenant/members/:id/remove":           "admin",
	"POST /t/:tenant/invitations":                  "admin",
	"POST /t/:tenant/invitations/:id/revoke":       "admin",
}

// TestPermissionMatrix checks the matrix against the route table and against
// what the application answers over HTTP, role by role.
func TestPermissionMatrix(t *testing.T) {
	h := newHarness(t, dbtest.MySQL(t))
	w := h.workspace("Matrix Co")
	callers := map[string]*client{}
	for _, role := range models.Roles() {
		callers[role] = h.signedIn(w.people[role]).fresh()
	}
	visitor := h.visitor()
	visitor.get("/signin")

	seen := map[string]bool{}
	for _, route := range h.srv.Routes() {
		key := route.Key()
		seen[key] = true
		want, ok := permissionMatrix[key]
		if !ok {
			t.Errorf("route %q is missing from permissionMatrix", key)
			continue
		}
		switch want {
		case "public", "signed-in", "api-key":
			if string(route.Perm) != want {
				t.Errorf("%s: the table declares %s, the matrix says %s", key, route.Perm, want)
			}
			if want == "api-key" {
				// A session is not an API key: members and visitors alike get 401.
				for _, c := range []*client{visitor, callers[models.RoleAdmin]} {
					if r := c.do(route.Method, harmless(route.Path, w), url.Values{}); r.status != http.StatusUnauthorized {
						t.Errorf("%s without an API key: %d, want 401", key, r.status)
					}
				}
			}
			if want == "signed-in" {
				if r := visitor.do(route.Method, harmless(route.Path, w), url.Values{}); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/signin") {
					t.Errorf("%s: a visitor gets %d → %q, want the sign-in page", key, r.status, r.location())
				}
			}
			continue
		}
		if !route.Perm.InTenant() {
			t.Errorf("%s: the matrix gives roles, the table declares %s", key, route.Perm)
			continue
		}
		allowed := strings.Fields(want)
		for _, role := range models.Roles() {
			r := callers[role].do(route.Method, harmless(route.Path, w), url.Values{})
			got := r.status != http.StatusForbidden
			if got != contains(allowed, role) {
				t.Errorf("%s as %s: %d (allowed=%v), the matrix says allowed=%v", key, role, r.status, got, !got)
			}
			if r.status >= 500 {
				t.Errorf("%s as %s: %d", key, role, r.status)
			}
		}
		if r := visitor.do(route.Method, harmless(route.Path, w), url.Values{}); r.status != http.StatusSeeOther {
			t.Errorf("%s: a visitor gets %d", key, r.status)
		}
	}
	var stale []string
	for key := range permissionMatrix {
		if !seen[key] {
			stale = append(stale, key)
		}
	}
	sort.Strings(stale)
	for _, key := range stale {
		t.Errorf("permissionMatrix has %q, which is not a route", key)
	}
}

// harmless fills a route's parameters so the request changes nothing: the
// workspace's slug, ids that do not exist, an empty form.
func harmless(path string, w *workspace) string {
	r := strings.NewReplacer(":tenant", w.tenant.Slug, ":id", "999999999", ":token", "no-such-token", ":key", "no-such-key", "*", "css/app.css")
	return r.Replace(path)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The navigation shows a role only what it may open.
func TestNavigationFollowsPermissions(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	w := h.workspace("Nav Co")
	want := map[string][]string{
		models.RoleAdmin:    {"dashboard", "customers", "apps", "imports", "exports", "members", "audit", "settings"},
		models.RoleMarketer: {"dashboard", "customers", "apps", "exports"},
		models.RoleViewer:   {"dashboard", "customers", "apps"},
	}
	for role, sections := range want {
		body := h.signedIn(w.people[role]).get(w.path("dashboard")).body
		for _, s := range []string{"dashboard", "customers", "apps", "imports", "exports", "members", "audit", "settings"} {
			if shown := strings.Contains(body, `data-testid="nav-`+s+`"`); shown != contains(sections, s) {
				t.Errorf("%s: nav-%s shown=%v", role, s, shown)
			}
		}
	}
}
