package tenants

import "context"

// Scope is the tenant a request works in, resolved once by the HTTP middleware
// from the slug in the URL, with the caller's role there.
type Scope struct {
	TenantID int64
	Slug     string
	Name     string
	UserID   int64
	Role     Role
}

type scopeKey struct{}

// WithScope returns ctx carrying the request's tenant scope.
func WithScope(ctx context.Context, s Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// FromContext returns the request's tenant scope; ok is false outside a tenant.
func FromContext(ctx context.Context) (Scope, bool) {
	s, ok := ctx.Value(scopeKey{}).(Scope)
	return s, ok
}

// ID is the request's tenant id, or 0 outside a tenant: a model function given
// 0 refuses to run (models.ErrUnscopedQuery), so a mistake fails closed.
func ID(ctx context.Context) int64 {
	s, _ := FromContext(ctx)
	return s.TenantID
}
