package web_test

// Tenant isolation over every route.
//
// Two tenants, A and B, each with data and one person per role. Every route in
// the route table is requested by B's admin, marketer and viewer (and by a
// visitor) aimed at A: A's slug in the path, A's ids in the path, query or form.
// Each answer must be a 404, exactly as for something that does not exist (or
// a 403 when B's role lacks the route's permission), the body must not contain
// anything of A's, and the database must not change.
//
// ADDING A ROUTE? TestIsolationCoversEveryRoute fails until isolationCases has
// an entry for it, keyed "METHOD path" as in routes.go:
//
//  1. If the route works on a new kind of tenant-owned object, create one for
//     each tenant in seedIsolation and record its id: t.ids["app"] = ...
//  2. Add the entry. Most tenant routes need one line:
//     "GET /t/:tenant/apps/:id": inAAndWithAIDs("apps/{app}"),
//     where {name} is replaced by the object's id and the request is made both
//     in A's workspace and in B's workspace with A's id. A POST with a form:
//     "POST /t/:tenant/apps/:id/unbind": inAAndWithAIDs("apps/{app}/unbind", "confirm", "yes"),
//     A list page whose query or form may carry ids:
//     "GET /t/:tenant/customers": listWithAIDs("customers", "after", "{customer}"),
//     Anything else: a func(a, b *isoTenant) []probe built from inA, inB,
//     ownPage and publicProbe below.
//  3. If the route shows new kinds of tenant data, add a marker string of A's
//     (seedIsolation: t.markers) so a leak into B's pages is caught.

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
	"oneid/tenants"
)

// probe is one request of the attack.
type probe struct {
	path string
	form url.Values // nil: no body; a POST always gets the caller's CSRF token
	want expectation
}

type expectation int

const (
	// wantNotFound: a 404, whoever asks (A's workspace).
	wantNotFound expectation = iota + 1
	// wantNotFoundUnlessForbidden: a 404 when the caller's role may use the
	// route in B, else 403 (B's workspace, A's ids).
	wantNotFoundUnlessForbidden
	// wantOwn: B's own page (2xx or 3xx), or 403 when the role lacks the
	// permission; it must show nothing of A.
	wantOwn
	// wantUnauthorized: a 401, whoever asks: an API route without its API
	// key (a session is not one). api_test.go aims B's key at A's ids.
	wantUnauthorized
	// wantRefused: a 4xx that is not a page of A's (a push or OAuth return
	// that does not verify), whoever asks.
	wantRefused
)

// isoTenant is what a case builder knows about a tenant.
type isoTenant struct {
	slug    string
	ids     map[string]string
	markers []string
}

// path is a path in the tenant's workspace, with {name} replaced by ids.
func (t *isoTenant) path(rest string) string { return "/t/" + t.slug + "/" + t.fill(rest) }

func (t *isoTenant) fill(s string) string {
	for name, id := range t.ids {
		s = strings.ReplaceAll(s, "{"+name+"}", id)
	}
	return s
}

func (t *isoTenant) form(pairs []string) url.Values {
	if len(pairs) == 0 {
		return nil
	}
	f := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		f.Add(pairs[i], t.fill(pairs[i+1]))
	}
	return f
}

type isolationCase func(a, b *isoTenant) []probe

// inA is the route in A's workspace with A's ids.
func inA(rest string, form ...string) isolationCase {
	return func(a, b *isoTenant) []probe {
		return []probe{{path: a.path(rest), form: a.form(form), want: wantNotFound}}
	}
}

// inAAndWithAIDs is the route in A's workspace, then in B's with A's ids.
func inAAndWithAIDs(rest string, form ...string) isolationCase {
	return func(a, b *isoTenant) []probe {
		withAIDs := "/t/" + b.slug + "/" + a.fill(rest)
		return []probe{
			{path: a.path(rest), form: a.form(form), want: wantNotFound},
			{path: withAIDs, form: a.form(form), want: wantNotFoundUnlessForbidden},
		}
	}
}

// listWithAIDs is a list in A's workspace, then B's list given A's ids in the
// query: B's own page, without A's data.
func listWithAIDs(rest string, query ...string) isolationCase {
	return func(a, b *isoTenant) []probe {
		q := a.form(query)
		own := "/t/" + b.slug + "/" + rest
		if q != nil {
			own += "?" + q.Encode()
		}
		return []probe{{path: a.path(rest), want: wantNotFound}, {path: own, want: wantOwn}}
	}
}

// ownPage is a page outside any tenant, requested as is.
func ownPage(path string) isolationCase {
	return func(a, b *isoTenant) []probe { return []probe{{path: path, want: wantOwn}} }
}

// untouched is a route that takes no tenant or object id at all and acts only
// on the caller (sign-in with credentials, sign-out, sign-up of a new
// workspace): there is nothing of A's to aim it at. The reason is required.
func untouched(reason string) isolationCase {
	if reason == "" {
		panic("untouched needs a reason")
	}
	return func(a, b *isoTenant) []probe { return nil }
}

var isolationCases = map[string]isolationCase{
	"GET /healthz":  ownPage("/healthz"),
	"GET /readyz":   ownPage("/readyz"),
	"GET /static/*": ownPage("/static/css/app.css"),
	"GET /":         ownPage("/"),
	"GET /signin":   ownPage("/signin"),
	"POST /signin":  untouched("credentials only; throttling and audit of a typed email are the same for anyone"),
	"POST /signout": untouched("ends the caller's own session"),
	"GET /signup":   ownPage("/signup"),
	"POST /signup":  untouched("creates a new workspace; takes no id"),
	"POST /locale": func(a, b *isoTenant) []probe {
		return []probe{{path: "/locale", form: url.Values{"lang": {"en"}}, want: wantOwn}}
	},
	"GET /tenants": ownPage("/tenants"),
	"POST /tenants/switch": func(a, b *isoTenant) []probe {
		return []probe{{path: "/tenants/switch", form: url.Values{"tenant": {a.slug}}, want: wantNotFound}}
	},
	// An invitation link is a capability: whoever holds a live one may see it.
	// Used and revoked links of A's must show nothing and change nothing.
	"GET /invitations/:token": func(a, b *isoTenant) []probe {
		return []probe{
			{path: "/invitations/" + a.ids["used-token"], want: wantNotFound},
			{path: "/invitations/" + a.ids["revoked-token"], want: wantNotFound},
		}
	},
	"POST /invitations/:token": func(a, b *isoTenant) []probe {
		return []probe{
			{path: "/invitations/" + a.ids["used-token"], form: url.Values{"password": {password}}, want: wantNotFound},
			{path: "/invitations/" + a.ids["revoked-token"], form: url.Values{"password": {password}, "name": {"x"}}, want: wantNotFound},
		}
	},

	"GET /t/:tenant":           inA(""),
	"GET /t/:tenant/dashboard": inA("dashboard"),
	"GET /t/:tenant/customers": customersList,
	"GET /t/:tenant/apps":      inA("apps"),

	// Apps (apps_test.go seeds them): A's app, open-platform account and a
	// pending return from WeChat's authorisation page, aimed at from B.
	"GET /t/:tenant/apps/new":        inA("apps/new"),
	"POST /t/:tenant/apps/authorize": inA("apps/authorize"),
	"GET /t/:tenant/apps/authorized": inAAndWithAIDs("apps/authorized?state={state}&auth_code=planted"),
	"POST /t/:tenant/apps/self-managed": inAAndWithAIDs("apps/self-managed", "appid", "wx0123456789abcdef", "secret", "0123456789abcdef0123456789abcdef",
		"kind", "miniprogram", "name", "planted", "principal", "planted", "verified", "yes", "open_account_id", "{open}"),
	"POST /t/:tenant/open-accounts":        inA("open-accounts", "open_appid", "wx00000000000000ff", "open_principal", "planted", "open_verified", "yes"),
	"GET /t/:tenant/apps/:id":              inAAndWithAIDs("apps/{app}"),
	"POST /t/:tenant/apps/:id/open/create": inAAndWithAIDs("apps/{app:authorized}/open/create"),
	"POST /t/:tenant/apps/:id/open/bind": func(a, b *isoTenant) []probe {
		return append(inAAndWithAIDs("apps/{app:authorized}/open/bind", "open_account_id", "{open}")(a, b),
			// B's own app into A's open-platform account.
			probe{path: b.path("apps/{app:authorized}/open/bind"), form: a.form([]string{"open_account_id", "{open}"}), want: wantNotFoundUnlessForbidden})
	},
	"POST /t/:tenant/apps/:id/secret": inAAndWithAIDs("apps/{app}/secret", "secret", "0123456789abcdef0123456789abcdef"),
	"GET /t/:tenant/apps/:id/unbind":  inAAndWithAIDs("apps/{app}/unbind"),
	"POST /t/:tenant/apps/:id/unbind": inAAndWithAIDs("apps/{app}/unbind", "confirm", "yes"),

	// Follower syncs (sync_test.go gives A's app a live sync to aim at).
	"GET /t/:tenant/apps/:id/sync":           inAAndWithAIDs("apps/{app}/sync?back=app"),
	"POST /t/:tenant/apps/:id/sync":          inAAndWithAIDs("apps/{app}/sync", "back", "app"),
	"POST /t/:tenant/apps/:id/sync/cancel":   inAAndWithAIDs("apps/{app}/sync/cancel", "back", "apps"),
	"POST /t/:tenant/apps/:id/sync/schedule": inAAndWithAIDs("apps/{app}/sync/schedule", "enabled", "on", "every", "24"),

	"POST /wechat/component": untouched("WeChat's push, authenticated by its signature; it names no tenant, and one that does not verify changes nothing (apps_test.go)"),
	// Official accounts' pushes and web OAuth: public, named by the app's
	// callback key, authenticated by WeChat's signature and by states bound
	// to the app (callback_test.go, oauth_test.go). Aimed at A's app with
	// nothing valid, they must refuse and change nothing.
	"GET /wechat/callback/:key": func(a, b *isoTenant) []probe {
		return []probe{{path: "/wechat/callback/" + a.ids["callback-key"] + "?signature=0000000000000000000000000000000000000000&timestamp=1&nonce=2&echostr=planted", want: wantRefused}}
	},
	"POST /wechat/callback/:key": func(a, b *isoTenant) []probe {
		return []probe{{path: "/wechat/callback/" + a.ids["callback-key"] + "?signature=0000000000000000000000000000000000000000&timestamp=1&nonce=2", form: url.Values{"planted": {"1"}}, want: wantRefused}}
	},
	"GET /oauth/:key/callback": func(a, b *isoTenant) []probe {
		return []probe{
			{path: "/oauth/" + a.ids["callback-key"] + "/callback?code=planted&state=" + b.ids["oauth-state"], want: wantRefused},
			{path: "/oauth/" + b.ids["callback-key"] + "/callback?code=planted&state=" + a.ids["oauth-state"], want: wantRefused},
		}
	},
	"GET /oauth/:key/start": untouched("a public link of A's pages that starts a visitor's trip (a state row of A's app); it shows nothing of A and takes no id; open redirects are oauth_test.go"),
	"POST /api/v1/miniprogram/login": func(a, b *isoTenant) []probe {
		return []probe{{path: "/api/v1/miniprogram/login", form: url.Values{"appid": {a.ids["appid"]}, "code": {"planted"}}, want: wantUnauthorized}}
	},
	"POST /api/v1/paid-unionid": func(a, b *isoTenant) []probe {
		return []probe{{path: "/api/v1/paid-unionid", form: url.Values{"appid": {a.ids["appid"]}, "openid": {"planted"}}, want: wantUnauthorized}}
	},
	"POST /api/v1/oauth/ticket": func(a, b *isoTenant) []probe {
		return []probe{{path: "/api/v1/oauth/ticket", form: url.Values{"ticket": {"planted"}}, want: wantUnauthorized}}
	},
	"GET /api/v1/customers": func(a, b *isoTenant) []probe {
		return []probe{{path: "/api/v1/customers?appid=" + a.ids["appid"] + "&openid=planted", want: wantUnauthorized}}
	},
	// CSV imports: A's list, an upload into A, and A's import job.
	"GET /t/:tenant/imports":         listWithAIDs("imports"),
	"POST /t/:tenant/imports":        inA("imports", "file", "planted"),
	"GET /t/:tenant/imports/:id":     inAAndWithAIDs("imports/{import}"),
	"GET /t/:tenant/apps/:id/oauth":  inAAndWithAIDs("apps/{app}/oauth"),
	"POST /t/:tenant/apps/:id/oauth": inAAndWithAIDs("apps/{app}/oauth", "hosts", "planted.example.com"),

	"GET /t/:tenant/exports":  listWithAIDs("exports", "before", "{export:live}"),
	"GET /t/:tenant/settings": inA("settings"),
	// API keys: a key made in A, and A's key revoked from B's workspace.
	"POST /t/:tenant/settings/api-keys":            inA("settings/api-keys", "name", "planted"),
	"POST /t/:tenant/settings/api-keys/:id/revoke": inAAndWithAIDs("settings/api-keys/{apikey}/revoke"),
	"GET /t/:tenant/members":                       inA("members"),
	"GET /t/:tenant/audit":                         listWithAIDs("audit", "before", "{audit}"),

	"POST /t/:tenant/members/:id/role":       inAAndWithAIDs("members/{member:viewer}/role", "role", "admin"),
	"POST /t/:tenant/members/:id/remove":     inAAndWithAIDs("members/{member:admin}/remove"),
	"POST /t/:tenant/invitations":            inA("invitations", "email", "planted@example.com", "role", "admin"),
	"POST /t/:tenant/invitations/:id/revoke": inAAndWithAIDs("invitations/{invitation}/revoke"),

	// Exports: A's workspace is 404; B's confirmation searching A's OpenID is
	// B's own (an export itself writes B's audit log, so it is probed in A's
	// workspace only); A's file and A's running export from B are 404.
	"GET /t/:tenant/customers/export": func(a, b *isoTenant) []probe {
		q := url.Values{"q": {a.ids["customer-openid"]}, "shape": {"identities"}}
		return []probe{{path: a.path("customers/export"), want: wantNotFound},
			{path: "/t/" + b.slug + "/customers/export?" + q.Encode(), want: wantOwn}}
	},
	"POST /t/:tenant/customers/export":     inA("customers/export", "shape", "profiles", "q", "{customer-openid}", "bom", "1"),
	"GET /t/:tenant/exports/:id/download":  inAAndWithAIDs("exports/{export}/download"),
	"POST /t/:tenant/exports/:id/cancel":   inAAndWithAIDs("exports/{export:live}/cancel"),
	"GET /t/:tenant/customers/:id":         inAAndWithAIDs("customers/{customer}"),
	"GET /t/:tenant/customers/:id/delete":  inAAndWithAIDs("customers/{customer}/delete"),
	"POST /t/:tenant/customers/:id/delete": inAAndWithAIDs("customers/{customer}/delete", "confirm", "yes"),
}

// seedIsolation gives a workspace the objects the cases aim at.
func seedIsolation(t *testing.T, h *harness, w *workspace) *isoTenant {
	t.Helper()
	now := h.clock.Now()
	admin := w.people[models.RoleAdmin]
	it := &isoTenant{slug: w.tenant.Slug, ids: map[string]string{}, markers: []string{w.tenant.Name, w.tenant.PrincipalName}}
	for role, u := range w.people {
		it.markers = append(it.markers, u.Email)
		it.ids["member:"+role] = strconv.FormatInt(w.member[role], 10)
	}
	pendingEmail := w.tenant.Slug + "-pending@example.com"
	_, pending, err := models.CreateInvitation(h.db, w.tenant.ID, pendingEmail, models.RoleViewer, admin.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	it.ids["invitation"] = strconv.FormatInt(pending.ID, 10)
	it.markers = append(it.markers, pendingEmail)

	used, inv, err := models.CreateInvitation(h.db, w.tenant.ID, w.tenant.Slug+"-used@example.com", models.RoleViewer, admin.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.AcceptInvitationAsNewUser(h.db, inv, &models.User{Name: "Used", PasswordHash: h.passwordHash(), Locale: "en"}, now); err != nil {
		t.Fatal(err)
	}
	it.ids["used-token"] = used
	revoked, inv, err := models.CreateInvitation(h.db, w.tenant.ID, w.tenant.Slug+"-revoked@example.com", models.RoleViewer, admin.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.RevokeInvitation(h.db, w.tenant.ID, inv.ID, now); err != nil {
		t.Fatal(err)
	}
	it.ids["revoked-token"] = revoked

	keyName := w.tenant.Slug + "-key-name"
	if _, key, err := models.CreateAPIKey(h.db, w.tenant.ID, keyName, now); err != nil {
		t.Fatal(err)
	} else {
		it.ids["apikey"] = strconv.FormatInt(key.ID, 10)
	}
	it.markers = append(it.markers, keyName)

	secret := w.tenant.Slug + "-audit-secret"
	if err := models.RecordAudit(h.db, w.tenant.ID, models.AuditEvent{Action: "test_event", Target: secret}); err != nil {
		t.Fatal(err)
	}
	page, err := models.ListAudit(h.db, w.tenant.ID, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	it.ids["audit"] = strconv.FormatInt(page.Events[0].ID+1, 10)
	it.markers = append(it.markers, secret)
	seedIsolationApps(t, h, w, it)
	seedIsolationSync(t, h, w, it)
	seedIsolationCustomers(t, h, w, it)
	seedIsolationExports(t, h, w, it)
	seedIsolationIngest(t, h, w, it)
	return it
}

func TestIsolationCoversEveryRoute(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	routes := map[string]bool{}
	for _, r := range h.srv.Routes() {
		routes[r.Key()] = true
		if _, ok := isolationCases[r.Key()]; !ok {
			t.Errorf("route %q has no entry in isolationCases (isolation_test.go): add one", r.Key())
		}
	}
	for key := range isolationCases {
		if !routes[key] {
			t.Errorf("isolationCases has %q, which is not a route any more", key)
		}
	}
}

func TestIsolation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) { testIsolation(t, newHarness(t, db)) })
}

func testIsolation(t *testing.T, h *harness) {
	wa, wb := h.workspace("Alpha Secret Co"), h.workspace("Bravo Co")
	a, b := seedIsolation(t, h, wa), seedIsolation(t, h, wb)
	sqlDB, err := h.db.DB()
	if err != nil {
		t.Fatal(err)
	}

	authz, err := tenants.NewAuthorizer(h.db)
	if err != nil {
		t.Fatal(err)
	}
	callers := map[string]*client{"visitor": h.visitor()}
	for _, role := range models.Roles() {
		callers[role] = h.signedIn(wb.people[role]).fresh()
	}
	callers["visitor"].get("/signin")

	requests := 0
	for _, route := range h.srv.Routes() {
		build, ok := isolationCases[route.Key()]
		if !ok {
			continue // TestIsolationCoversEveryRoute reports it
		}
		for _, p := range build(a, b) {
			for _, name := range []string{"visitor", models.RoleAdmin, models.RoleMarketer, models.RoleViewer} {
				c := callers[name]
				before := snapshot(t, sqlDB)
				var r *response
				if route.Method == http.MethodGet {
					r = c.get(p.path)
				} else {
					form := p.form
					if form == nil {
						form = url.Values{}
					}
					r = c.do(route.Method, p.path, form)
				}
				requests++
				label := fmt.Sprintf("%s as B's %s: %s %s", route.Key(), name, route.Method, p.path)
				checkIsolated(t, label, route.Perm, name, p.want, r, authz.Grants(tenants.Role(name), wb.tenant.ID, route.Perm))
				for _, m := range a.markers {
					if strings.Contains(r.body, m) || strings.Contains(r.location(), m) {
						t.Errorf("%s: the answer shows A's %q", label, m)
					}
				}
				if after := snapshot(t, sqlDB); after != before {
					t.Errorf("%s changed the database:\n%s", label, diffLines(before, after))
				}
			}
		}
	}
	if routes := len(h.srv.Routes()); requests < 3*routes {
		t.Fatalf("only %d requests for %d routes: the probes are not running", requests, routes)
	}
	t.Logf("%d requests over %d routes", requests, len(h.srv.Routes()))
}

// checkIsolated compares a status with what the probe expects from a caller.
func checkIsolated(t *testing.T, label string, perm tenants.Permission, caller string, want expectation, r *response, granted bool) {
	t.Helper()
	if want == wantUnauthorized || perm == tenants.APIKey {
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401 without an API key", label, r.status)
		}
		return
	}
	if caller == "visitor" && perm != tenants.Public {
		if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/signin") {
			t.Errorf("%s: %d → %q, want the sign-in page", label, r.status, r.location())
		}
		return
	}
	permitted := !perm.InTenant() || granted
	switch want {
	case wantRefused:
		if r.status < 400 || r.status >= 500 {
			t.Errorf("%s: %d, want a refusal (4xx)", label, r.status)
		}
	case wantNotFound:
		if r.status != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", label, r.status)
		}
	case wantNotFoundUnlessForbidden:
		if w := map[bool]int{true: http.StatusNotFound, false: http.StatusForbidden}[permitted]; r.status != w {
			t.Errorf("%s: %d, want %d", label, r.status, w)
		}
	case wantOwn:
		ok := r.status >= 200 && r.status < 400
		if !permitted {
			ok = r.status == http.StatusForbidden
		}
		if !ok {
			t.Errorf("%s: %d, want B's own page (permitted=%v)", label, r.status, permitted)
		}
	default:
		t.Errorf("%s: the probe says nothing about what to expect", label)
	}
}

// snapshot is every row of every table, except when sessions were last seen.
func snapshot(t *testing.T, db *sql.DB) string {
	t.Helper()
	tables := []string{"tenants", "users", "sessions", "login_throttles"}
	for name := range models.TenantTables {
		tables = append(tables, name)
	}
	sort.Strings(tables)
	var out strings.Builder
	for _, table := range tables {
		rows, err := db.Query("SELECT * FROM " + table)
		if err != nil {
			t.Fatalf("snapshot %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var line strings.Builder
			for i, v := range vals {
				if table == "sessions" && cols[i] == "last_seen_at" {
					continue
				}
				switch x := v.(type) {
				case []byte:
					fmt.Fprintf(&line, "%s=%s ", cols[i], x)
				case time.Time:
					fmt.Fprintf(&line, "%s=%s ", cols[i], x.UTC().Format(time.RFC3339Nano))
				default:
					fmt.Fprintf(&line, "%s=%v ", cols[i], x)
				}
			}
			lines = append(lines, table+": "+line.String())
		}
		rows.Close()
		sort.Strings(lines)
		out.WriteString(strings.Join(lines, "\n"))
		out.WriteString("\n")
	}
	return out.String()
}

func diffLines(before, after string) string {
	was := map[string]bool{}
	for _, l := range strings.Split(before, "\n") {
		was[l] = true
	}
	now := map[string]bool{}
	var out []string
	for _, l := range strings.Split(after, "\n") {
		now[l] = true
		if !was[l] {
			out = append(out, "+ "+l)
		}
	}
	for _, l := range strings.Split(before, "\n") {
		if !now[l] {
			out = append(out, "- "+l)
		}
	}
	return strings.Join(out, "\n")
}
