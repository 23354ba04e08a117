package caddyoauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyapigw/gateway/internal/dpop"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Server{})
}

// DefaultPrefix is where oauth_server serves its endpoints by default.
const DefaultPrefix = "/oauth2"

// Server is the `oauth_server` HTTP handler. It serves the endpoints of the
// `oauth` app under the issuer's path if it has one: `{prefix}/token` (RFC
// 6749 §3.2), `{prefix}/authorize` (§3.1) with its pages `{prefix}/login`,
// `{prefix}/consent`, `{prefix}/account` and `{prefix}/logout`,
// `{prefix}/userinfo`, `{prefix}/introspect` (RFC 7662), `{prefix}/revoke`
// (RFC 7009), `{prefix}/jwks` (RFC 7517), and the metadata
// document at `/.well-known/oauth-authorization-server` (RFC 8414 §3).
// Requests for any other path go on to the next handler.
type Server struct {
	// Prefix is the path under which the endpoints live. Default: /oauth2.
	Prefix string `json:"prefix,omitempty"`

	// Templates is a directory whose layout.html, login.html,
	// consent.html, account.html, signedout.html or error.html replace the
	// embedded pages of the same name.
	Templates string `json:"templates,omitempty"`

	app           *App
	logger        *zap.Logger
	pages         pageSet
	tokenPath     string
	jwksPath      string
	authorizePath string
	loginPath     string
	consentPath   string
	accountPath   string
	logoutPath    string
	userinfoPath  string
	introPath     string
	revokePath    string
	signupPath    string
	parPath       string

	dpopRes          *dpop.Resource // userinfo's DPoP check (userinfoDPoP)
	assertionAud     []string       // what a client assertion's aud may name
	metadataPath     string
	metadata         []byte
	jwks             *jwksCache
	endSessionPath   string // OpenID Connect RP-Initiated Logout 1.0
	openIDConfigPath string // OpenID Connect Discovery §4
	openIDConfig     []byte
}

// CaddyModule returns the Caddy module information.
func (Server) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.oauth_server",
		New: func() caddy.Module { return new(Server) },
	}
}

// Provision finds the oauth app and prepares the documents it serves.
func (s *Server) Provision(ctx caddy.Context) error {
	appIface, err := ctx.AppIfConfigured("oauth")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return errors.New("oauth_server needs the oauth app: add the `oauth` global option (or apps.oauth in JSON)")
	}
	if err != nil {
		return err
	}
	if err := registerTokenMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("metrics: %v", err)
	}
	return s.provision(appIface.(*App), ctx.Logger())
}

// provision is Provision with the app passed in, for tests.
func (s *Server) provision(app *App, logger *zap.Logger) error {
	s.app, s.logger = app, logger
	if s.Prefix == "" {
		s.Prefix = DefaultPrefix
	}
	if err := validatePrefix(s.Prefix); err != nil {
		return fmt.Errorf("prefix: %v", err)
	}
	s.Prefix = strings.TrimSuffix(s.Prefix, "/")
	s.jwks = new(jwksCache)
	// The endpoints live under the issuer's path, where the metadata
	// document says they are (base below).
	var issuerPath string
	if u, err := url.Parse(s.app.Issuer); err == nil {
		issuerPath = strings.TrimSuffix(u.Path, "/")
	}
	base := issuerPath + s.Prefix
	s.tokenPath = base + "/token"
	s.jwksPath = base + "/jwks"
	s.authorizePath = base + "/authorize"
	s.loginPath = base + "/login"
	s.consentPath = base + "/consent"
	s.accountPath = base + "/account"
	s.endSessionPath = base + "/end_session"
	s.logoutPath = base + "/logout"
	s.userinfoPath = base + "/userinfo"
	s.introPath = base + "/introspect"
	s.revokePath = base + "/revoke"
	s.signupPath = base + "/signup"
	s.parPath = base + "/par"
	s.dpopRes = dpop.NewResource(s.app.DPoPReplay(), s.app.proofAlgs(), false)
	s.metadataPath = metadataPath(s.app.Issuer)
	var err error
	if s.pages, err = loadPages(s.Templates); err != nil {
		return fmt.Errorf("templates: %v", err)
	}
	base = strings.TrimSuffix(s.app.Issuer, "/") + s.Prefix
	// RFC 7523 §3 item 3: the token endpoint URL, or the issuer
	// identifier (RFC 8414 §2) as OpenID Connect and RFC 7523bis allow.
	s.assertionAud = []string{s.app.Issuer, base + "/token"}
	if s.app.fapi2() {
		// FAPI 2.0: the issuer identifier only, so an assertion made for
		// another server's endpoint cannot be replayed here.
		s.assertionAud = []string{s.app.Issuer}
	}
	if s.metadata, err = s.app.buildMetadata(base); err != nil {
		return err
	}
	s.openIDConfigPath = openIDConfigPath(s.app.Issuer)
	s.openIDConfig, err = s.app.buildOpenIDConfig(s.metadata, base)
	return err
}

func validatePrefix(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q must start with /", p)
	}
	if strings.ContainsAny(p, "*?#{} ") || strings.Contains(p, "//") {
		return fmt.Errorf("%q must be a plain path", p)
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	switch r.URL.Path {
	case s.tokenPath:
		s.serveToken(w, r)
		return nil
	case s.jwksPath:
		// An instance of a cluster that has signed no ID token yet still
		// publishes the ID-token key another one made.
		servePublicDocument(w, r, s.jwks.get(s.app.Keyring(), s.app.idKeys.published(r.Context())))
		return nil
	case s.authorizePath:
		s.serveAuthorize(w, r)
		return nil
	case s.loginPath:
		s.serveLogin(w, r)
		return nil
	case s.consentPath:
		s.serveConsent(w, r)
		return nil
	case s.endSessionPath:
		s.serveEndSession(w, r)
		return nil
	case s.accountPath:
		s.serveAccount(w, r)
		return nil
	case s.logoutPath:
		s.serveLogout(w, r)
		return nil
	case s.userinfoPath:
		s.serveUserinfo(w, r)
		return nil
	case s.introPath:
		s.serveIntrospect(w, r)
		return nil
	case s.revokePath:
		s.serveRevoke(w, r)
		return nil
	case s.signupPath:
		s.serveSignup(w, r)
		return nil
	case s.parPath:
		s.servePAR(w, r)
		return nil
	case s.metadataPath:
		servePublicDocument(w, r, s.metadata)
		return nil
	case s.openIDConfigPath:
		servePublicDocument(w, r, s.openIDConfig)
		return nil
	}
	return next.ServeHTTP(w, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Server)(nil)
	_ caddyhttp.MiddlewareHandler = (*Server)(nil)
)
