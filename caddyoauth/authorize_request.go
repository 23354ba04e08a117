package caddyoauth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// authzRequest is a validated authorization request (RFC 6749 §4.1.1).
type authzRequest struct {
	client        *Client
	redirectURI   string // where the person goes back to
	redirectGiven bool   // redirect_uri was in the request (RFC 6749 §4.1.3)
	state         string
	scopes        []string
	resources     []string   // RFC 8707 §2.1; nil for none (the default)
	challenge     string     // PKCE S256 code_challenge, or "" (RFC 7636 §4.3)
	query         string     // the request, re-encoded, carried through the forms
	oidc          oidcParams // OpenID Connect Core §3.1.2.1 (authorize_oidc.go)
	dpopJKT       string     // RFC 9449 §10: the DPoP key the code is bound to, or ""
	pushed        string     // the request_uri of a pushed request (RFC 9126), or ""
}

// authzError is a refused authorization request. Until the client and its
// redirect URI are verified the refusal is a page (no open redirect, RFC
// 6749 §4.1.2.1); after, it goes back to the client in the redirect.
type authzError struct {
	page   bool   // show an error page instead of redirecting
	status int    // for a page
	code   string // RFC 6749 §4.1.2.1 error code
	desc   string
}

func pageError(status int, desc string) *authzError {
	return &authzError{page: true, status: status, code: errInvalidRequest, desc: desc}
}

func redirectError(code, desc string) *authzError {
	return &authzError{code: code, desc: desc}
}

// Authorization endpoint error codes besides those of the token endpoint
// (RFC 6749 §4.1.2.1).
const (
	errAccessDenied            = "access_denied"
	errUnsupportedResponseType = "unsupported_response_type"
)

// maxAuthorizeQuery bounds an authorization request, so it fits the login
// and consent forms that carry it (maxPageFormBytes).
const maxAuthorizeQuery = 8 << 10

// authzParams are the parameters the endpoint reads; any of them sent
// twice makes the request invalid (RFC 6749 §3.1). `resource` may be sent
// more than once (RFC 8707 §2) and is read apart.
// The OpenID Connect parameters (Core §3.1.2.1) are among them; others
// of Core's (display, ui_locales, acr_values, claims_locales, claims) are
// ignored, which Core allows: claims_parameter_supported is false.
var authzParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method",
	"nonce", "prompt", "max_age", "login_hint", "id_token_hint", "dpop_jkt"}

// parseAuthorizeRequest validates an authorization request given as the
// raw query of GET {prefix}/authorize (or carried through a form). It
// returns the request, or the refusal and, once the redirect URI is
// trusted, the partial request to redirect it to.
func (s *Server) parseAuthorizeRequest(ctx context.Context, rawQuery string) (*authzRequest, *authzError) {
	return s.parseAuthorize(ctx, rawQuery, false)
}

// parseAuthorize is parseAuthorizeRequest; atPAR is set for a request
// being pushed (RFC 9126 §2.1), which is not refused for lacking a
// request_uri.
func (s *Server) parseAuthorize(ctx context.Context, rawQuery string, atPAR bool) (*authzRequest, *authzError) {
	a := s.app
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, pageError(http.StatusBadRequest, "The request is malformed.")
	}
	for _, k := range []string{"client_id", "redirect_uri"} {
		if len(q[k]) > 1 {
			return nil, pageError(http.StatusBadRequest, "The request has more than one "+k+".")
		}
	}
	id := q.Get("client_id")
	if id == "" {
		return nil, pageError(http.StatusBadRequest, "The request does not name a client (client_id).")
	}
	// RFC 9126 §4: a pushed request is used by reference; its own
	// parameters are the request, anything else in the URL is ignored.
	// Another request_uri (a request object by reference, OpenID Connect
	// Core §6.2) is refused as unsupported once the redirect URI is known.
	pushed := ""
	if ref := q.Get("request_uri"); pushedID(ref) != "" {
		var aerr *authzError
		if q, aerr = s.pushedRequest(ctx, q); aerr != nil {
			return nil, aerr
		}
		pushed = ref
	}
	c, _, ok, err := a.registry.lookup(ctx, id)
	if err != nil {
		return nil, pageError(http.StatusServiceUnavailable, "The service is temporarily unavailable. Please try again shortly.")
	}
	if !ok || !c.allowsGrant(GrantAuthorizationCode) {
		return nil, pageError(http.StatusBadRequest, "The application is not registered for signing in here.")
	}
	redirect, ok := c.matchRedirectURI(q.Get("redirect_uri"))
	if !ok {
		return nil, pageError(http.StatusBadRequest, "The application asked to send you back to an address it has not registered.")
	}
	req := &authzRequest{client: c, redirectURI: redirect, redirectGiven: q.Has("redirect_uri"), state: q.Get("state"), pushed: pushed}

	// From here on, errors go back to the client's redirect URI.
	if pushed == "" && !atPAR && (c.RequirePushedAuthorizationRequests || a.RequirePushedAuthorizationRequests) {
		return req, redirectError(errInvalidRequest, "this client must push its authorization requests to the PAR endpoint (RFC 9126)")
	}
	if len(rawQuery) > maxAuthorizeQuery {
		// The forms carry the request; refuse here rather than after the
		// person typed a password into a form too large to post.
		return req, redirectError(errInvalidRequest, "the request is too long")
	}
	for _, k := range authzParams {
		if len(q[k]) > 1 {
			if k == "state" {
				req.state = ""
			}
			return req, redirectError(errInvalidRequest, "parameter "+k+" is repeated")
		}
	}
	var aerr *authzError
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		return req, redirectError(errInvalidRequest, "response_type is required")
	default:
		// The implicit grant (token) and hybrid flows are not offered:
		// RFC 9700 §2.1.2.
		return req, redirectError(errUnsupportedResponseType, "only response_type=code is supported")
	}
	scopes, oerr := grantedScopes(c, q.Get("scope"))
	if oerr != nil {
		return req, redirectError(oerr.Code, oerr.Description)
	}
	req.scopes = scopes
	resources, oerr := parseResources(q["resource"])
	if oerr == nil {
		oerr = a.checkResources(c, resources)
	}
	if oerr != nil {
		return req, redirectError(oerr.Code, oerr.Description)
	}
	req.resources = resources

	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return req, redirectError(errInvalidRequest, "code_challenge_method without code_challenge")
	case challenge == "" && (c.Public || c.RequirePKCE):
		return req, redirectError(errInvalidRequest, "code challenge required (PKCE, RFC 7636 section 4.4.1)")
	case challenge != "" && method != "S256":
		// RFC 7636 §4.3: an absent method means plain, which RFC 9700
		// §2.1.1 says not to use.
		return req, redirectError(errInvalidRequest, "transform algorithm not supported: use code_challenge_method=S256")
	case challenge != "" && !validS256Challenge(challenge):
		return req, redirectError(errInvalidRequest, "code_challenge must be 43 base64url characters (RFC 7636 section 4.2)")
	}
	req.challenge = challenge
	// RFC 9449 §10: dpop_jkt binds the code to a DPoP key; a SHA-256
	// JWK thumbprint is 43 base64url characters, like an S256 challenge.
	req.dpopJKT = q.Get("dpop_jkt")
	if q.Has("dpop_jkt") && !validS256Challenge(req.dpopJKT) {
		return req, redirectError(errInvalidRequest, "dpop_jkt must be a SHA-256 JWK thumbprint (RFC 9449 section 10)")
	}
	if req.oidc, aerr = s.parseOIDCParams(ctx, q, c); aerr != nil {
		return req, aerr
	}

	canon := url.Values{}
	for _, k := range authzParams {
		if q.Has(k) {
			canon.Set(k, q.Get(k))
		}
	}
	if len(resources) > 0 {
		canon["resource"] = resources
	}
	req.query = canon.Encode()
	if pushed != "" {
		// The forms carry the reference, not the parameters: a request
		// that had to be pushed never travels through the browser.
		req.query = url.Values{"client_id": {c.ID}, "request_uri": {pushed}}.Encode()
	}
	return req, nil
}

// validS256Challenge: BASE64URL(SHA256(verifier)) without padding is 43
// characters of the base64url alphabet (RFC 7636 §4.2).
func validS256Challenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isBase64URLChar(s[i]) {
			return false
		}
	}
	return true
}

func isBase64URLChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// redirectBack builds the URI that returns the person to the client with
// params (RFC 6749 §4.1.2), keeping the redirect URI's own query (§3.1.2)
// and adding iss (RFC 9207 §2) so the client can tell which server
// answered. state is returned exactly as received.
func (s *Server) redirectBack(req *authzRequest, params url.Values) string {
	a := s.app
	if req.state != "" {
		params.Set("state", req.state)
	}
	params.Set("iss", a.Issuer)
	u, err := url.Parse(req.redirectURI)
	if err != nil { // checked at provision; cannot happen
		return req.redirectURI
	}
	q := params.Encode()
	if u.RawQuery != "" {
		q = u.RawQuery + "&" + q
	}
	u.RawQuery = q
	return u.String()
}

// errorRedirect is redirectBack for an error (RFC 6749 §4.1.2.1).
func (s *Server) errorRedirect(req *authzRequest, e *authzError) string {
	p := url.Values{"error": {e.code}}
	if e.desc != "" {
		p.Set("error_description", e.desc)
	}
	return s.redirectBack(req, p)
}

// scopeLine is a consent page's list of scopes with their descriptions.
type scopeLine struct{ Name, Description string }

func (s *Server) describeScopes(scopes []string) []scopeLine {
	a := s.app
	out := make([]scopeLine, 0, len(scopes))
	for _, sc := range scopes {
		d := a.ScopeDescriptions[sc]
		if d == "" {
			d = "Use the scope " + strings.TrimSpace(sc)
		}
		out = append(out, scopeLine{Name: sc, Description: d})
	}
	return out
}
