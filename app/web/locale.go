package web

import (
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"oneid/views"
)

// switchLocale remembers the chosen language and goes back to the page.
func (s *Server) switchLocale(c *fiber.Ctx) error {
	l, ok := views.ParseLocale(c.FormValue("lang"))
	if !ok {
		return redirect(c, backTo(c))
	}
	c.Cookie(&fiber.Cookie{
		Name: localeCookie, Value: string(l), Path: "/", MaxAge: int((365 * 24 * time.Hour).Seconds()),
		Secure: s.cfg.Secure(), HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode,
	})
	return redirect(c, backTo(c))
}

// backTo is the page the request came from, when it is on this site.
func backTo(c *fiber.Ctx) string {
	ref, err := url.Parse(c.Get(fiber.HeaderReferer))
	if err != nil || ref.Path == "" || (ref.Host != "" && ref.Host != c.Hostname()) {
		return "/"
	}
	back := ref.Path
	if ref.RawQuery != "" {
		back += "?" + ref.RawQuery
	}
	return orHome(localPath(back))
}
