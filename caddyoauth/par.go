package caddyoauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthstore"
)

// The pushed authorization request endpoint (RFC 9126): a client posts its
// authorization request, authenticated as at the token endpoint, and gets
// a request_uri to send the person's browser with instead of the
// parameters. The request never travels through the browser, so it cannot
// be read or changed there, and it is validated before the person sees a
// page.

// parLifetime is how long a request_uri can be used (RFC 9126 §2.2:
// "short", the example uses 60 s).
const parLifetime = 60 * time.Second

// requestURIPrefix starts every request_uri (RFC 9126 §2.2).
const requestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// errPushedUsed reports a pushed request that already yielded a code.
var errPushedUsed = errors.New("pushed authorization request already used")

// clientAuthParams are the form parameters of client authentication,
// which are not part of the authorization request pushed with them.
var clientAuthParams = []string{"client_secret", "client_assertion", "client_assertion_type"}

// parResponse is the 201 answer (RFC 9126 §2.2).
type parResponse struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int64  `json:"expires_in"`
}

// servePAR handles POST {prefix}/par.
func (s *Server) servePAR(w http.ResponseWriter, r *http.Request) {
	a := s.app
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, &oauthError{Status: http.StatusMethodNotAllowed, Code: errInvalidRequest, Description: "the PAR endpoint accepts POST only"})
		return
	}
	form, oerr := parseForm(w, r)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	cc, oerr := readClientCredentials(r, form)
	if oerr != nil {
		writeOAuthError(w, challengeIfBasic(oerr, r))
		return
	}
	cc.audiences = s.assertionAud
	client, oerr := a.authenticate(r.Context(), cc)
	if oerr != nil {
		writeOAuthError(w, challengeIfBasic(oerr, r))
		return
	}
	// §2.1: request_uri is not a parameter of a pushed request.
	if form.Has("request_uri") {
		writeOAuthError(w, badRequest(errInvalidRequest, "request_uri must not be pushed"))
		return
	}
	ctx := r.Context()
	if len(r.Header.Values("DPoP")) > 0 {
		// RFC 9449 §10.1: a proof at the PAR endpoint binds the code, as
		// dpop_jkt would.
		var oerr *oauthError
		if ctx, oerr = s.tokenProof(w, r, client); oerr != nil {
			writeOAuthError(w, oerr)
			return
		}
	}
	q := url.Values{}
	for k, v := range form {
		q[k] = v
	}
	for _, k := range clientAuthParams {
		q.Del(k)
	}
	q.Set("client_id", client.ID)
	if jkt := boundKey(ctx); jkt != "" {
		if q.Has("dpop_jkt") && q.Get("dpop_jkt") != jkt {
			writeOAuthError(w, badRequest(errInvalidDPoPProof, "dpop_jkt differs from the DPoP proof's key (RFC 9449 section 10.1)"))
			return
		}
		q.Set("dpop_jkt", jkt)
	}
	if a.fapi2() && !q.Has("redirect_uri") {
		writeOAuthError(w, badRequest(errInvalidRequest, "profile fapi2: redirect_uri is required in a pushed request"))
		return
	}
	query := q.Encode()
	// Validated now, as the authorization endpoint will again (§2.1): a
	// bad request is the client's error, answered here, not a page the
	// person lands on.
	if _, aerr := s.parseAuthorize(ctx, query, true); aerr != nil {
		writeOAuthError(w, badRequest(aerr.code, aerr.desc))
		return
	}
	id, err := randomID()
	if err != nil {
		writeOAuthError(w, &oauthError{Status: http.StatusInternalServerError, Code: errServerError})
		return
	}
	if err := a.rec.Pushed.Put(ctx, id, &oauthstore.PushedRequest{ClientID: client.ID, Query: query}, parLifetime); err != nil {
		s.logger.Warn("storing a pushed authorization request failed", zap.Error(err))
		writeOAuthError(w, unavailable())
		return
	}
	noStore(w.Header())
	writeJSON(w, http.StatusCreated, parResponse{RequestURI: requestURIPrefix + id, ExpiresIn: int64(parLifetime / time.Second)})
}

// pushedRequest resolves the request_uri of an authorization request (RFC
// 9126 §4) to the parameters pushed with it. A request_uri that is
// unknown, expired, used, or pushed by another client than client_id is
// refused with a page: nothing about the redirect URI is known yet.
func (s *Server) pushedRequest(ctx context.Context, q url.Values) (url.Values, *authzError) {
	ref := q.Get("request_uri")
	id := pushedID(ref)
	if len(q["request_uri"]) > 1 || id == "" {
		return nil, pageError(http.StatusBadRequest, "The sign-in request is malformed (request_uri).")
	}
	p, err := s.app.rec.Pushed.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, pageError(http.StatusBadRequest, "This sign-in request has expired or was already used. Please start again from the application.")
	}
	if err != nil {
		return nil, pageError(http.StatusServiceUnavailable, "The service is temporarily unavailable. Please try again shortly.")
	}
	if p.ClientID != q.Get("client_id") {
		return nil, pageError(http.StatusBadRequest, "This sign-in request belongs to another application.")
	}
	pushed, err := url.ParseQuery(p.Query)
	if err != nil {
		return nil, pageError(http.StatusBadRequest, "The sign-in request is malformed.")
	}
	return pushed, nil
}

// pushedID is the id in a request_uri this server made, or "".
func pushedID(ref string) string {
	id, ok := strings.CutPrefix(ref, requestURIPrefix)
	if !ok || id == "" || len(id) > 128 {
		return ""
	}
	return id
}
