package web

import (
	"io/fs"
	"mime"
	"path"

	"github.com/gofiber/fiber/v2"

	"oneid/static"
)

// static serves the embedded stylesheet and scripts. Their URLs change when
// their content does (a version in the name or query), so browsers keep them
// for a year.
func (s *Server) static(c *fiber.Ctx) error {
	name := path.Clean(c.Params("*"))
	if !fs.ValidPath(name) {
		return errNotFound
	}
	body, err := fs.ReadFile(static.Files, name)
	if err != nil {
		return errNotFound
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = fiber.MIMEOctetStream
	}
	c.Set(fiber.HeaderContentType, ctype)
	c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
	return c.Send(body)
}
