package web

import (
	"github.com/gofiber/fiber/v2"

	"oneid/models"
	"oneid/views"
)

// tenantsPage lists the workspaces a person belongs to.
func (s *Server) tenantsPage(c *fiber.Ctx) error {
	st := state(c)
	ws, err := models.WorkspacesOf(s.dbFor(c), st.user.ID)
	if err != nil {
		return err
	}
	v := views.TenantsView{}
	for _, w := range ws {
		v.Workspaces = append(v.Workspaces, views.WorkspaceChoice{
			Slug: w.Slug, Name: w.Name, Role: w.Role,
			Suspended: w.Status == models.TenantSuspended, Current: w.TenantID == st.session.CurrentTenantID,
		})
	}
	return s.render(c, fiber.StatusOK, views.TenantsPage(v))
}

// switchTenant opens another of the person's workspaces.
func (s *Server) switchTenant(c *fiber.Ctx) error {
	st := state(c)
	db := s.dbFor(c)
	tenant, err := models.FindTenantBySlug(db, form(c, "tenant"))
	if err != nil {
		return err
	}
	if _, err := models.MemberRole(db, tenant.ID, st.user.ID); err != nil {
		return err
	}
	if err := models.SetSessionTenant(db, st.session, tenant.ID); err != nil {
		return err
	}
	return redirect(c, tenantPath(tenant.Slug, "dashboard"))
}

// tenantHome opens a workspace at its dashboard.
func (s *Server) tenantHome(c *fiber.Ctx) error {
	return redirect(c, tenantPath(scope(c).Slug, "dashboard"))
}
