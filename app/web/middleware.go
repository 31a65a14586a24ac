package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"oneid/app/config"
	"oneid/models"
	"oneid/tenants"
	"oneid/views"
)

// requestState is what the middleware learns about a request, for the
// handlers and the log line.
type requestState struct {
	id      string
	session *models.Session
	user    *models.User
	scope   *tenants.Scope
	csrf    string
	// expired is set when the request came with a session that had ended.
	expired bool
}

const stateKey = "oneid.request"

// state is the request's state; the observe middleware always sets it.
func state(c *fiber.Ctx) *requestState {
	if st, ok := c.Locals(stateKey).(*requestState); ok {
		return st
	}
	st := &requestState{}
	c.Locals(stateKey, st)
	return st
}

func requestID(c *fiber.Ctx) string { return state(c).id }

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// observe gives every request an id (X-Request-ID), the security headers,
// panic recovery, the error page and one structured log line. Errors are
// handled here rather than by fiber so the log line has the final status.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	st := state(c)
	st.id = newRequestID()
	c.Set("X-Request-ID", st.id)
	c.Set("Content-Security-Policy", s.csp)
	c.Set("X-Frame-Options", "DENY")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Referrer-Policy", "same-origin")
	c.Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(views.WithAssets(c.UserContext(), s.assets), s.requestBudget(c))
	defer cancel()
	c.SetUserContext(ctx)

	if err := runRecovering(c); err != nil {
		if err := s.handleError(c, err); err != nil {
			c.Status(fiber.StatusInternalServerError)
		}
	}
	s.logRequest(c, st, time.Since(start))
	return nil
}

// requestBudget is how long a request may take: RequestTimeout for reads,
// three times that for writes (an import's upload, an erasure). Streams
// written after the handler returns take context.WithoutCancel.
func (s *Server) requestBudget(c *fiber.Ctx) time.Duration {
	d := s.cfg.RequestTimeout
	if d <= 0 {
		d = config.DefaultRequestTimeout
	}
	if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead {
		d *= 3
	}
	return d
}

// contentSecurityPolicy allows forms to go to this site only, and to WeChat's
// authorisation page: "Bind with WeChat" posts here and is redirected there,
// and browsers apply form-action to the redirect too.
func contentSecurityPolicy(mpBase string) string {
	formAction := "'self'"
	if u, err := url.Parse(mpBase); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		formAction += " " + u.Scheme + "://" + u.Host
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; form-action " + formAction + "; frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
}

func runRecovering(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("web: panic: %v", r)
		}
	}()
	return c.Next()
}

// logRequest writes the request's one line. It carries no query string, no
// secret path segment (invitation tokens), no cookie and no form value.
func (s *Server) logRequest(c *fiber.Ctx, st *requestState, took time.Duration) {
	status := c.Response().StatusCode()
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
	case strings.HasPrefix(c.Path(), "/static/") || c.Path() == "/healthz" || c.Path() == "/readyz":
		level = slog.LevelDebug
	case strings.HasPrefix(c.Path(), callbackPrefix) && status < 400:
		// Thousands a second at peak; refusals and failures stay visible.
		level = slog.LevelDebug
	}
	attrs := []slog.Attr{
		slog.String("request_id", st.id),
		slog.String("method", c.Method()),
		slog.String("path", loggedPath(c)),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(took.Microseconds())/1000),
	}
	if st.scope != nil {
		attrs = append(attrs, slog.Int64("tenant_id", st.scope.TenantID))
	}
	if st.user != nil {
		attrs = append(attrs, slog.Int64("user_id", st.user.ID))
	}
	s.log.LogAttrs(c.UserContext(), level, "request", attrs...)
}

// loggedPath is the request path with secret segments replaced: a route
// parameter named "token" is a capability and must not reach the logs.
func loggedPath(c *fiber.Ctx) string {
	path := c.Path()
	route := c.Route()
	if route == nil {
		return path
	}
	for _, name := range route.Params {
		if name == "token" {
			if v := c.Params(name); v != "" {
				path = strings.Replace(path, v, "[redacted]", 1)
			}
		}
	}
	return path
}

// negotiateLocale picks the page language: the locale cookie, else
// Accept-Language, else zh-CN.
func (s *Server) negotiateLocale(c *fiber.Ctx) error {
	l := views.NegotiateLocale(c.Cookies(localeCookie), c.Get(fiber.HeaderAcceptLanguage))
	c.SetUserContext(views.WithLocale(c.UserContext(), l))
	c.Set(fiber.HeaderContentLanguage, string(l))
	c.Vary(fiber.HeaderAcceptLanguage, fiber.HeaderCookie)
	return c.Next()
}

// guard enforces a route's permission. Public routes pass; others need a
// session; tenant routes resolve the tenant from the slug, read the member's
// role from the database and ask the authorizer. A tenant that does not exist
// and one the person does not belong to get the same 404.
func (s *Server) guard(perm tenants.Permission) fiber.Handler {
	return func(c *fiber.Ctx) error {
		st := state(c)
		switch {
		case perm == tenants.Public:
			return c.Next()
		case perm == tenants.APIKey:
			return s.requireAPIKey(c)
		case st.user == nil:
			return s.toSignIn(c)
		case perm == tenants.SignedIn:
			return c.Next()
		}
		if err := s.enterTenant(c, perm); err != nil {
			return err
		}
		return c.Next()
	}
}

func (s *Server) enterTenant(c *fiber.Ctx, perm tenants.Permission) error {
	st := state(c)
	db := s.dbFor(c)
	// The tenant and the person's role in it, read in one query at every
	// request: a role change holds on the very next one.
	tenant, memberRole, err := models.FindTenantAndRole(db, c.Params("tenant"), st.user.ID)
	if err != nil {
		return err
	}
	role, allowed, err := s.authz.Decide(memberRole, tenant.ID, perm)
	if errors.Is(err, tenants.ErrNotMember) {
		return models.ErrNotFound
	}
	if err != nil {
		return err
	}
	if tenant.Suspended() {
		return errSuspended
	}
	scope := tenants.Scope{TenantID: tenant.ID, Slug: tenant.Slug, Name: tenant.Name, UserID: st.user.ID, Role: role}
	st.scope = &scope
	ctx := tenants.WithScope(c.UserContext(), scope)
	c.SetUserContext(views.WithWorkspace(ctx, s.workspace(scope)))
	if !allowed {
		return errForbidden
	}
	return models.SetSessionTenant(db, st.session, tenant.ID)
}

// workspace is the current tenant as pages show it, with the menu entries the
// role may open.
func (s *Server) workspace(scope tenants.Scope) views.Workspace {
	ws := views.Workspace{Slug: scope.Slug, Name: scope.Name, Role: string(scope.Role)}
	for _, section := range navSections() {
		if perm, ok := s.navPerms[section]; ok && s.authz.Grants(scope.Role, scope.TenantID, perm) {
			ws.Nav = append(ws.Nav, views.NavItem{Key: section, Href: tenantPath(scope.Slug, section)})
		}
	}
	return ws
}

// scope is the tenant of a request that passed the guard of a tenant route.
func scope(c *fiber.Ctx) tenants.Scope {
	s, _ := tenants.FromContext(c.UserContext())
	return s
}

// tenantPath is /t/<slug>/<rest>.
func tenantPath(slug, rest string) string {
	return "/t/" + url.PathEscape(slug) + "/" + rest
}

// toSignIn sends a visitor to the sign-in page, to come back afterwards.
func (s *Server) toSignIn(c *fiber.Ctx) error {
	next := c.OriginalURL()
	if c.Method() != fiber.MethodGet {
		next = ""
	}
	target := "/signin"
	q := url.Values{}
	if next != "" && next != "/" {
		q.Set("next", next)
	}
	if state(c).expired {
		q.Set("expired", "1")
	}
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	return c.Redirect(target, fiber.StatusSeeOther)
}

// localPath accepts a redirect target only when it stays on this site.
func localPath(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return ""
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return ""
	}
	return next
}
