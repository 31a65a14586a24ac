// Package tenants holds the tenant context of a request, roles and the
// permissions each role has (enforced through casbin).
package tenants

// Permission names what a route needs, as "object:action".
type Permission string

// Pseudo-permissions for routes outside a tenant.
const (
	// Public routes need nothing: health checks, sign-in, sign-up, static files.
	Public Permission = "public"
	// SignedIn routes need a session but no tenant: the tenant switcher.
	SignedIn Permission = "signed-in"
)
