package benchkit

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
)

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)"`)

// SignIn signs the client (its own cookie jar, redirects not followed) in at
// base as email: the sign-in page's CSRF token, then the form (303).
func SignIn(c *http.Client, base, email, password string) error {
	token, err := CSRFToken(c, base+"/signin")
	if err != nil {
		return err
	}
	res, err := c.PostForm(base+"/signin", url.Values{"email": {email}, "password": {password}, "_csrf": {token}})
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("sign in as %s: %d", email, res.StatusCode)
	}
	return nil
}

// CSRFToken gets a page (200) and reads its CSRF token.
func CSRFToken(c *http.Client, u string) (string, error) {
	res, err := c.Get(u)
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d %v", u, res.StatusCode, err)
	}
	m := csrfMeta.FindSubmatch(body)
	if m == nil {
		return "", fmt.Errorf("GET %s: no CSRF token", u)
	}
	return html.UnescapeString(string(m[1])), nil
}
