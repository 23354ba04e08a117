package caddyoauth

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// The authorization endpoint (RFC 6749 §3.1, §4.1) and its pages. GET
// {prefix}/authorize validates the request; without a session it shows the
// login page, which posts to {prefix}/login and comes back; with one, it
// shows the consent page (unless the person remembered their consent),
// which posts to {prefix}/consent; an approval sends the person back to the
// client with a code. The forms carry the request itself, re-validated on
// every step, so nothing is kept between the pages but the session.

// maxPageFormBytes caps the body of a login or consent form.
const maxPageFormBytes = 16 << 10

// serveAuthorize handles GET {prefix}/authorize.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "The authorization endpoint accepts GET requests.")
		return
	}
	req, ok := s.authorizeRequest(w, r, r.URL.RawQuery, http.StatusFound)
	if !ok {
		return
	}
	now := s.app.clock()
	sess, err := s.app.currentSession(r.Context(), r, now)
	if err != nil {
		s.unavailableRedirect(w, r, req, http.StatusFound, err)
		return
	}
	if sess == nil {
		s.showLogin(w, r, req, http.StatusOK, "", "")
		return
	}
	s.afterLogin(w, r, req, sess, http.StatusFound)
}

// authorizeRequest validates a request and answers its refusal: a page
// while the client or redirect URI is unverified, a redirect after.
func (s *Server) authorizeRequest(w http.ResponseWriter, r *http.Request, raw string, redirectStatus int) (*authzRequest, bool) {
	req, aerr := s.app.parseAuthorizeRequest(r.Context(), raw)
	if aerr == nil {
		return req, true
	}
	if aerr.page {
		s.errorPage(w, aerr.status, "This sign-in request cannot be completed", aerr.desc)
		return nil, false
	}
	http.Redirect(w, r, s.app.errorRedirect(req, aerr), redirectStatus)
	return nil, false
}

func (s *Server) unavailableRedirect(w http.ResponseWriter, r *http.Request, req *authzRequest, status int, err error) {
	s.logger.Warn("authorization request failed: the store is unavailable", zap.String("client_id", req.client.ID), zap.Error(err))
	http.Redirect(w, r, s.app.errorRedirect(req, redirectError(errTemporarilyUnavailable, "the authorization server's store is unavailable; retry shortly")), status)
}

// afterLogin continues a request for a signed-in person: consent page, or
// straight back to the client with a code if consent was remembered. A
// public client always gets the consent page: anyone can send its
// client_id, and a native app's loopback or private-use redirect URI can
// be claimed by another app, so an earlier approval proves nothing about
// who asks now (RFC 8252 §8.6, RFC 6749 §10.2).
func (s *Server) afterLogin(w http.ResponseWriter, r *http.Request, req *authzRequest, sess *session, redirectStatus int) {
	if req.client.Public {
		s.showConsent(w, r, req, sess)
		return
	}
	ok, err := s.app.consented(r.Context(), sess.User, req.client.ID, req.scopes)
	if err != nil {
		s.unavailableRedirect(w, r, req, redirectStatus, err)
		return
	}
	if ok {
		s.sendCode(w, r, req, sess, redirectStatus)
		return
	}
	s.showConsent(w, r, req, sess)
}

// sendCode issues a code and sends the person back to the client.
func (s *Server) sendCode(w http.ResponseWriter, r *http.Request, req *authzRequest, sess *session, status int) {
	code, err := s.app.issueCode(r.Context(), req, sess)
	if err != nil {
		s.unavailableRedirect(w, r, req, status, err)
		return
	}
	http.Redirect(w, r, s.app.redirectBack(req, url.Values{"code": {code}}), status)
}

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
	nonce := newNonce()
	data := loginPageData{
		pageData: pageData{nonce}, Action: s.loginPath, Request: req.query, CSRF: csrfToken(secret, formLogin),
		ClientName: clientDisplayName(req.client), Username: username, Error: message,
		SignupURL: s.signupURL(req),
	}
	s.renderPage(w, status, "login", data, nonce, req.redirectURI)
}

// consentPageData is the data of consent.html.
type consentPageData struct {
	pageData
	Action, Request, CSRF string
	ClientName, ClientID  string
	UserName              string
	Scopes                []scopeLine
	RedirectOrigin        string
	CanRemember           bool
}

func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, req *authzRequest, sess *session) {
	secret, ok := s.formSecret(w, r)
	if !ok {
		return
	}
	nonce := newNonce()
	data := consentPageData{
		pageData: pageData{nonce}, Action: s.consentPath, Request: req.query, CSRF: csrfToken(secret, formConsent),
		ClientName: clientDisplayName(req.client), ClientID: req.client.ID, UserName: sess.user.displayName(),
		Scopes: s.app.describeScopes(req.scopes), RedirectOrigin: cspSource(req.redirectURI),
		CanRemember: !req.client.Public,
	}
	s.renderPage(w, http.StatusOK, "consent", data, nonce, req.redirectURI)
}

func clientDisplayName(c *Client) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// readPageForm parses a page's form POST and checks its CSRF token. On
// failure it has answered.
func (s *Server) readPageForm(w http.ResponseWriter, r *http.Request, form string) (url.Values, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "This address accepts form submissions only.")
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxPageFormBytes)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return nil, false
	}
	if !checkCSRF(r, r.PostForm.Get(csrfField), form) {
		s.errorPage(w, http.StatusForbidden, "This form has expired", "The form was not sent from this site's page, or your browser's cookies were cleared. Go back, reload the page and try again.")
		return nil, false
	}
	return r.PostForm, true
}

// serveLogin handles the login form (POST {prefix}/login).
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	form, req, ok := s.readRequestForm(w, r, formLogin)
	if !ok {
		return
	}
	username, password := form.Get("username"), form.Get("password")
	if len(username) > 256 || len(password) > 1024 {
		s.showLogin(w, r, req, http.StatusBadRequest, "", loginFailed)
		return
	}
	ip := clientIP(r)
	delay, retryAfter := s.app.throttle.verdict(username, ip)
	if retryAfter > 0 {
		s.logger.Warn("sign-in refused: too many failures", zap.String("remote_ip", ip))
		w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
		s.showLogin(w, r, req, http.StatusTooManyRequests, username, "Too many failed sign-in attempts. Try again later.")
		return
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	user, ok, err := s.app.checkLogin(r.Context(), username, password)
	if errors.Is(err, errBusy) {
		// Not a failure: the password was not checked. Not counted.
		w.Header().Set("Retry-After", "2")
		s.showLogin(w, r, req, http.StatusServiceUnavailable, username, "The server is busy. Please try again in a moment.")
		return
	}
	if err != nil {
		s.unavailableRedirect(w, r, req, http.StatusSeeOther, err)
		return
	}
	if !ok {
		s.app.throttle.failed(username, ip)
		s.logger.Info("sign-in failed", zap.String("remote_ip", ip))
		s.showLogin(w, r, req, http.StatusBadRequest, username, loginFailed)
		return
	}
	s.app.throttle.succeeded(username)
	s.continueSignedIn(w, r, req, user.Username, "signed in")
}

// readRequestForm is readPageForm for the forms that carry an
// authorization request (login, consent, sign-up): it also validates the
// request again. On failure it has answered.
func (s *Server) readRequestForm(w http.ResponseWriter, r *http.Request, form string) (url.Values, *authzRequest, bool) {
	values, ok := s.readPageForm(w, r, form)
	if !ok {
		return nil, nil, false
	}
	req, ok := s.authorizeRequest(w, r, values.Get("request"), http.StatusSeeOther)
	return values, req, ok
}

// continueSignedIn starts a session for username (always a new id: no
// session fixation) and sends the browser back to the authorization
// request, which goes on to consent.
func (s *Server) continueSignedIn(w http.ResponseWriter, r *http.Request, req *authzRequest, username, event string) {
	if err := s.app.startSession(r.Context(), w, username, s.app.clock()); err != nil {
		s.unavailableRedirect(w, r, req, http.StatusSeeOther, err)
		return
	}
	s.logger.Info(event, zap.String("user", username), zap.String("client_id", req.client.ID))
	http.Redirect(w, r, s.authorizePath+"?"+req.query, http.StatusSeeOther)
}

// loginFailed is the one message for an unknown user and a wrong password.
const loginFailed = "The username or password is incorrect."

// clientIP is the client address Caddy determined (trusted proxies
// applied), or the connection's.
func clientIP(r *http.Request) string {
	if v, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && v != "" {
		return v
	}
	return r.RemoteAddr
}

// serveConsent handles the consent form (POST {prefix}/consent).
func (s *Server) serveConsent(w http.ResponseWriter, r *http.Request) {
	form, req, ok := s.readRequestForm(w, r, formConsent)
	if !ok {
		return
	}
	sess, err := s.app.currentSession(r.Context(), r, s.app.clock())
	if err != nil {
		s.unavailableRedirect(w, r, req, http.StatusSeeOther, err)
		return
	}
	if sess == nil {
		s.showLogin(w, r, req, http.StatusOK, "", "Your session has ended. Please sign in again.")
		return
	}
	switch form.Get("decision") {
	case "allow":
	case "deny":
		s.logger.Info("consent denied", zap.String("user", sess.User), zap.String("client_id", req.client.ID))
		http.Redirect(w, r, s.app.errorRedirect(req, redirectError(errAccessDenied, "the resource owner denied the request")), http.StatusSeeOther)
		return
	default:
		s.errorPage(w, http.StatusBadRequest, "Bad request", "The form did not say whether you allow the request.")
		return
	}
	if form.Get("remember") == "yes" && !req.client.Public {
		if err := s.app.rememberConsent(r.Context(), sess.User, req.client.ID, req.scopes); err != nil && !errors.Is(err, ErrNotFound) {
			s.logger.Warn("remembering a consent failed", zap.Error(err))
		}
	}
	s.logger.Info("consent given", zap.String("user", sess.User), zap.String("client_id", req.client.ID))
	s.sendCode(w, r, req, sess, http.StatusSeeOther)
}
