// Package views holds OneID's templ pages and components, the view models they
// take (shaped like the screens, not like database rows) and the message
// catalogs. Only cross-cutting values ride in the context: the locale, the
// signed-in person, the current workspace with its navigation, the CSRF token
// and the asset URLs.
package views

import "context"

// Viewer is the signed-in person as the page header shows them.
type Viewer struct {
	Name  string
	Email string
}

// Workspace is the tenant a page belongs to, with the navigation the member's
// role may open.
type Workspace struct {
	Slug string
	Name string
	Role string
	Nav  []NavItem
}

// NavItem is one entry of the side navigation; its label is T("nav."+Key).
type NavItem struct {
	Key  string
	Href string
}

// Assets are the URLs of the stylesheet and scripts, with their versions.
type Assets struct {
	CSS  string
	HTMX string
	// Versioned maps a file under static/ ("css/browse.css", "js/browse.js")
	// to its URL with a version from its content; see AssetURL.
	Versioned map[string]string
}

type (
	localeKey    struct{}
	viewerKey    struct{}
	workspaceKey struct{}
	csrfKey      struct{}
	assetsKey    struct{}
)

// WithLocale sets the language pages render in.
func WithLocale(ctx context.Context, l Locale) context.Context {
	return context.WithValue(ctx, localeKey{}, l)
}

// LocaleOf is the page language (zh-CN when none was set).
func LocaleOf(ctx context.Context) Locale {
	if l, ok := ctx.Value(localeKey{}).(Locale); ok {
		return l
	}
	return ZhCN
}

// WithViewer sets the signed-in person.
func WithViewer(ctx context.Context, v Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}

// ViewerOf is the signed-in person; ok is false for a visitor.
func ViewerOf(ctx context.Context) (Viewer, bool) {
	v, ok := ctx.Value(viewerKey{}).(Viewer)
	return v, ok
}

// WithWorkspace sets the workspace of a tenant page.
func WithWorkspace(ctx context.Context, w Workspace) context.Context {
	return context.WithValue(ctx, workspaceKey{}, w)
}

// WorkspaceOf is the page's workspace; ok is false outside a tenant.
func WorkspaceOf(ctx context.Context) (Workspace, bool) {
	w, ok := ctx.Value(workspaceKey{}).(Workspace)
	return w, ok
}

// WithCSRF sets the token every form and htmx request carries.
func WithCSRF(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, csrfKey{}, token)
}

// CSRFOf is the CSRF token for this page.
func CSRFOf(ctx context.Context) string {
	s, _ := ctx.Value(csrfKey{}).(string)
	return s
}

// WithAssets sets the asset URLs.
func WithAssets(ctx context.Context, a Assets) context.Context {
	return context.WithValue(ctx, assetsKey{}, a)
}

// AssetsOf is the asset URLs.
func AssetsOf(ctx context.Context) Assets {
	a, _ := ctx.Value(assetsKey{}).(Assets)
	return a
}

// AssetURL is the versioned URL of a static file, e.g. AssetURL(ctx,
// "js/browse.js"); a file the server did not version gets its plain path.
func AssetURL(ctx context.Context, name string) string {
	if u, ok := AssetsOf(ctx).Versioned[name]; ok {
		return u
	}
	return "/static/" + name
}

// workspaceHref is a path inside the page's workspace: /t/<slug>/<rest>.
func workspaceHref(ctx context.Context, rest string) string {
	ws, _ := WorkspaceOf(ctx)
	return "/t/" + ws.Slug + "/" + rest
}
