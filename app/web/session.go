package web

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"oneid/models"
	"oneid/views"
)

// Cookie names. The session cookie holds the session id, whose SHA-256 is the
// sessions row's key; the CSRF cookie holds a visitor's token until they sign
// in; the locale cookie remembers the language switch.
const (
	sessionCookie = "oneid_session"
	csrfCookie    = "oneid_csrf"
	localeCookie  = "oneid_lang"
)

// loadSession resumes the session named by the cookie, if it is still alive.
func (s *Server) loadSession(c *fiber.Ctx) error {
	if id := c.Cookies(sessionCookie); id != "" {
		if err := s.resumeSession(c, id); err != nil {
			return err
		}
	}
	return c.Next()
}

func (s *Server) resumeSession(c *fiber.Ctx, id string) error {
	st := state(c)
	db := s.dbFor(c)
	now := s.now()
	sess, user, err := models.FindSessionAndUser(db, id)
	if errors.Is(err, models.ErrNotFound) {
		s.clearCookie(c, sessionCookie)
		st.expired = true
		return nil
	}
	if err != nil {
		return err
	}
	if sess.Expired(now) {
		s.clearCookie(c, sessionCookie)
		st.expired = true
		return models.DeleteSession(db, sess)
	}
	if user == nil { // the person is gone
		s.clearCookie(c, sessionCookie)
		return models.DeleteSession(db, sess)
	}
	if err := models.TouchSession(db, sess, now); err != nil {
		return err
	}
	st.session, st.user = sess, user
	c.SetUserContext(views.WithViewer(c.UserContext(), views.Viewer{Name: user.Name, Email: user.Email}))
	return nil
}

// startSession signs a person in: any session the browser had is deleted and a
// new id is issued (no fixation), remembering the tenant to open.
func (s *Server) startSession(c *fiber.Ctx, user *models.User, tenantID int64) error {
	st := state(c)
	db := s.dbFor(c)
	now := s.now()
	if st.session != nil {
		if err := models.DeleteSession(db, st.session); err != nil {
			return err
		}
	}
	if tenantID == 0 {
		ws, err := models.WorkspacesOf(db, user.ID)
		if err != nil {
			return err
		}
		if len(ws) > 0 {
			tenantID = ws[0].TenantID
		}
	}
	id, sess, err := models.CreateSession(db, user.ID, tenantID, c.IP(), c.Get(fiber.HeaderUserAgent), now)
	if err != nil {
		return err
	}
	// Sign-in is a good moment to sweep ended sessions and stale counters.
	if err := models.PurgeSessions(db, now); err != nil {
		s.log.Warn("purge sessions", "request_id", st.id, "err", err)
	}
	if err := models.PurgeSignInThrottles(db, now); err != nil {
		s.log.Warn("purge sign-in throttles", "request_id", st.id, "err", err)
	}
	s.setCookie(c, sessionCookie, id, models.SessionMaxAge)
	s.clearCookie(c, csrfCookie)
	st.session, st.user, st.csrf = sess, user, sess.CSRFToken
	return nil
}

// endSession signs the browser out.
func (s *Server) endSession(c *fiber.Ctx) error {
	st := state(c)
	if st.session != nil {
		if err := models.DeleteSession(s.dbFor(c), st.session); err != nil {
			return err
		}
	}
	s.clearCookie(c, sessionCookie)
	st.session, st.user = nil, nil
	return nil
}

func (s *Server) setCookie(c *fiber.Ctx, name, value string, maxAge time.Duration) {
	c.Cookie(&fiber.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   int(maxAge.Seconds()),
		Secure:   s.cfg.Secure(),
		HTTPOnly: true,
		SameSite: fiber.CookieSameSiteLaxMode,
	})
}

func (s *Server) clearCookie(c *fiber.Ctx, name string) {
	c.Cookie(&fiber.Cookie{
		Name:     name,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		Expires:  time.Unix(0, 0),
		Secure:   s.cfg.Secure(),
		HTTPOnly: true,
		SameSite: fiber.CookieSameSiteLaxMode,
	})
}
