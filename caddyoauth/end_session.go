package caddyoauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"go.uber.org/zap"
)

// The end-session endpoint, {prefix}/end_session (OpenID Connect
// RP-Initiated Logout 1.0): a relying party sends the person here to sign
// out. The login session ends without a question when the request's
// id_token_hint is an ID token of this session's person (and session, when
// it names one: sid); otherwise the person is sent to the account page,
// whose sign-out button asks them (§2: the OP SHOULD ask; a link anyone
// can make must not sign people out). Afterwards the person goes to the
// post_logout_redirect_uri, with state, when it is one the client
// registered (§3), or sees the signed-out page.

// serveEndSession handles GET and POST {prefix}/end_session.
func (s *Server) serveEndSession(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		s.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "The sign-out address accepts GET and POST requests.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxPageFormBytes)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Bad request", "The sign-out request is malformed.")
		return
	}
	ctx := r.Context()
	redirect, hint, err := s.endSessionRequest(r, r.Form)
	if err != nil {
		var unavail errStoreDown
		if errors.As(err, &unavail) {
			s.errorPage(w, http.StatusServiceUnavailable, "Temporarily unavailable", "The service is temporarily unavailable. Please try again shortly.")
			return
		}
		s.errorPage(w, http.StatusBadRequest, "This sign-out request cannot be completed", err.Error())
		return
	}
	sess, err := s.currentSession(ctx, r)
	if err != nil {
		s.errorPage(w, http.StatusServiceUnavailable, "Temporarily unavailable", "The service is temporarily unavailable. Please try again shortly.")
		return
	}
	if sess != nil {
		if hint == nil || hint.sub != sess.User || (hint.sid != "" && hint.sid != sess.SID) {
			// Not shown to come from this session's relying party: the
			// person decides, on the account page.
			http.Redirect(w, r, s.accountPath, http.StatusSeeOther)
			return
		}
		if err := s.endSession(ctx, w, r); err != nil {
			s.logger.Warn("deleting a session from the store failed; its cookie is cleared", zap.Error(err))
		}
		s.logger.Info("signed out at a relying party's request", zap.String("user", sess.User), zap.Strings("aud", hint.aud))
	}
	if redirect != "" {
		http.Redirect(w, r, redirect, http.StatusSeeOther)
		return
	}
	nonce := newNonce()
	s.renderPage(w, http.StatusOK, "signedout", pageData{nonce}, nonce)
}

// refusal is a refused sign-out request, in words for the person.
type refusal string

func (r refusal) Error() string { return string(r) }

// errStoreDown is a store failure while reading the request.
type errStoreDown struct{ error }

// endSessionRequest validates the parameters (RP-Initiated Logout §2, §3)
// and returns where to send the person afterwards ("" for the signed-out
// page) and the verified id_token_hint (nil without one). Errors are for
// the person to read.
func (s *Server) endSessionRequest(r *http.Request, q url.Values) (string, *idHint, error) {
	for _, k := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state"} {
		if len(q[k]) > 1 {
			return "", nil, refusal("The request has more than one " + k + ".")
		}
	}
	var hint *idHint
	if tok := q.Get("id_token_hint"); tok != "" {
		h, err := s.app.readIDTokenHint(r.Context(), tok)
		if err != nil {
			return "", nil, refusal("The request carries an ID token this server did not issue.")
		}
		hint = h
	}
	clientID := q.Get("client_id")
	switch {
	case hint != nil && clientID != "" && !slices.Contains(hint.aud, clientID):
		return "", nil, refusal("The ID token was issued to another application.")
	case hint != nil && clientID == "" && len(hint.aud) == 1:
		clientID = hint.aud[0]
	}
	target := q.Get("post_logout_redirect_uri")
	if target == "" {
		return "", hint, nil
	}
	if clientID == "" {
		return "", nil, refusal("The request names an address to return to but no application.")
	}
	c, _, ok, err := s.app.registry.lookup(r.Context(), clientID)
	if err != nil {
		return "", nil, errStoreDown{err}
	}
	if !ok || !slices.Contains(c.PostLogoutRedirectURIs, target) {
		return "", nil, refusal("The application asked to send you to an address it has not registered.")
	}
	u, err := url.Parse(target)
	if err != nil { // checked at provision
		return "", nil, err
	}
	if st := q.Get("state"); st != "" {
		v := u.Query()
		v.Set("state", st)
		u.RawQuery = v.Encode()
	}
	return u.String(), hint, nil
}

// checkPostLogoutRedirectURIs applies the rules of redirect URIs to
// post_logout_redirect_uris, which only a client that signs people in
// (the authorization code grant) has a use for.
func (c *Client) checkPostLogoutRedirectURIs(code bool) error {
	if len(c.PostLogoutRedirectURIs) > 0 && !code {
		return errors.New("post_logout_redirect_uris: only used with the authorization_code grant")
	}
	for i, u := range c.PostLogoutRedirectURIs {
		if err := validateRedirectURI(u); err != nil {
			return fmt.Errorf("post_logout_redirect_uris: %v", err)
		}
		if slices.Contains(c.PostLogoutRedirectURIs[:i], u) {
			return fmt.Errorf("post_logout_redirect_uris: %q listed twice", u)
		}
	}
	return nil
}
