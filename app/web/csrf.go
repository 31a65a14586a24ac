package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"oneid/views"
)

// checkCSRF refuses a state-changing request that does not carry the page's
// CSRF token, in the _csrf form field or (htmx) the X-CSRF-Token header. The
// token is the session's (sessions.csrf_token); a visitor who has not signed in
// yet gets one in a cookie, so the sign-in and sign-up forms are covered too.
// A request whose Origin names another site is refused as well. WeChat's
// pushes under /wechat/ carry no session and no form token: WeChat's signature
// over the body authenticates them, checked by their handlers. The JSON API
// under /api/ is authenticated by an API key header, never by a cookie.
func (s *Server) checkCSRF(c *fiber.Ctx) error {
	if strings.HasPrefix(c.Path(), wechatPushPrefix) || strings.HasPrefix(c.Path(), apiPrefix) {
		return c.Next()
	}
	st := state(c)
	if st.session != nil {
		st.csrf = st.session.CSRFToken
	} else {
		st.csrf = c.Cookies(csrfCookie)
		if len(st.csrf) != 43 {
			st.csrf = newCSRFToken()
			s.setCookie(c, csrfCookie, st.csrf, 0)
		}
	}
	c.SetUserContext(views.WithCSRF(c.UserContext(), st.csrf))
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return c.Next()
	}
	sent := c.Get("X-CSRF-Token")
	if sent == "" {
		sent = c.FormValue("_csrf")
	}
	if !s.sameOrigin(c) || subtle.ConstantTimeCompare([]byte(sent), []byte(st.csrf)) != 1 {
		return errCSRF
	}
	return c.Next()
}

// sameOrigin is false only when the browser says the request came from
// another site.
func (s *Server) sameOrigin(c *fiber.Ctx) bool {
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		return true
	}
	if origin == c.BaseURL() {
		return true
	}
	pub, err := url.Parse(s.cfg.PublicURL)
	return err == nil && origin == pub.Scheme+"://"+pub.Host
}

func newCSRFToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
