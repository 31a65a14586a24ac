package web

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"oneid/models"
	"oneid/views"
)

func (s *Server) signUpPage(c *fiber.Ctx) error {
	return s.render(c, fiber.StatusOK, views.SignUpPage(views.SignUpForm{SignedIn: state(c).user != nil}))
}

// signUp creates a workspace. A visitor also creates its first admin and is
// signed in; a signed-in person becomes the admin of one more workspace.
func (s *Server) signUp(c *fiber.Ctx) error {
	st := state(c)
	f := views.SignUpForm{
		Company: form(c, "company"), Principal: form(c, "principal"),
		Name: form(c, "name"), Email: models.NormalizeEmail(c.FormValue("email")),
		Errors: views.FieldErrors{}, SignedIn: st.user != nil,
	}
	password := c.FormValue("password")
	checkText(f.Errors, "company", f.Company, true, 200)
	checkText(f.Errors, "principal", f.Principal, true, 200)
	if !f.SignedIn {
		checkText(f.Errors, "name", f.Name, false, 100)
		checkEmail(f.Errors, "email", f.Email)
		checkPassword(f.Errors, "password", password)
	}
	if f.Errors.Any() {
		return invalid(views.SignUpPage(f))
	}

	nt := models.NewTenant{Name: f.Company, PrincipalName: f.Principal}
	if f.SignedIn {
		nt.AdminUserID = st.user.ID
	} else {
		hash, err := s.hasher.Hash(c.UserContext(), password)
		if err != nil {
			return err
		}
		nt.Admin = models.User{Email: f.Email, Name: f.Name, PasswordHash: hash, Locale: string(views.LocaleOf(c.UserContext()))}
	}
	tenant, admin, err := models.CreateTenant(s.dbFor(c), nt)
	if errors.Is(err, models.ErrEmailTaken) {
		f.Errors.Add("email", "error.email_taken")
		return invalid(views.SignUpPage(f))
	}
	if err != nil {
		return err
	}
	e := models.AuditEvent{ActorUserID: admin.ID, Actor: admin.Email, Action: models.AuditTenantCreated, Target: tenant.Name, IP: c.IP(), RequestID: st.id}
	if err := models.RecordAudit(s.dbFor(c), tenant.ID, e); err != nil {
		return err
	}
	if f.SignedIn {
		if err := models.SetSessionTenant(s.dbFor(c), st.session, tenant.ID); err != nil {
			return err
		}
	} else if err := s.startSession(c, admin, tenant.ID); err != nil {
		return err
	}
	return redirect(c, tenantPath(tenant.Slug, "dashboard"))
}
