package web

import (
	"fmt"

	"github.com/gofiber/fiber/v2"

	"oneid/tenants"
)

// route is one line of the surface: method, path, the permission it needs and
// the handler. The table below is the whole portal; the isolation and permission
// tests walk it, so a route cannot be added without saying who may use it.
type route struct {
	method  string
	path    string
	perm    tenants.Permission
	handler fiber.Handler
}

// Routes lists the surface for tests: method, path and permission of each route.
func (s *Server) Routes() []RouteInfo {
	var out []RouteInfo
	for _, r := range s.routes() {
		out = append(out, RouteInfo{Method: r.method, Path: r.path, Perm: r.perm})
	}
	return out
}

// RouteInfo is a route as tests see it.
type RouteInfo struct {
	Method string
	Path   string
	Perm   tenants.Permission
}

func (s *Server) routes() []route {
	return []route{
		{"GET", "/healthz", tenants.Public, s.healthz},
		{"GET", "/readyz", tenants.Public, s.readyz},
	}
}

func (s *Server) register(app *fiber.App) error {
	for _, r := range s.routes() {
		if r.perm == "" {
			return fmt.Errorf("web: route %s %s declares no permission", r.method, r.path)
		}
		app.Add(r.method, r.path, s.guard(r.perm), r.handler)
	}
	return nil
}
