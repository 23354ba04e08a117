// Package caddyscope is the `oauth_scope` Caddy HTTP handler: it accepts a
// request only with a valid OAuth 2.0 bearer token (RFC 6750) carrying the
// scopes its route and method require, and hands the caller's identity to
// the rest of the route as placeholders and upstream headers.
package caddyscope

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

func init() {
	caddy.RegisterModule(Scope{})
}

// Scope is the `oauth_scope` handler. It validates the bearer token of each
// request against the local `oauth` app and requires the scopes configured
// for the request's method. A method with no rule is refused (405): a
// protected route never lets a request through unauthenticated, except a
// CORS preflight, which AllowPreflight answers itself.
//
// Refusals follow RFC 6750 §3: 401 with `WWW-Authenticate: Bearer` (no error
// code when no token was sent, `invalid_token` otherwise), 400
// `invalid_request` for a malformed request, 403 `insufficient_scope` with
// the scope needed. Each has a small JSON body.
//
// On success these placeholders are set:
//
// Placeholder | Description
// ------------|-------------
// `{oauth.client_id}` | the client the token was issued to
// `{oauth.client_name}` | that client's configured name
// `{oauth.sub}` | the token's subject (the client itself for client credentials)
// `{oauth.scope}` | the granted scopes, space-delimited
// `{oauth.jti}` | the token's identifier
// `{oauth.claims.<name>}` | any claim; strings as is, other values as JSON
// `{oauth.client.metadata.<key>}` | the client's configured metadata
// `{http.auth.user.id}` | the subject, as Caddy's access log reports it
type Scope struct {
	// Rules map HTTP methods to the scopes they require.
	Rules []Rule `json:"rules,omitempty"`

	// Audience requires the token's aud to contain one of these. Default:
	// the audience the oauth app puts in its tokens (RFC 9068 §4 requires
	// the resource server to check aud).
	Audience []string `json:"audience,omitempty"`

	// Realm is the realm attribute of the WWW-Authenticate challenge.
	Realm string `json:"realm,omitempty"`

	// AllowPreflight answers CORS preflight requests (OPTIONS with Origin
	// and Access-Control-Request-Method) with 204 No Content instead of
	// refusing them for want of a token. The request never goes further:
	// an OPTIONS request without a token never reaches the upstream. The
	// CORS response headers come from Caddy's `header` directive.
	AllowPreflight bool `json:"allow_preflight,omitempty"`

	// ForwardHeaders sets request headers for the upstream from
	// placeholders, e.g. {"X-Client-Id": "{oauth.client_id}"}. Incoming
	// headers of the same names (compared ignoring case and - versus _)
	// are removed first, so a client cannot pass its own values through.
	ForwardHeaders map[string]string `json:"forward_headers,omitempty"`

	rules     *ruleSet
	audience  []string // Audience, or the authority's
	authority oauthjwt.Authority
	strip     []string // names of forwarded headers, to remove from requests
	forward   []forwardHeader
	logger    *zap.Logger
}

type forwardHeader struct {
	name  string
	value string
}

// CaddyModule returns the Caddy module information.
func (Scope) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.oauth_scope",
		New: func() caddy.Module { return new(Scope) },
	}
}

// Provision compiles the rules and finds the token issuer.
func (s *Scope) Provision(ctx caddy.Context) error {
	appIface, err := ctx.AppIfConfigured("oauth")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return errors.New("oauth_scope needs a token issuer: configure the `oauth` global option (apps.oauth in JSON)")
	}
	if err != nil {
		return err
	}
	auth, ok := appIface.(oauthjwt.Authority)
	if !ok {
		return fmt.Errorf("app oauth (%T) cannot verify tokens", appIface)
	}
	return s.provision(auth, ctx.Logger())
}

// provision is Provision with the issuer passed in, for tests.
func (s *Scope) provision(auth oauthjwt.Authority, logger *zap.Logger) error {
	s.logger = logger
	s.authority = auth
	s.audience = s.Audience
	if len(s.audience) == 0 {
		if aud := auth.TokenAudience(); aud != "" {
			s.audience = []string{aud}
		}
	}
	rules := s.Rules
	if len(rules) == 0 {
		// A bare oauth_scope requires a valid token for every method.
		rules = []Rule{{Methods: []string{AnyMethod}}}
	}
	rs, err := compileRules(rules)
	if err != nil {
		return err
	}
	s.rules = rs
	if strings.ContainsAny(s.Realm, "\"\\") {
		return errors.New("realm: must not contain quotes or backslashes")
	}
	s.strip = make([]string, 0, len(s.ForwardHeaders))
	for name, value := range s.ForwardHeaders {
		if !isToken(name) {
			return fmt.Errorf("forward_headers: %q is not a header name (RFC 9110 §5.1)", name)
		}
		if sameHeaderName(name, "Authorization") {
			return errors.New("forward_headers: Authorization cannot be forwarded: it carries the token this handler reads")
		}
		for _, prev := range s.strip {
			if sameHeaderName(prev, name) {
				return fmt.Errorf("forward_headers: %q is given twice (names are compared ignoring case and - versus _)", name)
			}
		}
		s.strip = append(s.strip, name)
		s.forward = append(s.forward, forwardHeader{name: textproto.CanonicalMIMEHeaderKey(name), value: value})
	}
	return nil
}

// isToken reports whether s is an RFC 9110 §5.6.2 token (a field name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// sameHeaderName compares header names ignoring ASCII case and treating _
// as -, the variants proxies and CGI-style upstreams take to be the same
// header. It does not allocate: it runs on every request header.
func sameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (s *Scope) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	s.stripIdentityHeaders(r.Header)

	if s.AllowPreflight && r.Method == http.MethodOptions &&
		r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		// Answered here, never passed on: a preflight carries no token,
		// and an attacker's OPTIONS looks exactly like one.
		w.WriteHeader(http.StatusNoContent)
		return nil
	}

	rule := s.rules.lookup(r.Method)
	if rule == nil {
		w.Header().Set("Allow", s.rules.allow)
		(&bearerError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", desc: "this method is not allowed on this route"}).writeBody(w)
		return nil
	}

	token, berr := bearerToken(r)
	if berr != nil {
		berr.scope = rule.scope
		s.refuse(w, r, berr)
		return nil
	}
	claims, err := s.authority.Verifier().Verify(token)
	if err != nil {
		s.refuse(w, r, &bearerError{status: http.StatusUnauthorized, code: errInvalidToken, desc: oauthjwt.Describe(err), scope: rule.scope})
		return nil
	}
	if len(s.audience) > 0 && !hasAnyAudience(claims, s.audience) {
		s.refuse(w, r, &bearerError{status: http.StatusUnauthorized, code: errInvalidToken, desc: "token audience not accepted", scope: rule.scope})
		return nil
	}
	// The client must still be registered, and still allowed what the
	// route needs: removing a client or narrowing its scopes in the config
	// takes effect at the next reload, not when its tokens expire.
	client, ok := s.authority.Client(claims.ClientID)
	if !ok {
		s.refuse(w, r, &bearerError{status: http.StatusUnauthorized, code: errInvalidToken, desc: "token client is not registered", scope: rule.scope})
		return nil
	}
	if s.authority.Revoked(claims.ID) || !client.RevokedBefore.IsZero() && (claims.IssuedAt == nil || !claims.IssuedAt.After(client.RevokedBefore)) {
		s.refuse(w, r, &bearerError{status: http.StatusUnauthorized, code: errInvalidToken, desc: "token revoked", scope: rule.scope})
		return nil
	}
	if !oauthjwt.HasAll(claims.Scopes(), rule.scopes) || !oauthjwt.HasAll(client.Scopes, rule.scopes) {
		s.refuse(w, r, &bearerError{status: http.StatusForbidden, code: errInsufficientScope, desc: "token lacks a required scope", scope: rule.scope})
		return nil
	}

	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	s.setPlaceholders(repl, claims, client)
	for _, f := range s.forward {
		if v := repl.ReplaceAll(f.value, ""); v != "" {
			r.Header.Set(f.name, v)
		}
	}
	return next.ServeHTTP(w, r)
}

func (s *Scope) refuse(w http.ResponseWriter, r *http.Request, e *bearerError) {
	if ce := s.logger.Check(zap.DebugLevel, "bearer token refused"); ce != nil {
		ce.Write(zap.Int("status", e.status), zap.String("error", e.code), zap.String("reason", e.desc),
			zap.String("method", r.Method), zap.String("path", r.URL.Path)) // not the query: it may hold a token
	}
	e.write(w, s.Realm)
}

// stripIdentityHeaders removes incoming copies of the headers this handler
// forwards, in every spelling an upstream might read as the same header.
func (s *Scope) stripIdentityHeaders(h http.Header) {
	if len(s.strip) == 0 {
		return
	}
	for name := range h {
		for _, f := range s.strip {
			if sameHeaderName(name, f) {
				delete(h, name)
				break
			}
		}
	}
}

func hasAnyAudience(c *oauthjwt.Claims, want []string) bool {
	for _, a := range want {
		if c.HasAudience(a) {
			return true
		}
	}
	return false
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Scope)(nil)
	_ caddyhttp.MiddlewareHandler = (*Scope)(nil)
)
