package caddyoauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/caddyapigw/gateway/internal/oauthstore"
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
	sess, err := s.currentSession(r.Context(), r)
	if err != nil {
		s.unavailableRedirect(w, r, req, http.StatusFound, err)
		return
	}
	if sess != nil && req.oidc.needsSignIn(sess, s.app.clock()) {
		sess = nil // prompt=login, max_age, id_token_hint (OpenID Connect Core §3.1.2.1)
	}
	if sess == nil {
		if req.oidc.prompts("none") { // OpenID Connect Core §3.1.2.6
			http.Redirect(w, r, s.errorRedirect(req, redirectError(errLoginRequired, "the person must sign in")), http.StatusFound)
			return
		}
		s.showLogin(w, r, req, http.StatusOK, "", "")
		return
	}
	s.afterLogin(w, r, req, sess, http.StatusFound)
}

// authorizeRequest validates a request and answers its refusal: a page
// while the client or redirect URI is unverified, a redirect after.
func (s *Server) authorizeRequest(w http.ResponseWriter, r *http.Request, raw string, redirectStatus int) (*authzRequest, bool) {
	req, aerr := s.parseAuthorizeRequest(r.Context(), raw)
	if aerr == nil {
		return req, true
	}
	if aerr.page {
		s.errorPage(w, aerr.status, "This sign-in request cannot be completed", aerr.desc)
		return nil, false
	}
	http.Redirect(w, r, s.errorRedirect(req, aerr), redirectStatus)
	return nil, false
}

func (s *Server) unavailableRedirect(w http.ResponseWriter, r *http.Request, req *authzRequest, status int, err error) {
	s.logger.Warn("authorization request failed: the store is unavailable", zap.String("client_id", req.client.ID), zap.Error(err))
	http.Redirect(w, r, s.errorRedirect(req, redirectError(errTemporarilyUnavailable, "the authorization server's store is unavailable; retry shortly")), status)
}

// afterLogin continues a request for a signed-in person: consent page, or
// straight back to the client with a code if consent was remembered. A
// public client always gets the consent page: anyone can send its
// client_id, and a native app's loopback or private-use redirect URI can
// be claimed by another app, so an earlier approval proves nothing about
// who asks now (RFC 8252 §8.6, RFC 6749 §10.2).
func (s *Server) afterLogin(w http.ResponseWriter, r *http.Request, req *authzRequest, sess *session, redirectStatus int) {
	// prompt=none shows no page; prompt=consent asks again (OpenID
	// Connect Core §3.1.2.1).
	consentPage := func() {
		if req.oidc.prompts("none") {
			http.Redirect(w, r, s.errorRedirect(req, redirectError(errConsentRequired, "the person must approve the request")), redirectStatus)
			return
		}
		s.showConsent(w, r, req, sess)
	}
	if req.client.Public || req.oidc.prompts("consent") {
		consentPage()
		return
	}
	ok, err := s.consented(r.Context(), sess.User, req.client.ID, req.scopes)
	if err != nil {
		s.unavailableRedirect(w, r, req, redirectStatus, err)
		return
	}
	if ok {
		s.sendCode(w, r, req, sess, redirectStatus)
		return
	}
	consentPage()
}

// sendCode issues a code and sends the person back to the client.
func (s *Server) sendCode(w http.ResponseWriter, r *http.Request, req *authzRequest, sess *session, status int) {
	code, err := s.issueCode(r.Context(), req, sess)
	if errors.Is(err, errPushedUsed) {
		http.Redirect(w, r, s.errorRedirect(req, redirectError(errInvalidRequest, "request_uri was already used")), status)
		return
	}
	if err != nil {
		s.unavailableRedirect(w, r, req, status, err)
		return
	}
	http.Redirect(w, r, s.redirectBack(req, url.Values{"code": {code}}), status)
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
	lift := bodyDeadline(w)
	err := r.ParseForm()
	lift()
	if err != nil {
		if isTimeout(err) {
			w.Header().Set("Connection", "close")
			s.errorPage(w, http.StatusRequestTimeout, "Request timeout", "The form came too slowly.")
			return nil, false
		}
		s.errorPage(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return nil, false
	}
	if !checkCSRF(r, r.PostForm.Get(csrfField), form) {
		s.errorPage(w, http.StatusForbidden, "This form has expired", "The form was not sent from this site's page, or your browser's cookies were cleared. Go back, reload the page and try again.")
		return nil, false
	}
	return r.PostForm, true
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

// issueCode stores a new code for an approved request (RFC 6749 §4.1.2)
// and returns it.
func (s *Server) issueCode(ctx context.Context, req *authzRequest, sess *session) (string, error) {
	a := s.app
	if req.pushed != "" {
		// RFC 9126 §4: a pushed request yields one code.
		if fresh, err := a.rec.Pushed.Take(ctx, pushedID(req.pushed)); err != nil {
			return "", err
		} else if !fresh {
			return "", errPushedUsed
		}
	}
	return a.rec.Codes.Issue(ctx, &oauthstore.Code{
		ClientID: req.client.ID, RedirectURI: req.redirectURI, RedirectGiven: req.redirectGiven,
		Challenge: req.challenge, User: sess.User, AuthTime: sess.AuthTime, Scopes: req.scopes,
		Resources: req.resources, Nonce: req.oidc.nonce, SID: sess.SID, DPoPJKT: req.dpopJKT,
	})
}
