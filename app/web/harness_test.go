package web_test

import (
	"bytes"
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"

	"oneid/app/config"
	"oneid/app/web"
	"oneid/models"
)

// harness is the real HTTP application on a real database, with a fake clock
// and a captured log. Requests go through fiber's in-memory app.Test.
type harness struct {
	t      testing.TB
	db     *gorm.DB
	cfg    config.Config
	clock  *fakeClock
	logs   *syncBuffer
	hasher *models.PasswordHasher
	srv    *web.Server
	app    *fiber.App

	hashOnce sync.Once
	hash     string
}

// password is every fixture person's password.
const password = "correct horse battery"

func newHarness(t testing.TB, db *gorm.DB) *harness {
	t.Helper()
	h := &harness{
		t:      t,
		db:     db,
		cfg:    config.Config{PublicURL: "http://oneid.test", Addr: "127.0.0.1:0"},
		clock:  &fakeClock{now: time.Now().UTC().Truncate(time.Second)},
		logs:   &syncBuffer{},
		hasher: models.NewPasswordHasher(0),
	}
	h.srv, h.app = h.instance(h.cfg)
	return h
}

// instance builds one more OneID instance on the same database, as a second
// server behind a load balancer would be.
func (h *harness) instance(cfg config.Config) (*web.Server, *fiber.App) {
	h.t.Helper()
	deps := web.Deps{
		Config: cfg,
		DB:     h.db,
		Log:    slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Hasher: h.hasher,
		Now:    h.clock.Now,
	}
	srv, err := web.NewServer(deps)
	if err != nil {
		h.t.Fatal(err)
	}
	app, err := srv.App()
	if err != nil {
		h.t.Fatal(err)
	}
	return srv, app
}

// passwordHash is the hash of password, made once per harness.
func (h *harness) passwordHash() string {
	h.hashOnce.Do(func() {
		var err error
		h.hash, err = h.hasher.Hash(context.Background(), password)
		if err != nil {
			h.t.Fatal(err)
		}
	})
	return h.hash
}

// workspace is a tenant with one person in each role.
type workspace struct {
	tenant *models.Tenant
	people map[string]*models.User // by role
	member map[string]int64        // membership id by role
}

// workspace creates a tenant named name with admin@, marketer@ and viewer@
// people (emails prefixed with the slug).
func (h *harness) workspace(name string) *workspace {
	h.t.Helper()
	prefix := strings.ToLower(strings.ReplaceAll(name, " ", "-"))
	tenant, admin, err := models.CreateTenant(h.db, models.NewTenant{
		Name: name, PrincipalName: name + "（深圳）有限公司",
		Admin: models.User{Email: prefix + "-admin@example.com", Name: name + " Admin", PasswordHash: h.passwordHash(), Locale: "en"},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	w := &workspace{tenant: tenant, people: map[string]*models.User{models.RoleAdmin: admin}, member: map[string]int64{}}
	for _, role := range []string{models.RoleMarketer, models.RoleViewer} {
		u := &models.User{Email: prefix + "-" + role + "@example.com", Name: name + " " + role, PasswordHash: h.passwordHash(), Locale: "en"}
		if err := models.CreateUser(h.db, u); err != nil {
			h.t.Fatal(err)
		}
		if _, err := models.AddMember(h.db, tenant.ID, u.ID, role); err != nil {
			h.t.Fatal(err)
		}
		w.people[role] = u
	}
	ms, err := models.ListMembers(h.db, tenant.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, m := range ms {
		w.member[m.Role] = m.MembershipID
	}
	return w
}

// path is a path inside the workspace.
func (w *workspace) path(rest string) string { return "/t/" + w.tenant.Slug + "/" + rest }

// client is one browser: its cookies and the CSRF token of the last page.
type client struct {
	h       *harness
	app     *fiber.App
	cookies map[string]string
	csrf    string
	header  http.Header
}

func (h *harness) visitor() *client {
	return &client{h: h, app: h.app, cookies: map[string]string{}, header: http.Header{}}
}

// signedIn is a browser signed in as the person.
func (h *harness) signedIn(u *models.User) *client {
	h.t.Helper()
	c := h.visitor()
	if r := c.signIn(u.Email, password); r.status != http.StatusSeeOther {
		h.t.Fatalf("sign in as %s: %d\n%s", u.Email, r.status, r.body)
	}
	return c
}

// on makes the client talk to another instance, keeping its cookies.
func (c *client) on(app *fiber.App) *client {
	c.app = app
	return c
}

type response struct {
	status int
	header http.Header
	body   string
}

func (r *response) location() string { return r.header.Get("Location") }

// setCookie is the Set-Cookie line for a cookie, lowercased; "" if none.
func (r *response) setCookie(name string) string {
	for _, line := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(line, name+"=") {
			return strings.ToLower(line)
		}
	}
	return ""
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)"`)

// do sends a request like a browser: cookies, and for a form post the page's
// CSRF token unless the form already has a _csrf value.
func (c *client) do(method, path string, form url.Values) *response {
	c.h.t.Helper()
	var body io.Reader
	if form != nil {
		if method != http.MethodGet && !form.Has("_csrf") {
			form = cloneValues(form)
			form.Set("_csrf", c.csrf)
		}
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range c.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	for name, value := range c.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	res, err := c.app.Test(req, -1)
	if err != nil {
		c.h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	for _, ck := range res.Cookies() {
		if ck.MaxAge < 0 || ck.Value == "" {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	if m := csrfMeta.FindStringSubmatch(string(raw)); m != nil {
		c.csrf = html.UnescapeString(m[1])
	}
	return &response{status: res.StatusCode, header: res.Header, body: string(raw)}
}

func (c *client) get(path string) *response { return c.do(http.MethodGet, path, nil) }

func (c *client) post(path string, form url.Values) *response {
	if form == nil {
		form = url.Values{}
	}
	return c.do(http.MethodPost, path, form)
}

// signIn loads the sign-in page (for its CSRF token) and submits it.
func (c *client) signIn(email, pw string) *response {
	c.get("/signin")
	return c.post("/signin", url.Values{"email": {email}, "password": {pw}})
}

// fresh loads a page so the client holds the CSRF token of its session.
func (c *client) fresh() *client {
	c.get("/tenants")
	return c
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// count returns how many rows a tenant-owned table holds for a tenant.
func (h *harness) count(table string, tenantID int64) int64 {
	h.t.Helper()
	var n int64
	if err := h.db.Table(table).Scopes(models.ForTenant(tenantID)).Count(&n).Error; err != nil {
		h.t.Fatal(err)
	}
	return n
}

// audited reports whether the tenant's audit log has an action on target.
func (h *harness) audited(tenantID int64, action, target string) bool {
	h.t.Helper()
	page, err := models.ListAudit(h.db, tenantID, 0, 500)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range page.Events {
		if e.Action == action && (target == "" || e.Target == target) {
			return true
		}
	}
	return false
}
