package web

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"oneid/models"
	"oneid/views"
)

// Why a sign-in was refused. The same answer covers an unknown email and a
// wrong password.
var (
	errBadCredentials = errors.New("web: email or password is wrong")
	errThrottled      = errors.New("web: too many failed sign-ins")
)

// home sends a person to the workspace they last used, a visitor to sign in.
func (s *Server) home(c *fiber.Ctx) error {
	st := state(c)
	if st.user == nil {
		return redirect(c, "/signin")
	}
	ws, err := models.WorkspacesOf(s.dbFor(c), st.user.ID)
	if err != nil {
		return err
	}
	var pick *models.Workspace
	for i := range ws {
		if ws[i].Status != models.TenantActive {
			continue
		}
		if pick == nil || ws[i].TenantID == st.session.CurrentTenantID {
			pick = &ws[i]
		}
	}
	if pick == nil {
		return redirect(c, "/tenants")
	}
	return redirect(c, tenantPath(pick.Slug, "dashboard"))
}

func (s *Server) signInPage(c *fiber.Ctx) error {
	next := localPath(c.Query("next"))
	if state(c).user != nil {
		return redirect(c, orHome(next))
	}
	form := views.SignInForm{Next: next}
	if c.Query("expired") != "" {
		form.Problem = "auth.expired"
	}
	return s.render(c, fiber.StatusOK, views.SignInPage(form))
}

func (s *Server) signIn(c *fiber.Ctx) error {
	form := views.SignInForm{Email: strings.TrimSpace(c.FormValue("email")), Next: localPath(c.FormValue("next"))}
	password := c.FormValue("password")
	if form.Email == "" || password == "" {
		form.Problem = "auth.missing"
		return invalid(views.SignInPage(form))
	}
	user, err := s.authenticate(c, form.Email, password)
	switch {
	case errors.Is(err, errThrottled):
		form.Problem = "auth.throttled"
		return refused(fiber.StatusTooManyRequests, views.SignInPage(form))
	case errors.Is(err, errBadCredentials):
		form.Problem = "auth.failed"
		return refused(fiber.StatusUnauthorized, views.SignInPage(form))
	case err != nil:
		return err
	}
	if err := s.startSession(c, user, 0); err != nil {
		return err
	}
	return redirect(c, orHome(form.Next))
}

func (s *Server) signOut(c *fiber.Ctx) error {
	if err := s.endSession(c); err != nil {
		return err
	}
	if next := localPath(c.FormValue("next")); next != "" {
		return redirect(c, next)
	}
	return redirect(c, "/signin")
}

// authenticate checks an email and password, throttled per account and per
// address. An unknown email costs a hash like a known one and gets the same
// error; sign-ins and failures of known people go to their tenants' audit logs.
func (s *Server) authenticate(c *fiber.Ctx, email, password string) (*models.User, error) {
	db := s.dbFor(c)
	ctx := c.UserContext()
	now := s.now()
	locked, err := models.SignInLocked(db, email, c.IP(), now)
	if err != nil {
		return nil, err
	}
	if locked {
		return nil, errThrottled
	}
	user, err := models.FindUserByEmail(db, email)
	if errors.Is(err, models.ErrNotFound) {
		s.hasher.VerifyNobody(ctx, password)
		return nil, s.signInFailed(c, nil, email)
	}
	if err != nil {
		return nil, err
	}
	if err := s.hasher.Verify(ctx, user.PasswordHash, password); errors.Is(err, models.ErrBadPassword) {
		return nil, s.signInFailed(c, user, email)
	} else if err != nil {
		return nil, err
	}
	if err := models.SignInSucceeded(db, email); err != nil {
		return nil, err
	}
	if err := s.auditEveryTenantOf(c, user, models.AuditSignIn); err != nil {
		return nil, err
	}
	return user, nil
}

// signInFailed counts the failure and answers errBadCredentials.
func (s *Server) signInFailed(c *fiber.Ctx, user *models.User, email string) error {
	if err := models.SignInFailed(s.dbFor(c), email, c.IP(), s.now()); err != nil {
		return err
	}
	if user != nil {
		if err := s.auditEveryTenantOf(c, user, models.AuditSignInFailed); err != nil {
			return err
		}
	}
	return errBadCredentials
}

func orHome(next string) string {
	if next == "" {
		return "/"
	}
	return next
}
