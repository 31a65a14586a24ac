package tenants

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"gorm.io/gorm"

	"oneid/models"
)

//go:embed rbac_model.conf
var rbacModel string

// allTenants is the policy domain of lines that hold in every tenant.
const allTenants = "*"

// Authorizer decides what a member may do in a tenant: the member's role comes
// from the memberships table at every check, what a role may do from casbin.
type Authorizer struct {
	db       *gorm.DB
	enforcer *casbin.Enforcer
	// decided holds casbin's answer for every role and permission. The
	// policy is fixed when the Authorizer is built and every line of it is
	// in the domain of all tenants, so the answer does not depend on the
	// tenant: asking casbin again on every request (a dozen times a page,
	// for the menu) was a sixth of a customer list's CPU. The role itself is
	// still read from the database at every Check.
	decided map[rolePerm]bool
}

type rolePerm struct {
	role Role
	perm Permission
}

// NewAuthorizer builds the enforcer from the embedded model and the role policy.
func NewAuthorizer(db *gorm.DB) (*Authorizer, error) {
	m, err := model.NewModelFromString(rbacModel)
	if err != nil {
		return nil, fmt.Errorf("tenants: casbin model: %w", err)
	}
	e, err := casbin.NewEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("tenants: casbin enforcer: %w", err)
	}
	e.EnableLog(false)
	if _, err := e.AddPolicies(policyLines()); err != nil {
		return nil, fmt.Errorf("tenants: casbin policy: %w", err)
	}
	a := &Authorizer{db: db, enforcer: e, decided: map[rolePerm]bool{}}
	for _, role := range Roles() {
		for _, p := range AllPermissions() {
			ok, err := e.Enforce(string(role), tenantDomain(0), p.Object(), p.Action())
			if err != nil {
				return nil, fmt.Errorf("tenants: enforce %s for %s: %w", p, role, err)
			}
			a.decided[rolePerm{role, p}] = ok
		}
	}
	return a, nil
}

// decide is casbin's answer for a role and permission in a tenant, from
// decided when it holds one.
func (a *Authorizer) decide(role Role, tenantID int64, perm Permission) (bool, error) {
	if ok, known := a.decided[rolePerm{role, perm}]; known {
		return ok, nil
	}
	return a.enforcer.Enforce(string(role), tenantDomain(tenantID), perm.Object(), perm.Action())
}

// policyLines turns rolePermissions into casbin's p lines: role, domain,
// object, action.
func policyLines() [][]string {
	perms := rolePermissions()
	var lines [][]string
	for _, role := range Roles() {
		for _, p := range perms[role] {
			lines = append(lines, []string{string(role), allTenants, p.Object(), p.Action()})
		}
	}
	return lines
}

// ErrNotMember is returned by Check when the person does not belong to the
// tenant. Callers answer it exactly like a tenant that does not exist.
var ErrNotMember = errors.New("tenants: not a member of this tenant")

// Check reads the person's role in the tenant from the database and decides
// whether it grants perm. A non-member gets ErrNotMember.
func (a *Authorizer) Check(ctx context.Context, userID, tenantID int64, perm Permission) (Role, bool, error) {
	role, err := models.MemberRole(a.db.WithContext(ctx), tenantID, userID)
	if errors.Is(err, models.ErrNotFound) {
		return "", false, ErrNotMember
	}
	if err != nil {
		return "", false, err
	}
	return a.Decide(role, tenantID, perm)
}

// Decide is Check for a role the caller has just read from the database
// (models.FindTenantAndRole, "" for a non-member, who gets ErrNotMember).
func (a *Authorizer) Decide(role string, tenantID int64, perm Permission) (Role, bool, error) {
	if role == "" {
		return "", false, ErrNotMember
	}
	if !perm.InTenant() {
		return Role(role), true, nil
	}
	ok, err := a.decide(Role(role), tenantID, perm)
	if err != nil {
		return "", false, fmt.Errorf("tenants: enforce %s: %w", perm, err)
	}
	return Role(role), ok, nil
}

// Grants reports whether a role may use perm in a tenant. The navigation uses
// it to hide what the role cannot open, with the role Check returned.
func (a *Authorizer) Grants(role Role, tenantID int64, perm Permission) bool {
	ok, err := a.decide(role, tenantID, perm)
	return err == nil && ok
}

func tenantDomain(id int64) string { return "tenant:" + strconv.FormatInt(id, 10) }
