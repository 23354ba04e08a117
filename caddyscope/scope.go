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
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/bearer"
	"github.com/caddyapigw/gateway/internal/dpop"
	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

func init() {
	caddy.RegisterModule(Scope{})
}

// Scope is the `oauth_scope` handler. It validates the bearer token of each
// request, against the local `oauth` app or the issuers configured in
// Issuers, and requires the scopes configured for the request's method. A method with no rule is refused (405): a
// protected route never lets a request through unauthenticated, except a
// CORS preflight, which AllowPreflight answers itself.
//
// Refusals follow RFC 6750 §3: 401 with `WWW-Authenticate: Bearer` (no error
// code when no token was sent, `invalid_token` otherwise), 400
// `invalid_request` for a malformed request, 403 `insufficient_scope` with
// the scope needed; 503 with Retry-After when the token's issuer cannot be
// reached. The reason is logged at info level. When the server has
// handle_errors routes, a refusal is returned to Caddy as a handler error
// (as basic_auth does) with the challenge already on the response and
// `{oauth.error}`, `{oauth.error_description}` and `{oauth.required_scope}`
// set, so those routes write the body; otherwise a small JSON body is
// written here.
//
// On success these placeholders are set:
//
// Placeholder | Description
// ------------|-------------
// `{oauth.client_id}` | the client the token was issued to
// `{oauth.client_name}` | that client's configured name (empty for other issuers)
// `{oauth.sub}` | the token's subject (the client itself for client credentials)
// `{oauth.scope}` | the granted scopes, space-delimited
// `{oauth.roles}` | the roles from the issuer's roles claim, space-delimited (see Issuer.RolesClaim)
// `{oauth.jti}` | the token's identifier
// `{oauth.claims.<name>}` | any claim; strings as is, other values as JSON
// `{oauth.client.metadata.<key>}` | the client's configured metadata (local clients only)
// `{http.auth.user.id}` | the subject, as Caddy's access log reports it
type Scope struct {
	// Rules map HTTP methods to the scopes they require.
	Rules []Rule `json:"rules,omitempty"`

	// Audience requires the token's aud to contain one of these. Default:
	// the audience the oauth app puts in its tokens (RFC 9068 §4 requires
	// the resource server to check aud). It is also the default audience
	// of every entry of Issuers without its own.
	Audience []string `json:"audience,omitempty"`

	// Issuers lists the authorization servers whose tokens the route
	// accepts. Empty: the local `oauth` app only, as before issuers
	// existed. Otherwise exactly these; {"issuer": "local"} adds the
	// local app.
	Issuers []Issuer `json:"issuers,omitempty"`

	// Resource is the API's resource identifier (RFC 8707 §2, RFC 9728
	// §1.2): an https URL (http for loopback hosts) without query or
	// fragment, usually the API's base URL. Without Audience, tokens must
	// name it in aud: a token asked for another API is refused here. The
	// local oauth app may then issue tokens for it (resource=<uri> at its
	// token endpoint). Its RFC 9728 metadata is published by the
	// oauth_resource_metadata handler, and 401 and 403 challenges point
	// there (resource_metadata).
	Resource string `json:"resource,omitempty"`

	// Name labels the route's metrics (oauth_scope_decisions_total and
	// the others, in Caddy's /metrics). Default: the resource, else the
	// realm, else "default".
	Name string `json:"name,omitempty"`

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

	// PassCredentials keeps the Authorization and DPoP request headers for
	// the rest of the route. By default an accepted request loses them
	// before the next handler (as Kong's hide_credentials does): the
	// upstream gets the caller's identity from ForwardHeaders and
	// placeholders, not a token it could replay at another API the token
	// also names, log, or leak; and it is not sent the token's bytes on
	// every request. Set it for an upstream that needs the token itself
	// (one that calls another API on the caller's behalf).
	PassCredentials bool `json:"pass_credentials,omitempty"`

	// DPoP is how the route takes DPoP-bound tokens (RFC 9449 §7):
	// "allowed" (default) takes bearer tokens and DPoP-bound tokens, each
	// with its own scheme; "required" takes DPoP-bound tokens only. A
	// DPoP-bound token is never accepted as a bearer token.
	DPoP string `json:"dpop,omitempty"`

	rules     *ruleSet
	audience  []string           // Audience, or the authority's
	authority oauthjwt.Authority // nil when only external issuers are trusted
	local     *trusted           // the local app, when there are no Issuers
	trust     *trustSet          // Issuers, when there are some
	strip     []string           // names of forwarded headers, to remove from requests
	// metadataURL is the resource's RFC 9728 metadata URL, for challenges
	metadataURL string
	published   *resourceEntry // this route's part of the metadata
	metrics     *routeMetrics
	dpop        *dpop.Resource // RFC 9449 §7 (dpop.go)
	forward     []forwardHeader
	logger      *zap.Logger
	// issuerLogger is for running issuers, which outlive a config
	issuerLogger *zap.Logger
}

type forwardHeader struct {
	name  string
	value string
	// placeholder is the key of a value that is one placeholder and
	// nothing else ("{oauth.client_id}" → "oauth.client_id"): read with
	// one lookup instead of ReplaceAll's string building. "" otherwise.
	placeholder string
}

// CaddyModule returns the Caddy module information.
func (Scope) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.oauth_scope",
		New: func() caddy.Module { return new(Scope) },
	}
}

// Provision compiles the rules and finds the token issuers.
func (s *Scope) Provision(ctx caddy.Context) error {
	var auth oauthjwt.Authority
	if s.needsLocal() {
		appIface, err := ctx.AppIfConfigured("oauth")
		if errors.Is(err, caddy.ErrNotConfigured) {
			if len(s.Issuers) > 0 {
				return errors.New("issuers: issuer local needs the `oauth` global option (apps.oauth in JSON)")
			}
			return errors.New("oauth_scope needs a token issuer: configure the `oauth` global option (apps.oauth in JSON), or list issuers")
		}
		if err != nil {
			return err
		}
		var ok bool
		if auth, ok = appIface.(oauthjwt.Authority); !ok {
			return fmt.Errorf("app oauth (%T) cannot verify tokens", appIface)
		}
	}
	// Running issuers outlive this config (issuerPool): they log through
	// Caddy's default logger, not this config's.
	s.issuerLogger = caddy.Log().Named("http.handlers.oauth_scope")
	if err := registerScopeMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("metrics: %v", err)
	}
	return s.provision(auth, ctx.Logger())
}

// routeName is the route label of the metrics.
func (s *Scope) routeName() string {
	for _, n := range []string{s.Name, s.Resource, s.Realm} {
		if n != "" {
			return n
		}
	}
	return "default"
}

// needsLocal reports whether the route trusts the local oauth app.
func (s *Scope) needsLocal() bool {
	if len(s.Issuers) == 0 {
		return true
	}
	for _, is := range s.Issuers {
		if is.Issuer == LocalIssuer {
			return true
		}
	}
	return false
}

// provision is Provision with the local issuer passed in (nil when the
// route does not trust it), for tests.
func (s *Scope) provision(auth oauthjwt.Authority, logger *zap.Logger) error {
	s.logger = logger
	if s.issuerLogger == nil {
		s.issuerLogger = logger
	}
	s.authority = auth
	s.metrics = newRouteMetrics(s.routeName())
	s.audience = s.Audience
	routeAudience := s.Audience
	if s.Resource != "" {
		if err := checkResource(s.Resource); err != nil {
			return fmt.Errorf("resource: %v", err)
		}
		if len(s.audience) == 0 {
			s.audience = []string{s.Resource}
			routeAudience = s.audience
		}
		if auth != nil {
			auth.DeclareResource(s.Resource)
		}
	}
	if len(s.audience) == 0 && auth != nil {
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
	if err := checkRoleRules(rules, s.Issuers); err != nil {
		return err
	}
	s.rules = rs
	if err := s.provisionDPoP(); err != nil {
		return err
	}
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
		s.forward = append(s.forward, forwardHeader{name: textproto.CanonicalMIMEHeaderKey(name), value: value, placeholder: onlyPlaceholder(value)})
	}
	if len(s.Issuers) == 0 {
		s.local = &trusted{issuer: auth.Verifier().Issuer(), audience: s.audience, local: true, verifier: auth.Verifier()}
	} else {
		ts, err := newTrustSet(s.Issuers, auth, s.audience, routeAudience, s.issuerLogger)
		if err != nil {
			return err
		}
		s.trust = ts
	}
	if s.Resource != "" {
		s.publish()
	}
	return nil
}

// publish adds the route's resource to the RFC 9728 metadata that
// oauth_resource_metadata serves.
func (s *Scope) publish() {
	s.metadataURL, _ = metadataURL(s.Resource) // checked by checkResource
	e := &resourceEntry{resource: s.Resource, path: resourcePath(s.Resource), name: s.Realm}
	if s.trust == nil {
		e.servers = []string{s.local.issuer}
	} else {
		for _, tr := range s.trust.all {
			e.servers = append(e.servers, tr.issuer)
		}
	}
	for _, r := range s.Rules {
		e.scopes = appendNew(e.scopes, r.Scopes...)
	}
	s.published = e
	resources.add(e)
}

// checkResource applies RFC 8707 §2 to a resource identifier, and keeps it
// fit for a quoted challenge attribute.
func checkResource(uri string) error {
	if err := oauthjwt.CheckIssuerURL(uri); err != nil {
		return err
	}
	if strings.ContainsAny(uri, "\"\\ ") {
		return fmt.Errorf("%q must not contain quotes, backslashes or spaces", uri)
	}
	_, err := metadataURL(uri)
	return err
}

// Cleanup releases the route's running issuers; it copes with a failed
// Provision.
func (s *Scope) Cleanup() error {
	s.trust.cleanup()
	if s.published != nil {
		resources.remove(s.published)
	}
	return nil
}

// verify checks token with the issuer that issued it.
func (s *Scope) verify(token string) (*oauthjwt.Claims, *trusted, bool, error) {
	if s.trust == nil {
		c, hit, err := s.local.verifier.VerifyCached(token)
		return c, s.local, hit, err
	}
	return s.trust.verify(token)
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
		return s.refuse(w, r, &bearer.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Desc: "this method is not allowed on this route"})
	}

	token, scheme, berr := bearer.Credentials(r)
	if berr != nil {
		berr.Scope = rule.scope
		return s.refuse(w, r, berr)
	}
	start := time.Now()
	claims, by, hit, err := s.verify(token)
	s.metrics.observe(start, hit)
	if err != nil {
		var ue *unavailableError
		if errors.As(err, &ue) {
			// Not the token's fault: a 503 the client retries, keeping
			// its token, rather than a 401 that makes it throw it away.
			if by != nil && by.remote != nil {
				by.remote.logUnavailable(err)
			}
			w.Header().Set("Retry-After", strconv.Itoa(ue.retryAfterSeconds()))
			return s.refuse(w, r, &bearer.Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Desc: describe(err)})
		}
		return s.refuse(w, r, &bearer.Error{Status: http.StatusUnauthorized, Code: bearer.InvalidToken, Desc: describe(err), Scope: rule.scope})
	}
	if len(by.audience) > 0 && !hasAnyAudience(claims, by.audience) {
		return s.refuse(w, r, &bearer.Error{Status: http.StatusUnauthorized, Code: bearer.InvalidToken, Desc: "token audience not accepted", Scope: rule.scope})
	}
	if berr := s.checkDPoP(w, r, token, scheme, claims, rule.scope); berr != nil {
		return s.refuse(w, r, berr)
	}
	if berr := s.checkCertBinding(r, claims, rule.scope); berr != nil {
		return s.refuse(w, r, berr)
	}
	if !by.local {
		// Another issuer's token: its client is that issuer's business.
		if !oauthjwt.HasAll(claims.Scopes(), rule.scopes) {
			return s.refuse(w, r, &bearer.Error{Status: http.StatusForbidden, Code: bearer.InsufficientScope, Desc: "token lacks a required scope", Scope: rule.scope})
		}
		if rule.lacksRole(claims) {
			return s.refuse(w, r, &bearer.Error{Status: http.StatusForbidden, Code: bearer.InsufficientScope, Desc: "token lacks a required role", Scope: rule.scope})
		}
		return s.accept(w, r, next, claims, oauthjwt.ClientInfo{ID: claims.ClientID})
	}
	// The client must still be registered, and still allowed what the
	// route needs: removing a client or narrowing its scopes in the config
	// takes effect at the next reload, not when its tokens expire.
	client, ok, err := s.authority.Client(claims.ClientID)
	if err != nil {
		// The client's record or revocation mark cannot be read now: a
		// 503 the client retries with the same token, never a 401 that
		// makes it throw a valid token away, nor a 200 for a token that
		// may have been revoked.
		w.Header().Set("Retry-After", strconv.Itoa((&unavailableError{}).retryAfterSeconds()))
		return s.refuse(w, r, &bearer.Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Desc: "the token's client cannot be checked now"})
	}
	if !ok {
		return s.refuse(w, r, &bearer.Error{Status: http.StatusUnauthorized, Code: bearer.InvalidToken, Desc: "token client is not registered", Scope: rule.scope})
	}
	if s.authority.Revoked(claims.ID) || client.RevokedToken(claims) {
		return s.refuse(w, r, &bearer.Error{Status: http.StatusUnauthorized, Code: bearer.InvalidToken, Desc: "token revoked", Scope: rule.scope})
	}
	if !oauthjwt.HasAll(claims.Scopes(), rule.scopes) || !oauthjwt.HasAll(client.Scopes, rule.scopes) {
		return s.refuse(w, r, &bearer.Error{Status: http.StatusForbidden, Code: bearer.InsufficientScope, Desc: "token lacks a required scope", Scope: rule.scope})
	}
	if rule.lacksRole(claims) {
		return s.refuse(w, r, &bearer.Error{Status: http.StatusForbidden, Code: bearer.InsufficientScope, Desc: "token lacks a required role", Scope: rule.scope})
	}
	return s.accept(w, r, next, claims, client)
}

// accept publishes the caller's identity and passes the request on.
func (s *Scope) accept(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, claims *oauthjwt.Claims, client oauthjwt.ClientInfo) error {
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	s.setPlaceholders(repl, claims, client)
	if !s.PassCredentials {
		// Canonical names (RFC 9449 §4.1's DPoP is "Dpop" in Go's map):
		// Header.Del would allocate to canonicalize "DPoP".
		delete(r.Header, "Authorization")
		delete(r.Header, "Dpop")
	}
	s.forwardIdentity(r.Header, repl)
	s.metrics.accepted.Inc()
	rec := &statusRecorder{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	err := next.ServeHTTP(rec, r)
	s.metrics.response(claims.ClientID, rec.status, err)
	return err
}

// forwardIdentity sets the forwarded headers. Their values share one
// backing array: one allocation for all of them.
func (s *Scope) forwardIdentity(h http.Header, repl *caddy.Replacer) {
	if len(s.forward) == 0 {
		return
	}
	vals := make([]string, len(s.forward))
	for i, f := range s.forward {
		var v string
		if f.placeholder != "" {
			if x, ok := repl.Get(f.placeholder); ok {
				v = caddy.ToString(x) // as ReplaceAll writes it
			}
		} else {
			v = repl.ReplaceAll(f.value, "")
		}
		if v != "" {
			vals[i] = v
			h[f.name] = vals[i : i+1 : i+1]
		}
	}
}

// onlyPlaceholder returns the key of a value that is exactly one
// placeholder, "" for anything else (text around it, several, escapes).
func onlyPlaceholder(value string) string {
	if len(value) < 3 || value[0] != '{' || value[len(value)-1] != '}' {
		return ""
	}
	key := value[1 : len(value)-1]
	if strings.ContainsAny(key, "{}\\") {
		return ""
	}
	return key
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
	_ caddy.CleanerUpper          = (*Scope)(nil)
	_ caddyhttp.MiddlewareHandler = (*Scope)(nil)
)
