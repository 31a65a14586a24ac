package web

import (
	"context"
	"errors"
	"strings"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"oneid/models"
	"oneid/views"
)

// formError re-renders a form with what is wrong: 422 for invalid input, or
// another status for a refusal that still shows the form (a wrong password,
// too many attempts). Nothing was changed.
type formError struct {
	status int
	page   templ.Component
}

func (e *formError) Error() string { return "web: form refused" }

// invalid answers 422 with the form re-rendered.
func invalid(page templ.Component) error {
	return &formError{status: fiber.StatusUnprocessableEntity, page: page}
}

// refused answers status with the form re-rendered.
func refused(status int, page templ.Component) error {
	return &formError{status: status, page: page}
}

// pageError is a refusal with its own page: a status and message keys.
type pageError struct {
	status         int
	title, message string
}

func (e *pageError) Error() string { return "web: " + e.title }

var (
	errForbidden = &pageError{fiber.StatusForbidden, "error.403.title", "error.403.message"}
	errCSRF      = &pageError{fiber.StatusForbidden, "error.csrf.title", "error.csrf.message"}
	errSuspended = &pageError{fiber.StatusForbidden, "error.suspended.title", "error.suspended.message"}
	errLinkGone  = &pageError{fiber.StatusNotFound, "error.invitation.title", "error.invitation.message"}
	errNotFound  = &pageError{fiber.StatusNotFound, "error.404.title", "error.404.message"}
	// errUnavailable is the database out of reach (stopped, restarting): a
	// 503 that says to try again shortly, answered as soon as the driver
	// gives up rather than after a long wait.
	errUnavailable = &pageError{fiber.StatusServiceUnavailable, "error.db.title", "error.db.message"}
)

// handleError is the one place errors become responses: a form error
// re-renders its form, models.ErrNotFound (and fiber's unknown route) is the
// 404 page, a refusal its page, anything else a logged 500 whose page shows
// the request id.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	c.Response().ResetBody()
	// The request's budget may be what ran out; the answer is still written
	// (templ stops rendering under a cancelled context).
	c.SetUserContext(context.WithoutCancel(c.UserContext()))
	if strings.HasPrefix(c.Path(), apiPrefix) {
		return s.apiFailure(c, err)
	}
	var fe *formError
	if errors.As(err, &fe) {
		return s.render(c, fe.status, fe.page)
	}
	pe := s.pageFor(err)
	v := views.ErrorView{Status: pe.status, Title: pe.title, Message: pe.message, Home: "/"}
	if pe == errUnavailable {
		s.log.Warn("request failed: database unavailable", "request_id", requestID(c), "method", c.Method(), "path", loggedPath(c), "err", err)
		c.Set(fiber.HeaderRetryAfter, "5")
		v.RequestID = requestID(c)
	} else if pe.status >= 500 {
		s.log.Error("request failed", "request_id", requestID(c), "method", c.Method(), "path", loggedPath(c), "err", err)
		v.RequestID = requestID(c)
	}
	return s.render(c, pe.status, views.ErrorPage(v))
}

func (s *Server) pageFor(err error) *pageError {
	var pe *pageError
	var fe *fiber.Error
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.Is(err, models.ErrNotFound):
		return errNotFound
	case models.IsUnavailable(err), errors.Is(err, context.DeadlineExceeded):
		// Past the request's budget the database is, in practice, unavailable.
		return errUnavailable
	case errors.As(err, &fe) && fe.Code == fiber.StatusNotFound:
		return errNotFound
	case errors.As(err, &fe) && fe.Code == fiber.StatusMethodNotAllowed:
		return &pageError{fe.Code, "error.405.title", "error.405.message"}
	case errors.As(err, &fe) && fe.Code < 500:
		return &pageError{fe.Code, "error.400.title", "error.400.message"}
	}
	return &pageError{fiber.StatusInternalServerError, "error.500.title", "error.500.message"}
}
