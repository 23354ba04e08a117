package caddyoauth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyapigw/gateway/internal/mtls"
)

// Certificate-bound access tokens (RFC 8705 §3): a token issued to a
// client that authenticated with its TLS certificate, or whose
// registration asks for bound tokens, carries the certificate's
// thumbprint in cnf.x5t#S256, and oauth_scope accepts it only on a
// connection with that certificate.

// certCtxKey carries the thumbprint a token request's tokens are bound to.
type certCtxKey struct{}

// boundCert is the x5t#S256 the token request's access token is bound
// to, or "".
func boundCert(ctx context.Context) string {
	v, _ := ctx.Value(certCtxKey{}).(string)
	return v
}

// certBinding decides whether the tokens of this token request are bound
// to the connection's certificate: always for a client that
// authenticated with it (authenticate checked it), and for a client with
// tls_client_certificate_bound_access_tokens, which must then present one.
func certBinding(ctx context.Context, r *http.Request, c *Client) (context.Context, *oauthError) {
	cert := mtls.PeerCertificate(r.TLS)
	switch {
	case cert != nil && (c.usesMTLS() || c.TLSClientCertificateBoundAccessTokens):
		return context.WithValue(ctx, certCtxKey{}, mtls.Thumbprint(cert)), nil
	case c.TLSClientCertificateBoundAccessTokens || c.usesMTLS():
		return nil, badRequest(errInvalidRequest, "this client's tokens are bound to its TLS client certificate (RFC 8705 section 3): present one")
	}
	return ctx, nil
}

// familyCert is the certificate a new refresh family is bound to: a
// public client's (RFC 8705 §4: its refresh tokens are bound too); a
// confidential client's refresh tokens are bound to its authentication.
func familyCert(ctx context.Context, c *Client) string {
	if !c.Public {
		return ""
	}
	return boundCert(ctx)
}

// checkBoundFamilyCert enforces RFC 8705 §4 at a refresh: a refresh token
// bound to a certificate is good only on a connection with it.
func checkBoundFamilyCert(ctx context.Context, familyX5T string) *oauthError {
	if familyX5T == "" || boundCert(ctx) == familyX5T {
		return nil
	}
	return badRequest(errInvalidGrant, "this refresh token is bound to another TLS client certificate (RFC 8705 section 4)")
}

// mtlsAliases are the endpoints of RFC 8705 §5's mtls_endpoint_aliases.
type mtlsAliases struct {
	TokenEndpoint                      string `json:"token_endpoint"`
	RevocationEndpoint                 string `json:"revocation_endpoint"`
	IntrospectionEndpoint              string `json:"introspection_endpoint"`
	UserinfoEndpoint                   string `json:"userinfo_endpoint"`
	PushedAuthorizationRequestEndpoint string `json:"pushed_authorization_request_endpoint"`
}

// mtlsEndpointAliases is the metadata's mtls_endpoint_aliases, or nil
// without mtls_endpoint_base.
func (a *App) mtlsEndpointAliases() *mtlsAliases {
	if a.MTLSEndpointBase == "" {
		return nil
	}
	b := strings.TrimSuffix(a.MTLSEndpointBase, "/")
	return &mtlsAliases{
		TokenEndpoint:                      b + "/token",
		RevocationEndpoint:                 b + "/revoke",
		IntrospectionEndpoint:              b + "/introspect",
		UserinfoEndpoint:                   b + "/userinfo",
		PushedAuthorizationRequestEndpoint: b + "/par",
	}
}

// checkMTLSEndpointBase checks mtls_endpoint_base: an https URL without
// query or fragment.
func checkMTLSEndpointBase(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("mtls_endpoint_base: %q must be an absolute URL without query, fragment or user info, e.g. https://mtls.auth.example.com/oauth2", v)
	}
	if u.Scheme != "https" {
		return fmt.Errorf("mtls_endpoint_base: %q: mutual TLS needs https", v)
	}
	return nil
}
