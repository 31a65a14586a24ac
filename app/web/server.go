// Package web is OneID's HTTP application: the route table, middleware and the
// handlers of every screen. It is the only package that imports fiber.
package web

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"

	"oneid/app/config"
	"oneid/models"
)

// Deps are the dependencies of the HTTP application, passed explicitly.
type Deps struct {
	Config config.Config
	DB     *gorm.DB
	Log    *slog.Logger
	Sealer *models.Sealer
	// Now is the clock; tests pass a fake one to walk through session timeouts.
	Now func() time.Time
}

// Server holds the dependencies every handler uses.
type Server struct {
	cfg    config.Config
	db     *gorm.DB
	log    *slog.Logger
	sealer *models.Sealer
	now    func() time.Time
}

// New builds the fiber application with every route of the table registered.
func New(d Deps) (*fiber.App, error) {
	if d.Now == nil {
		d.Now = func() time.Time { return time.Now().UTC() }
	}
	s := &Server{cfg: d.Config, db: d.DB, log: d.Log, sealer: d.Sealer, now: d.Now}
	app := fiber.New(fiber.Config{
		AppName:               "OneID",
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          5 * time.Minute,
		IdleTimeout:           90 * time.Second,
		BodyLimit:             32 << 20,
		ProxyHeader:           "",
	})
	if err := s.register(app); err != nil {
		return nil, err
	}
	return app, nil
}

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.SendString("ok")
}

// readyz answers 503 when the database does not answer within a second.
func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), time.Second)
	defer cancel()
	sqlDB, err := s.db.DB()
	if err == nil {
		err = sqlDB.PingContext(ctx)
	}
	if err != nil {
		return c.Status(fiber.StatusServiceUnavailable).SendString("database unavailable")
	}
	return c.SendString("ready")
}

// errHTTP carries a status for the error handler.
type errHTTP struct {
	status int
	msg    string
}

func (e *errHTTP) Error() string { return e.msg }

func (s *Server) handleError(c *fiber.Ctx, err error) error {
	status := fiber.StatusInternalServerError
	var fe *fiber.Error
	var he *errHTTP
	switch {
	case errors.Is(err, models.ErrNotFound):
		status = fiber.StatusNotFound
	case errors.As(err, &fe):
		status = fe.Code
	case errors.As(err, &he):
		status = he.status
	}
	if status >= 500 {
		s.log.Error("request failed", "request_id", requestID(c), "method", c.Method(), "path", c.Path(), "err", err)
	}
	return s.renderError(c, status)
}
