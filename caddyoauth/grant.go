package caddyoauth

import (
	"context"
	"net/url"
)

// Grant types (RFC 6749 §4, RFC 7523 §2.1).
const (
	GrantClientCredentials = "client_credentials"
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
)

// grant is one grant type at the token endpoint: a grant_*.go file and a
// line in grants. The implicit and resource-owner password grants are not
// here: RFC 9700 §2.1.2 and §2.4 say they must not be used.
type grant struct {
	name string
	// token answers the token request of a client allowed the grant.
	token func(s *Server, ctx context.Context, c *Client, form url.Values) (*tokenResponse, *oauthError)
	// anonymous, when set, finds the client of a request that carries no
	// client authentication (RFC 7523 §3.1 lets the JWT bearer grant do
	// without).
	anonymous func(a *App, form url.Values) (*Client, *oauthError)
}

// grants are the grant types this server implements, in the order the
// metadata lists them. (Set in init: the handlers refer back to the table
// through client validation.)
var grants []grant

func init() {
	grants = []grant{
		{name: GrantClientCredentials, token: (*Server).clientCredentials},
		{name: GrantAuthorizationCode, token: (*Server).authorizationCode},
		{name: GrantRefreshToken, token: (*Server).refreshGrant},
		{name: GrantJWTBearer, token: (*Server).jwtBearer, anonymous: (*App).jwtBearerClient},
	}
}

// supportedGrants are the names in grants: what a client may be allowed and
// what the metadata's grant_types_supported says.
func supportedGrants() []string {
	names := make([]string, len(grants))
	for i, g := range grants {
		names[i] = g.name
	}
	return names
}

// findGrant returns the grant called name.
func findGrant(name string) (*grant, bool) {
	for i := range grants {
		if grants[i].name == name {
			return &grants[i], true
		}
	}
	return nil, false
}

// grantFor is the one place that answers a token request's grant_type
// (RFC 6749 §5.2): missing is invalid_request, one this server does not
// implement is unsupported_grant_type, one the client is not allowed is
// unauthorized_client.
func grantFor(c *Client, name string) (*grant, *oauthError) {
	if name == "" {
		return nil, badRequest(errInvalidRequest, "grant_type is required")
	}
	g, ok := findGrant(name)
	if !ok {
		return nil, badRequest(errUnsupportedGrantType, "grant_type is not supported")
	}
	if !c.allowsGrant(name) {
		return nil, badRequest(errUnauthorizedClient, "client is not allowed this grant_type")
	}
	return g, nil
}
