package caddyoauth

import (
	"errors"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddyapigw/gateway/internal/oauthstore"
	"github.com/caddyapigw/gateway/internal/reqinfo"
	"golang.org/x/crypto/bcrypt"
)

// Self-service sign-up at {prefix}/signup, off unless the `signup` option
// is set. It is reached from the login page of an authorization request
// and returns to that request signed in. Accounts are kept in the store
// (users_store.go); the password only as a bcrypt hash.

// SignupConfig turns the sign-up page on and sets its password rule.
type SignupConfig struct {
	// MinPasswordLength is the shortest password accepted, in characters.
	// Default 12, at least 8 (NIST SP 800-63B §3.1.1.2 asks for 8 or more;
	// 15 where passwords are the only factor).
	MinPasswordLength int `json:"min_password_length,omitempty"`
}

const (
	defaultMinPasswordLength = 12
	maxPasswordBytes         = 72 // bcrypt's limit; longer would be cut silently
	signupBcryptCost         = 12
)

// signupPageData is the data of signup.html.
type signupPageData struct {
	pageData
	Action, Request, CSRF string
	ClientName, Error     string
	Username, Name, Email string
	MinPasswordLength     int
}

func (s *Server) showSignup(w http.ResponseWriter, r *http.Request, req *authzRequest, status int, d signupPageData) {
	secret, ok := s.formSecret(w, r)
	if !ok {
		return
	}
	nonce := newNonce()
	d.pageData, d.Action, d.Request, d.CSRF = pageData{nonce}, s.signupPath, req.query, csrfToken(secret, formSignup)
	d.ClientName, d.MinPasswordLength = clientDisplayName(req.client), s.app.Signup.MinPasswordLength
	s.renderPage(w, status, "signup", d, nonce, req.redirectURI)
}

// serveSignup shows the form on GET (?request=<authorization request>) and
// creates the account on POST.
func (s *Server) serveSignup(w http.ResponseWriter, r *http.Request) {
	if s.app.Signup == nil {
		s.errorPage(w, http.StatusNotFound, "Not available", "This server does not offer sign-up.")
		return
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		req, ok := s.authorizeRequest(w, r, r.URL.Query().Get("request"), http.StatusFound)
		if ok {
			s.showSignup(w, r, req, http.StatusOK, signupPageData{})
		}
		return
	}
	form, req, ok := s.readRequestForm(w, r, formSignup)
	if !ok {
		return
	}
	d := signupPageData{Username: form.Get("username"), Name: strings.TrimSpace(form.Get("name")), Email: strings.TrimSpace(form.Get("email"))}
	ip := reqinfo.ClientIP(r)
	// Sign-ups count against the address's sign-in budget, so one address
	// cannot create accounts without limit; held from here, so that
	// sign-ups in flight together count each other (throttle.go).
	if retryAfter := s.app.throttle.addressAttempt(ip); retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
		d.Error = "Too many attempts from your network. Try again later."
		s.showSignup(w, r, req, http.StatusTooManyRequests, d)
		return
	}
	counted := false
	defer func() { s.app.throttle.settleAddress(ip, counted) }()
	password := form.Get("password")
	if msg := s.checkSignup(d.Username, d.Name, d.Email, password); msg != "" {
		d.Error = msg
		s.showSignup(w, r, req, http.StatusBadRequest, d)
		return
	}
	if !acquireSlowHashSlot() {
		d.Error = "The server is busy. Please try again."
		s.showSignup(w, r, req, http.StatusServiceUnavailable, d)
		return
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), signupBcryptCost)
	releaseSlowHashSlot()
	if err != nil {
		s.errorPage(w, http.StatusInternalServerError, "Internal error", "Please try again.")
		return
	}
	u := &User{Username: d.Username, Name: d.Name, Email: d.Email, PasswordHash: string(hash)}
	counted = true
	err = s.app.directory.create(r.Context(), u)
	switch {
	case errors.Is(err, oauthstore.ErrUsernameTaken):
		d.Error = "That username is taken."
	case errors.Is(err, oauthstore.ErrEmailTaken):
		// Says the address has an account; the owner of the address
		// learns it, and so does anyone who types it. A server that must
		// hide it would confirm sign-ups by e-mail, which this one does
		// not send.
		d.Error = "An account with that e-mail address exists. Sign in instead."
	case err != nil:
		s.unavailableRedirect(w, r, req, http.StatusSeeOther, err)
		return
	}
	if d.Error != "" {
		s.showSignup(w, r, req, http.StatusConflict, d)
		return
	}
	s.continueSignedIn(w, r, req, u.Username, "signed up")
}

// checkSignup applies the account rules and returns what is wrong, or "".
func (s *Server) checkSignup(username, name, email, password string) string {
	return checkAccount(s.app.Signup.MinPasswordLength, username, name, email, password)
}

// checkAccount is the account rule of the sign-up page and of accounts
// made through the admin API: what is wrong, or "".
func checkAccount(minPasswordLength int, username, name, email, password string) string {
	switch {
	case !usernamePattern.MatchString(username):
		return "A username is 1 to 64 letters, digits and . _ @ + -"
	case utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name) || strings.ContainsAny(name, "\x00\r\n"):
		return "The name is too long or has characters that are not allowed."
	}
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email || len(email) > 254 {
		return "Enter a plain e-mail address such as name@example.com."
	}
	n := utf8.RuneCountInString(password)
	lower := strings.ToLower(password)
	switch {
	case n < minPasswordLength:
		return "The password needs at least " + strconv.Itoa(minPasswordLength) + " characters."
	case len(password) > maxPasswordBytes:
		return "The password is longer than 72 bytes, which bcrypt cannot use."
	case strings.Contains(lower, strings.ToLower(username)) || strings.Contains(lower, strings.ToLower(email)):
		return "The password must not contain your username or e-mail address."
	case strings.Count(password, password[:1]) == len(password):
		return "The password must not repeat one character."
	}
	return ""
}

// signupURL is the login page's link to the sign-up page, or "" when
// sign-up is off.
func (s *Server) signupURL(req *authzRequest) string {
	if s.app.Signup == nil {
		return ""
	}
	return s.signupPath + "?" + url.Values{"request": {req.query}}.Encode()
}
