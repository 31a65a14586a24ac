package web

import (
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"oneid/models"
	"oneid/views"
)

// createInvitation makes an invitation link and shows it once, on the members
// screen.
func (s *Server) createInvitation(c *fiber.Ctx) error {
	sc := scope(c)
	invite := views.InviteForm{Email: models.NormalizeEmail(c.FormValue("email")), Role: form(c, "role"), Errors: views.FieldErrors{}}
	checkEmail(invite.Errors, "email", invite.Email)
	checkRole(invite.Errors, "role", invite.Role)
	if !invite.Errors.Any() {
		token, inv, err := models.CreateInvitation(s.dbFor(c), sc.TenantID, invite.Email, invite.Role, sc.UserID, s.now())
		switch {
		case errors.Is(err, models.ErrAlreadyMember):
			invite.Errors.Add("email", "invite.already_member")
		case err != nil:
			return err
		default:
			if err := s.audit(c, models.AuditInvitationCreated, inv.Email, inv.Role); err != nil {
				return err
			}
			v, err := s.membersView(c)
			if err != nil {
				return err
			}
			v.NewLink, v.NewEmail = s.cfg.PublicURL+"/invitations/"+token, inv.Email
			return s.render(c, fiber.StatusOK, views.MembersPage(v))
		}
	}
	v, err := s.membersView(c)
	if err != nil {
		return err
	}
	v.Invite = invite
	return invalid(views.MembersPage(v))
}

func (s *Server) revokeInvitation(c *fiber.Ctx) error {
	sc := scope(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	inv, err := models.RevokeInvitation(s.dbFor(c), sc.TenantID, id, s.now())
	if err != nil {
		return err
	}
	if err := s.audit(c, models.AuditInvitationRevoked, inv.Email, inv.Role); err != nil {
		return err
	}
	return redirect(c, tenantPath(sc.Slug, "members"))
}

// invitationPage is what an invitation link opens: who invites whom, and the
// way to accept that fits the visitor.
func (s *Server) invitationPage(c *fiber.Ctx) error {
	v, _, err := s.acceptView(c)
	if err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, views.AcceptInvitationPage(v))
}

// acceptInvitation joins the workspace: with one click when signed in as the
// invited email, after the account's password when it exists, or with a new
// password for a new person. Then the person is signed in, in that workspace.
func (s *Server) acceptInvitation(c *fiber.Ctx) error {
	v, inv, err := s.acceptView(c)
	if err != nil {
		return err
	}
	var user *models.User
	switch v.Mode {
	case views.AcceptAsSignedIn:
		user, err = s.joinAsSignedIn(c, inv)
	case views.AcceptBySigningIn:
		user, err = s.joinBySigningIn(c, v, inv)
	case views.AcceptAsNewPerson:
		user, err = s.joinAsNewPerson(c, v, inv)
	default:
		return refused(fiber.StatusForbidden, views.AcceptInvitationPage(v))
	}
	if err != nil {
		return err
	}
	if err := s.auditAcceptance(c, inv, user); err != nil {
		return err
	}
	tenant, err := models.FindTenant(s.dbFor(c), inv.TenantID)
	if err != nil {
		return err
	}
	return redirect(c, tenantPath(tenant.Slug, "dashboard"))
}

func (s *Server) joinAsSignedIn(c *fiber.Ctx, inv *models.Invitation) (*models.User, error) {
	st := state(c)
	if _, err := models.AcceptInvitation(s.dbFor(c), inv, st.user.ID, s.now()); err != nil {
		return nil, linkGone(err)
	}
	return st.user, models.SetSessionTenant(s.dbFor(c), st.session, inv.TenantID)
}

func (s *Server) joinBySigningIn(c *fiber.Ctx, v views.AcceptView, inv *models.Invitation) (*models.User, error) {
	user, err := s.authenticate(c, inv.Email, c.FormValue("password"))
	switch {
	case errors.Is(err, errThrottled):
		v.Problem = "auth.throttled"
		return nil, refused(fiber.StatusTooManyRequests, views.AcceptInvitationPage(v))
	case errors.Is(err, errBadCredentials):
		v.Errors.Add("password", "accept.wrong_password")
		return nil, refused(fiber.StatusUnauthorized, views.AcceptInvitationPage(v))
	case err != nil:
		return nil, err
	}
	if _, err := models.AcceptInvitation(s.dbFor(c), inv, user.ID, s.now()); err != nil {
		return nil, linkGone(err)
	}
	return user, s.startSession(c, user, inv.TenantID)
}

func (s *Server) joinAsNewPerson(c *fiber.Ctx, v views.AcceptView, inv *models.Invitation) (*models.User, error) {
	password := c.FormValue("password")
	v.Name = form(c, "name")
	checkText(v.Errors, "name", v.Name, false, 100)
	checkPassword(v.Errors, "password", password)
	if v.Errors.Any() {
		return nil, invalid(views.AcceptInvitationPage(v))
	}
	hash, err := s.hasher.Hash(c.UserContext(), password)
	if err != nil {
		return nil, err
	}
	user := &models.User{Email: inv.Email, Name: v.Name, PasswordHash: hash, Locale: string(views.LocaleOf(c.UserContext()))}
	if _, err := models.AcceptInvitationAsNewUser(s.dbFor(c), inv, user, s.now()); err != nil {
		return nil, linkGone(err)
	}
	return user, s.startSession(c, user, inv.TenantID)
}

// acceptView loads the invitation a link names and decides how the visitor
// accepts it. A used, revoked, expired or unknown link, or one to a suspended
// workspace, is the same "link not valid" page.
func (s *Server) acceptView(c *fiber.Ctx) (views.AcceptView, *models.Invitation, error) {
	db := s.dbFor(c)
	token := c.Params("token")
	inv, err := models.FindPendingInvitation(db, token, s.now())
	if err != nil {
		return views.AcceptView{}, nil, linkGone(err)
	}
	tenant, err := models.FindTenant(db, inv.TenantID)
	if err != nil {
		return views.AcceptView{}, nil, linkGone(err)
	}
	if tenant.Suspended() {
		return views.AcceptView{}, nil, errLinkGone
	}
	v := views.AcceptView{Token: token, Workspace: tenant.Name, Role: inv.Role, Email: inv.Email, Errors: views.FieldErrors{}}
	st := state(c)
	switch {
	case st.user != nil && st.user.Email == inv.Email:
		v.Mode = views.AcceptAsSignedIn
	case st.user != nil:
		v.Mode, v.SignedInAs = views.AcceptWrongPerson, st.user.Email
	default:
		_, err := models.FindUserByEmail(db, inv.Email)
		switch {
		case err == nil:
			v.Mode = views.AcceptBySigningIn
		case errors.Is(err, models.ErrNotFound):
			v.Mode = views.AcceptAsNewPerson
		default:
			return views.AcceptView{}, nil, err
		}
	}
	return v, inv, nil
}

func (s *Server) auditAcceptance(c *fiber.Ctx, inv *models.Invitation, user *models.User) error {
	e := models.AuditEvent{
		ActorUserID: user.ID, Actor: user.Email, Action: models.AuditInvitationAccepted,
		Target: user.Email, Detail: inv.Role + " #" + strconv.FormatInt(inv.ID, 10), IP: c.IP(), RequestID: requestID(c),
	}
	return models.RecordAudit(s.dbFor(c), inv.TenantID, e)
}

// linkGone turns "no such invitation" into the invitation's own 404 page.
func linkGone(err error) error {
	if errors.Is(err, models.ErrNotFound) {
		return errLinkGone
	}
	return err
}
