package caddyoauth

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyapigw/gateway/internal/reqinfo"
	"go.uber.org/zap"
)

// The login page: {prefix}/login checks the username and password, with
// the sign-in throttle in front (throttle.go), and starts a session; a
// browser that signed in before is known by its device cookie (device.go).

// loginPageData is the data of login.html.
type loginPageData struct {
	pageData
	Action, Request, CSRF string
	ClientName            string
	Username, Error       string
	SignupURL             string
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, req *authzRequest, status int, username, message string) {
	secret, ok := s.formSecret(w, r)
	if !ok {
		return
	}
	if username == "" { // OpenID Connect Core §3.1.2.1 login_hint
		username = req.oidc.loginHint
		if username == "" {
			username = req.oidc.hintSub
		}
	}
	nonce := newNonce()
	data := loginPageData{
		pageData: pageData{nonce}, Action: s.loginPath, Request: req.query, CSRF: csrfToken(secret, formLogin),
		ClientName: clientDisplayName(req.client), Username: username, Error: message,
		SignupURL: s.signupURL(req),
	}
	s.renderPage(w, status, "login", data, nonce, req.redirectURI)
}

// serveLogin handles the login form (POST {prefix}/login).
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	form, req, ok := s.readRequestForm(w, r, formLogin)
	if !ok {
		return
	}
	username, password := form.Get("username"), form.Get("password")
	if len(username) > 256 || len(password) > 1024 {
		signins.Inc(signinWrongPassword)
		s.showLogin(w, r, req, http.StatusBadRequest, "", loginFailed)
		return
	}
	ip := reqinfo.ClientIP(r)
	// A device cookie set at an earlier sign-in to this account, claimed
	// for this attempt, exempts it from the account's failure count and
	// gives it the reserved slow-hash slots (device.go).
	dev := s.claimKnownDevice(r, username)
	// How the attempt ended, for the throttle (attempt, settle) and the
	// device cookie's count.
	outcome := attemptNotChecked
	if dev != nil {
		defer func() { s.app.throttle.releaseDevice(dev.id(), outcome) }()
	}
	delay, retryAfter := s.app.throttle.attempt(username, ip, dev != nil)
	if retryAfter > 0 {
		if dev == nil && s.app.throttle.accountOver(username) {
			signins.Inc(signinLocked)
		} else {
			signins.Inc(signinThrottled)
		}
		s.logger.Warn("sign-in refused: too many failures", zap.String("remote_ip", ip))
		s.app.audit.emit(r, eventAccountLocked, map[string]any{"user": username, "client_id": req.client.ID})
		w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
		s.showLogin(w, r, req, http.StatusTooManyRequests, username, "Too many failed sign-in attempts. Try again later.")
		return
	}
	// Held as a failure until the check says otherwise (attempt).
	defer func() { s.app.throttle.settle(username, ip, dev != nil, outcome) }()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	known := func(u *User) bool { return dev != nil && dev.signedFor(u, s.app.clock()) }
	user, ok, err := s.app.directory.check(r.Context(), username, password, known)
	switch {
	case err == nil && !ok:
		outcome = attemptFailed
	case err == nil && ok:
		outcome = attemptSucceeded
	}
	if errors.Is(err, errBusy) {
		// Not a failure: the password was not checked. Not counted
		// by the throttle.
		signins.Inc(signinBusy)
		w.Header().Set("Retry-After", "2")
		s.showLogin(w, r, req, http.StatusServiceUnavailable, username, "The server is busy. Please try again in a moment.")
		return
	}
	if err != nil {
		signins.Inc(signinError)
		s.unavailableRedirect(w, r, req, http.StatusSeeOther, err)
		return
	}
	if !ok {
		signins.Inc(signinWrongPassword)
		s.logger.Info("sign-in failed", zap.String("remote_ip", ip))
		s.app.audit.emit(r, eventLoginFailed, map[string]any{"user": username, "client_id": req.client.ID, "reason": "wrong username or password"})
		s.showLogin(w, r, req, http.StatusBadRequest, username, loginFailed)
		return
	}
	s.setDeviceCookie(w, user)
	signins.Inc(signinSuccess)
	s.app.audit.emit(r, eventLoginSucceeded, map[string]any{"user": user.Username, "client_id": req.client.ID})
	s.continueSignedIn(w, r, req, user.Username, "signed in")
}

// continueSignedIn starts a session for username (always a new id: no
// session fixation) and sends the browser back to the authorization
// request, which goes on to consent.
func (s *Server) continueSignedIn(w http.ResponseWriter, r *http.Request, req *authzRequest, username, event string) {
	if err := s.startSession(r.Context(), w, username); err != nil {
		s.unavailableRedirect(w, r, req, http.StatusSeeOther, err)
		return
	}
	s.logger.Info(event, zap.String("user", username), zap.String("client_id", req.client.ID))
	http.Redirect(w, r, s.authorizePath+"?"+signedInQuery(req.query), http.StatusSeeOther)
}

// loginFailed is the one message for an unknown user and a wrong password.
const loginFailed = "The username or password is incorrect."
