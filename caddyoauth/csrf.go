package caddyoauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// CSRF protection for the forms (login, consent, logout, withdrawing a
// consent). Each browser gets a random 256-bit value in a __Host- cookie
// (so no other site, not even a sibling subdomain, can set it); each form
// carries HMAC-SHA256(that value, form name), which a page on another
// origin can neither read nor compute. A POST whose token does not match
// its own cookie is refused. This is the "signed double-submit cookie" of
// the OWASP CSRF cheat sheet, with no server-side state to share across a
// cluster.

const (
	csrfCookie = "__Host-oauth_csrf"
	csrfField  = "csrf_token"
)

// Form names bound into CSRF tokens.
const (
	formLogin    = "login"
	formConsent  = "consent"
	formLogout   = "logout"
	formWithdraw = "withdraw"
	formSignup   = "signup"
)

// csrfSecret returns the browser's CSRF cookie value, making and setting
// one if it has none.
func csrfSecret(w http.ResponseWriter, r *http.Request) (string, error) {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		return c.Value, nil
	}
	v, err := random256()
	if err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: v, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	return v, nil
}

func csrfToken(secret, form string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(form))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF reports whether the posted token belongs to this browser's
// cookie and this form, comparing in constant time.
func checkCSRF(r *http.Request, posted, form string) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) != 43 || posted == "" {
		return false
	}
	return hmac.Equal([]byte(posted), []byte(csrfToken(c.Value, form)))
}

// formSecret is csrfSecret for a page about to render a form; on failure
// it has answered with an error page.
func (s *Server) formSecret(w http.ResponseWriter, r *http.Request) (string, bool) {
	secret, err := csrfSecret(w, r)
	if err != nil {
		s.errorPage(w, http.StatusInternalServerError, "Internal error", "Please try again.")
		return "", false
	}
	return secret, true
}
