package web

import (
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"oneid/models"
	"oneid/tenants"
	"oneid/views"
)

func (s *Server) membersPage(c *fiber.Ctx) error {
	v, err := s.membersView(c)
	if err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, views.MembersPage(v))
}

// membersView loads the members screen of the request's tenant.
func (s *Server) membersView(c *fiber.Ctx) (views.MembersView, error) {
	sc := scope(c)
	db := s.dbFor(c)
	members, err := models.ListMembers(db, sc.TenantID)
	if err != nil {
		return views.MembersView{}, err
	}
	invitations, err := models.ListPendingInvitations(db, sc.TenantID, s.now())
	if err != nil {
		return views.MembersView{}, err
	}
	v := views.MembersView{
		CanManage: s.authz.Grants(sc.Role, sc.TenantID, tenants.MembersWrite),
		Invite:    views.InviteForm{Role: models.RoleMarketer, Errors: views.FieldErrors{}},
		Roles:     models.Roles(),
	}
	for _, m := range members {
		v.Members = append(v.Members, views.MemberRow{ID: m.MembershipID, Name: m.Name, Email: m.Email, Role: m.Role, JoinedAt: m.JoinedAt, IsYou: m.UserID == sc.UserID})
	}
	for _, inv := range invitations {
		v.Invitations = append(v.Invitations, views.PendingInvitation{ID: inv.ID, Email: inv.Email, Role: inv.Role, ExpiresAt: inv.ExpiresAt})
	}
	return v, nil
}

// changeRole gives a member another role. The last admin keeps theirs.
func (s *Server) changeRole(c *fiber.Ctx) error {
	sc := scope(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, err := models.FindMembership(s.dbFor(c), sc.TenantID, id); err != nil {
		return err
	}
	role := form(c, "role")
	if !models.ValidRole(role) {
		return s.membersProblem(c, "error.role")
	}
	before, err := models.ChangeRole(s.dbFor(c), sc.TenantID, id, role)
	if errors.Is(err, models.ErrLastAdmin) {
		return s.membersProblem(c, "members.last_admin")
	}
	if err != nil {
		return err
	}
	if before.Role != role {
		person, err := models.FindUser(s.dbFor(c), before.UserID)
		if err != nil {
			return err
		}
		if err := s.audit(c, models.AuditRoleChanged, person.Email, fmt.Sprintf("%s → %s", before.Role, role)); err != nil {
			return err
		}
	}
	if before.UserID == sc.UserID && role != models.RoleAdmin {
		// An admin who stepped down can no longer open this page.
		return redirect(c, tenantPath(sc.Slug, "dashboard"))
	}
	return redirect(c, tenantPath(sc.Slug, "members"))
}

// removeMember takes a person out of the workspace. The last admin stays.
func (s *Server) removeMember(c *fiber.Ctx) error {
	sc := scope(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	removed, err := models.RemoveMember(s.dbFor(c), sc.TenantID, id)
	if errors.Is(err, models.ErrLastAdmin) {
		return s.membersProblem(c, "members.last_admin")
	}
	if err != nil {
		return err
	}
	person, err := models.FindUser(s.dbFor(c), removed.UserID)
	if err != nil {
		return err
	}
	if err := s.audit(c, models.AuditMemberRemoved, person.Email, removed.Role); err != nil {
		return err
	}
	if removed.UserID == sc.UserID {
		return redirect(c, "/tenants")
	}
	return redirect(c, tenantPath(sc.Slug, "members"))
}

// membersProblem re-renders the members screen with what was refused (422).
func (s *Server) membersProblem(c *fiber.Ctx, key string) error {
	v, err := s.membersView(c)
	if err != nil {
		return err
	}
	v.Problem = key
	return invalid(views.MembersPage(v))
}
