// Package tenants holds the tenant context of a request, roles and the
// permissions each role has (enforced through casbin).
package tenants

import (
	"strings"

	"oneid/models"
)

// Permission names what a route needs, as "object:action".
type Permission string

// Pseudo-permissions for routes outside a tenant.
const (
	// Public routes need nothing: health checks, sign-in, sign-up, static files.
	Public Permission = "public"
	// SignedIn routes need a session but no tenant: the tenant switcher.
	SignedIn Permission = "signed-in"
	// APIKey routes are the JSON API for a tenant's own systems: no session,
	// but an API key (Authorization: Bearer …), which names the tenant.
	APIKey Permission = "api-key"
)

// Permissions inside a tenant. The list is complete for the product: later
// features pick from it rather than adding their own, so the role policy below
// stays the one place that says who may do what.
const (
	DashboardRead   Permission = "dashboard:read"   // the dashboard: unique customers, overlap, trends
	CustomersRead   Permission = "customers:read"   // browse, search and open customer profiles
	CustomersExport Permission = "customers:export" // download customer profiles as CSV
	CustomersDelete Permission = "customers:delete" // delete a customer (personal-data requests)
	ExportsRead     Permission = "exports:read"     // the list of exports and their files
	ExportsWrite    Permission = "exports:write"    // start an export
	AppsRead        Permission = "apps:read"        // bound apps and open-platform accounts
	AppsWrite       Permission = "apps:write"       // bind, unbind, change secrets
	SyncWrite       Permission = "sync:write"       // run follower syncs
	ImportWrite     Permission = "import:write"     // import identities from CSV
	MembersRead     Permission = "members:read"     // the member list and pending invitations
	MembersWrite    Permission = "members:write"    // invite, change roles, remove
	AuditRead       Permission = "audit:read"       // the audit log
	SettingsRead    Permission = "settings:read"    // the workspace settings
	SettingsWrite   Permission = "settings:write"   // change the workspace settings
	APIKeysRead     Permission = "apikeys:read"     // the tenant's API keys (never their secrets)
	APIKeysWrite    Permission = "apikeys:write"    // create and revoke API keys
)

// Role is what a member is in a tenant.
type Role string

// The roles of PRODUCT.md "Who uses it".
const (
	Admin    Role = models.RoleAdmin
	Marketer Role = models.RoleMarketer
	Viewer   Role = models.RoleViewer
)

// Roles lists the roles from most to least powerful.
func Roles() []Role { return []Role{Admin, Marketer, Viewer} }

// AllPermissions lists every tenant permission.
func AllPermissions() []Permission {
	return []Permission{
		DashboardRead, CustomersRead, CustomersExport, CustomersDelete, ExportsRead, ExportsWrite,
		AppsRead, AppsWrite, SyncWrite, ImportWrite, MembersRead, MembersWrite, AuditRead,
		SettingsRead, SettingsWrite, APIKeysRead, APIKeysWrite,
	}
}

// rolePermissions is the policy: a viewer reads profiles, the dashboard and
// the bound apps (issue 4: admins act on apps, marketers and viewers read
// them); a marketer also exports (personal data leaving the system, PRODUCT.md
// rule 8); an admin may do everything.
func rolePermissions() map[Role][]Permission {
	viewer := []Permission{DashboardRead, CustomersRead, AppsRead}
	marketer := append(append([]Permission{}, viewer...), CustomersExport, ExportsRead, ExportsWrite)
	return map[Role][]Permission{
		Viewer:   viewer,
		Marketer: marketer,
		Admin:    AllPermissions(),
	}
}

// InTenant reports whether the permission is checked against a tenant
// membership (every permission but Public, SignedIn and APIKey).
func (p Permission) InTenant() bool { return p != Public && p != SignedIn && p != APIKey && p != "" }

// Object and Action split "object:action".
func (p Permission) Object() string { o, _, _ := strings.Cut(string(p), ":"); return o }

// Action is the part after the colon.
func (p Permission) Action() string { _, a, _ := strings.Cut(string(p), ":"); return a }
