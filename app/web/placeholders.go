package web

import (
	"github.com/gofiber/fiber/v2"

	"oneid/views"
)

// placeholder serves a workspace screen a later release fills; the page says
// so plainly.
func (s *Server) placeholder(section string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		return s.render(c, fiber.StatusOK, views.PlaceholderPage(section))
	}
}
