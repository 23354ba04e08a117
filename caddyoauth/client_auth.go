package caddyoauth

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
)

// Client authentication methods (RFC 7591 §2, RFC 8414 §2).
const (
	authBasic = "client_secret_basic"
	authPost  = "client_secret_post"
	authNone  = "none"
)

// clientCredentials is what a request presented to identify its client.
type clientCredentials struct {
	method    string // authBasic, authPost, authNone, authAssertion, or "" for nothing
	id        string
	secret    string
	assertion string   // a JWT (RFC 7523 §2.2)
	audiences []string // what an assertion's aud may name: the issuer, the token endpoint
	// tls is the request's connection, whose certificate authenticates a
	// tls_client_auth or self_signed_tls_client_auth client that sent only
	// its client_id (RFC 8705 §2).
	tls *tls.ConnectionState
}

// authAssertion marks a client assertion; which JWT method it is depends on
// the client (private_key_jwt or client_secret_jwt).
const authAssertion = "client_assertion"

// readClientCredentials finds how the client authenticates (RFC 6749 §2.3):
// HTTP Basic or client_secret in the body, never both (§2.3: "MUST NOT use
// more than one authentication method in each request").
func readClientCredentials(r *http.Request, form url.Values) (clientCredentials, *oauthError) {
	authz := r.Header.Values("Authorization")
	if len(authz) > 1 {
		return clientCredentials{}, badRequest(errInvalidRequest, "more than one Authorization header")
	}
	bodyID, bodySecret := form.Get("client_id"), form.Get("client_secret")
	if assertion, used, oerr := readAssertion(r, form); oerr != nil {
		return clientCredentials{}, oerr
	} else if used {
		return clientCredentials{method: authAssertion, id: bodyID, assertion: assertion}, nil
	}
	if len(authz) == 1 && hasScheme(authz[0], "Basic") {
		id, secret, ok := parseBasicCredentials(authz[0])
		if !ok {
			return clientCredentials{}, invalidClient("malformed Basic credentials")
		}
		if bodySecret != "" {
			return clientCredentials{}, badRequest(errInvalidRequest, "more than one client authentication method")
		}
		if bodyID != "" && bodyID != id {
			return clientCredentials{}, badRequest(errInvalidRequest, "client_id does not match the Basic credentials")
		}
		return clientCredentials{method: authBasic, id: id, secret: secret}, nil
	}
	if bodySecret != "" {
		if bodyID == "" {
			return clientCredentials{}, badRequest(errInvalidRequest, "client_secret without client_id")
		}
		return clientCredentials{method: authPost, id: bodyID, secret: bodySecret}, nil
	}
	if bodyID != "" {
		return clientCredentials{method: authNone, id: bodyID, tls: r.TLS}, nil
	}
	return clientCredentials{}, nil
}

// hasScheme reports whether an Authorization value uses scheme; schemes are
// case-insensitive (RFC 9110 §11.1).
func hasScheme(value, scheme string) bool {
	return len(value) > len(scheme) && value[len(scheme)] == ' ' && strings.EqualFold(value[:len(scheme)], scheme)
}

// parseBasicCredentials decodes `Basic base64(id:secret)` where id and
// secret are each form-urlencoded first (RFC 6749 §2.3.1).
func parseBasicCredentials(value string) (id, secret string, ok bool) {
	if !hasScheme(value, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value[len("Basic "):]))
	if err != nil {
		return "", "", false
	}
	encID, encSecret, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	if id, err = url.QueryUnescape(encID); err != nil || id == "" {
		return "", "", false
	}
	if secret, err = url.QueryUnescape(encSecret); err != nil {
		return "", "", false
	}
	return id, secret, true
}

// authenticate checks the credentials against the registered clients. Any
// failure is `invalid_client` (RFC 6749 §5.2). An unknown client still costs
// a SHA-256 comparison, as a client with a sha256 or plain secret does; a
// client with a bcrypt or argon2id hash takes longer, which tells that it
// exists (client identifiers are not secret, RFC 6749 §2.2).
func (a *App) authenticate(ctx context.Context, cc clientCredentials) (*Client, *oauthError) {
	if cc.method == "" {
		return nil, invalidClient("client authentication required")
	}
	if cc.method == authAssertion {
		c, oerr := a.authenticateAssertion(ctx, cc.assertion, cc.audiences)
		if oerr == nil && cc.id != "" && cc.id != c.ID {
			// RFC 7523 §3 item 2: client_id, if sent, is the assertion's sub.
			return nil, invalidClient("client_id does not match the client assertion")
		}
		return c, oerr
	}
	c, _, ok, err := a.registry.lookup(ctx, cc.id)
	if err != nil {
		return nil, unavailable()
	}
	if cc.method == authNone {
		if ok && c.usesMTLS() {
			return a.authenticateCertificate(ctx, c, cc.tls)
		}
		if !ok || !c.Public {
			// RFC 6749 §3.2.1: a confidential client authenticates. An
			// unknown client gets the same answer.
			return nil, invalidClient("client authentication required (RFC 6749 section 3.2.1)")
		}
		return c, nil
	}
	if !ok {
		a.fake.checkSecret(cc.secret)
		return nil, invalidClient("client authentication failed")
	}
	if c.Public || !c.checkSecret(cc.secret) || !c.allowsAuthMethod(cc.method) {
		return nil, invalidClient("client authentication failed")
	}
	return c, nil
}

// challengeIfBasic applies RFC 6749 §5.2 to a failed client authentication:
// a client that used the Authorization header gets 401 and a Basic
// challenge (writeOAuthError sets it); any other (client_secret_post, a
// client assertion, no credentials) gets 400, with no challenge, since
// a 401 must carry one (RFC 9110 §15.5.2) and Basic is not how the client
// authenticates. Other errors are returned as they are.
func challengeIfBasic(e *oauthError, r *http.Request) *oauthError {
	if e == nil || e.Code != errInvalidClient {
		return e
	}
	authz := r.Header.Values("Authorization")
	if len(authz) != 1 || !hasScheme(authz[0], "Basic") {
		return e
	}
	out := *e
	out.Status = http.StatusUnauthorized
	return &out
}

// allowsAuthMethod reports whether the client may authenticate with m.
func (c *Client) allowsAuthMethod(m string) bool {
	switch c.AuthMethod {
	case "":
		if c.Public {
			return m == authNone
		}
		return m == authBasic || m == authPost
	default:
		return m == c.AuthMethod
	}
}

// clientTokenRequest reads a POST form and authenticates its client the way
// the token endpoint does (RFC 7662 §2.1, RFC 7009 §2.1). On failure it
// has answered.
func (s *Server) clientTokenRequest(w http.ResponseWriter, r *http.Request, allowPublic bool) (*Client, string, string, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, &oauthError{Status: http.StatusMethodNotAllowed, Code: errInvalidRequest, Description: "use POST"})
		return nil, "", "", false
	}
	form, oerr := parseForm(w, r)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return nil, "", "", false
	}
	cc, oerr := readClientCredentials(r, form)
	var client *Client
	cc.audiences = s.assertionAud
	if oerr == nil {
		client, oerr = s.app.authenticate(r.Context(), cc)
	}
	if oerr == nil && cc.method == authNone && !allowPublic && !client.usesMTLS() {
		// A client_id alone is a public client, unless its certificate
		// authenticated it (RFC 8705 §2).
		client, oerr = nil, invalidClient("client authentication required")
	}
	if oerr != nil {
		writeOAuthError(w, challengeIfBasic(oerr, r))
		return nil, "", "", false
	}
	tok := form.Get("token")
	if tok == "" {
		writeOAuthError(w, badRequest(errInvalidRequest, "token is required"))
		return nil, "", "", false
	}
	return client, tok, form.Get("token_type_hint"), true
}
