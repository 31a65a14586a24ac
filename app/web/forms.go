package web

import (
	"net/mail"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"oneid/models"
	"oneid/views"
)

// Password length, in characters. OWASP: at least 8 with no composition rules;
// a cap keeps a megabyte "password" from reaching the hasher.
const (
	minPassword = 10
	maxPassword = 128
)

// form reads trimmed values from a submitted form.
func form(c *fiber.Ctx, name string) string { return strings.TrimSpace(c.FormValue(name)) }

// checkEmail notes what is wrong with an email field, if anything.
func checkEmail(errs views.FieldErrors, field, email string) {
	switch {
	case email == "":
		errs.Add(field, "error.required")
	case len(email) > 254:
		errs.Add(field, "error.too_long")
	default:
		addr, err := mail.ParseAddress(email)
		if err != nil || addr.Address != email || !strings.Contains(email[strings.LastIndex(email, "@"):], ".") {
			errs.Add(field, "error.email")
		}
	}
}

// checkPassword notes what is wrong with a new password, if anything.
func checkPassword(errs views.FieldErrors, field, password string) {
	n := utf8.RuneCountInString(password)
	switch {
	case n == 0:
		errs.Add(field, "error.required")
	case n < minPassword:
		errs.Add(field, "error.password_short")
	case n > maxPassword:
		errs.Add(field, "error.password_long")
	}
}

// checkText notes a missing or too long text field.
func checkText(errs views.FieldErrors, field, value string, required bool, max int) {
	switch {
	case required && value == "":
		errs.Add(field, "error.required")
	case utf8.RuneCountInString(value) > max:
		errs.Add(field, "error.too_long")
	}
}

// checkRole notes a role that is not one of the three.
func checkRole(errs views.FieldErrors, field, role string) {
	if !models.ValidRole(role) {
		errs.Add(field, "error.role")
	}
}

// pathID reads a numeric id from the path; anything else is a page that does
// not exist.
func pathID(c *fiber.Ctx, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Params(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, models.ErrNotFound
	}
	return id, nil
}
