package web

import (
	"fmt"
	"strings"

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

// Key is how tests name a route: "METHOD path".
func (r RouteInfo) Key() string { return r.Method + " " + r.Path }

// tenantPrefix starts every route that works inside a tenant; the guard reads
// the slug from it.
const tenantPrefix = "/t/:tenant"

func (s *Server) routes() []route {
	return []route{
		{"GET", "/healthz", tenants.Public, s.healthz},
		{"GET", "/readyz", tenants.Public, s.readyz},
		{"GET", "/static/*", tenants.Public, s.static},

		{"GET", "/", tenants.Public, s.home},
		{"GET", "/signin", tenants.Public, s.signInPage},
		{"POST", "/signin", tenants.Public, s.signIn},
		{"POST", "/signout", tenants.SignedIn, s.signOut},
		{"GET", "/signup", tenants.Public, s.signUpPage},
		{"POST", "/signup", tenants.Public, s.signUp},
		{"POST", "/locale", tenants.Public, s.switchLocale},
		{"GET", "/invitations/:token", tenants.Public, s.invitationPage},
		{"POST", "/invitations/:token", tenants.Public, s.acceptInvitation},
		// WeChat's pushes to OneID's third-party platform: signed and encrypted
		// with the component's token and key, not a browser's form.
		{"POST", "/wechat/component", tenants.Public, s.componentPush},
		// Each official account's push URL (callback_key): signed by WeChat
		// with the app's token, stored first, answered within 5 s.
		{"GET", "/wechat/callback/:key", tenants.Public, s.callbackVerify},
		{"POST", "/wechat/callback/:key", tenants.Public, s.callbackPush},
		// Web OAuth for official accounts' H5 pages: WeChat users, no session.
		{"GET", "/oauth/:key/start", tenants.Public, s.oauthStart},
		{"GET", "/oauth/:key/callback", tenants.Public, s.oauthCallback},

		// The JSON API for tenants' own systems (API.md), by API key.
		{"POST", "/api/v1/miniprogram/login", tenants.APIKey, s.apiMiniProgramLogin},
		{"POST", "/api/v1/paid-unionid", tenants.APIKey, s.apiPaidUnionID},
		{"GET", "/api/v1/customers", tenants.APIKey, s.apiCustomer},
		{"POST", "/api/v1/oauth/ticket", tenants.APIKey, s.apiOAuthTicket},

		{"GET", "/tenants", tenants.SignedIn, s.tenantsPage},
		{"POST", "/tenants/switch", tenants.SignedIn, s.switchTenant},

		{"GET", "/t/:tenant", tenants.DashboardRead, s.tenantHome},
		{"GET", "/t/:tenant/dashboard", tenants.DashboardRead, s.dashboardPage},
		{"GET", "/t/:tenant/customers", tenants.CustomersRead, s.customersPage},
		// Exports: literal paths before /customers/:id, which would take them.
		{"GET", "/t/:tenant/customers/export", tenants.CustomersExport, s.exportConfirmPage},
		{"POST", "/t/:tenant/customers/export", tenants.CustomersExport, s.exportCustomers},
		{"GET", "/t/:tenant/customers/:id", tenants.CustomersRead, s.customerPage},
		{"GET", "/t/:tenant/customers/:id/delete", tenants.CustomersDelete, s.deleteCustomerPage},
		{"POST", "/t/:tenant/customers/:id/delete", tenants.CustomersDelete, s.deleteCustomer},
		// Apps: literal paths before /apps/:id, which would take them.
		{"GET", "/t/:tenant/apps", tenants.AppsRead, s.appsPage},
		{"GET", "/t/:tenant/apps/new", tenants.AppsWrite, s.newAppPage},
		{"POST", "/t/:tenant/apps/authorize", tenants.AppsWrite, s.startAuthorization},
		{"GET", "/t/:tenant/apps/authorized", tenants.AppsWrite, s.completeAuthorization},
		{"POST", "/t/:tenant/apps/self-managed", tenants.AppsWrite, s.bindSelfManaged},
		{"POST", "/t/:tenant/open-accounts", tenants.AppsWrite, s.declareOpenAccount},
		{"GET", "/t/:tenant/apps/:id", tenants.AppsRead, s.appPage},
		{"POST", "/t/:tenant/apps/:id/open/create", tenants.AppsWrite, s.createOpenAccount},
		{"POST", "/t/:tenant/apps/:id/open/bind", tenants.AppsWrite, s.bindOpenAccount},
		{"POST", "/t/:tenant/apps/:id/secret", tenants.AppsWrite, s.replaceSecret},
		{"GET", "/t/:tenant/apps/:id/unbind", tenants.AppsWrite, s.unbindPage},
		{"POST", "/t/:tenant/apps/:id/unbind", tenants.AppsWrite, s.unbindApp},
		// Follower syncs: progress for whoever reads apps, the rest for admins.
		{"GET", "/t/:tenant/apps/:id/sync", tenants.AppsRead, s.syncStatus},
		{"POST", "/t/:tenant/apps/:id/sync", tenants.SyncWrite, s.startSync},
		{"POST", "/t/:tenant/apps/:id/sync/cancel", tenants.SyncWrite, s.cancelSync},
		{"POST", "/t/:tenant/apps/:id/sync/schedule", tenants.SyncWrite, s.scheduleSync},
		{"GET", "/t/:tenant/apps/:id/oauth", tenants.AppsRead, s.oauthSettingsPage},
		{"POST", "/t/:tenant/apps/:id/oauth", tenants.AppsWrite, s.saveOAuthHosts},
		// CSV imports of identities: checked whole, written all or nothing.
		{"GET", "/t/:tenant/imports", tenants.ImportWrite, s.importsPage},
		{"POST", "/t/:tenant/imports", tenants.ImportWrite, s.importFile},
		{"GET", "/t/:tenant/imports/:id", tenants.ImportWrite, s.importJobPage},
		{"GET", "/t/:tenant/exports", tenants.ExportsRead, s.exportsPage},
		{"GET", "/t/:tenant/exports/:id/download", tenants.ExportsRead, s.downloadExport},
		{"POST", "/t/:tenant/exports/:id/cancel", tenants.ExportsWrite, s.cancelExport},
		{"GET", "/t/:tenant/settings", tenants.SettingsRead, s.settingsPage},
		{"POST", "/t/:tenant/settings/api-keys", tenants.APIKeysWrite, s.createAPIKey},
		{"POST", "/t/:tenant/settings/api-keys/:id/revoke", tenants.APIKeysWrite, s.revokeAPIKey},

		{"GET", "/t/:tenant/members", tenants.MembersRead, s.membersPage},
		{"POST", "/t/:tenant/members/:id/role", tenants.MembersWrite, s.changeRole},
		{"POST", "/t/:tenant/members/:id/remove", tenants.MembersWrite, s.removeMember},
		{"POST", "/t/:tenant/invitations", tenants.MembersWrite, s.createInvitation},
		{"POST", "/t/:tenant/invitations/:id/revoke", tenants.MembersWrite, s.revokeInvitation},

		{"GET", "/t/:tenant/audit", tenants.AuditRead, s.auditPage},
	}
}

func (s *Server) register(app *fiber.App) error {
	seen := map[string]bool{}
	for _, r := range s.routes() {
		key := r.method + " " + r.path
		switch {
		case r.perm == "":
			return fmt.Errorf("web: route %s declares no permission", key)
		case seen[key]:
			return fmt.Errorf("web: route %s is listed twice", key)
		case r.perm.InTenant() != (r.path == tenantPrefix || strings.HasPrefix(r.path, tenantPrefix+"/")):
			return fmt.Errorf("web: route %s: tenant permissions go with %s paths, and only they", key, tenantPrefix)
		}
		seen[key] = true
		app.Add(r.method, r.path, s.guard(r.perm), r.handler)
	}
	return nil
}

// navSections are the workspace's screens in menu order.
func navSections() []string {
	return []string{"dashboard", "customers", "apps", "imports", "exports", "members", "audit", "settings"}
}

// navigationPermissions reads what each menu entry needs from the route that
// serves it.
func (s *Server) navigationPermissions() map[string]tenants.Permission {
	perms := map[string]tenants.Permission{}
	for _, r := range s.routes() {
		for _, section := range navSections() {
			if r.method == "GET" && r.path == tenantPrefix+"/"+section {
				perms[section] = r.perm
			}
		}
	}
	return perms
}
