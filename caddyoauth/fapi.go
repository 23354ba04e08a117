package caddyoauth

import (
	"fmt"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// The FAPI 2.0 Security Profile switch (`profile fapi2`): it turns on what
// the profile requires of an authorization server and refuses a
// configuration that cannot meet it. docs/fapi2.md maps each requirement
// to what meets it.

// ProfileFAPI2 is the App.Profile value of the FAPI 2.0 Security Profile.
const ProfileFAPI2 = "fapi2"

// fapiAlgs are the signature algorithms FAPI 2.0 allows (§5.4.1).
var fapiAlgs = []string{oauthjwt.PS256, oauthjwt.ES256, oauthjwt.EdDSA}

// fapiReuseGrace is the refresh token reuse grace under FAPI 2.0: the
// profile allows rotation only when retrying with the previous refresh
// token succeeds after a lost answer (§5.3.2.1), so the window is the
// longest this server allows.
const fapiReuseGrace = time.Minute

// fapi2 reports whether the app runs the FAPI 2.0 profile.
func (a *App) fapi2() bool { return a.Profile == ProfileFAPI2 }

// provisionProfile checks the profile name and, for fapi2, applies and
// checks what the profile requires. It runs after the clients are
// provisioned and before the keys are loaded.
func (a *App) provisionProfile() error {
	switch a.Profile {
	case "":
		return nil
	case ProfileFAPI2:
	default:
		return fmt.Errorf("profile: %q is not a profile (known: %s)", a.Profile, ProfileFAPI2)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("profile fapi2: "+format, args...)
	}
	if !slices.Contains(fapiAlgs, a.SigningKey.Algorithm) {
		return fail("signing_key: %s is not allowed; use one of %v (FAPI 2.0 §5.4.1)", a.SigningKey.Algorithm, fapiAlgs)
	}
	// Every authorization request is pushed (§5.3.2.1).
	a.RequirePushedAuthorizationRequests = true
	if a.RefreshTokenReuseGrace == nil {
		g := caddy.Duration(fapiReuseGrace)
		a.RefreshTokenReuseGrace = &g
	}
	for _, c := range a.Clients {
		if err := fapiClient(c, a.SigningKey.Algorithm); err != nil {
			return fail("client %q: %v", c.ID, err)
		}
	}
	return nil
}

// fapiClient checks one client against FAPI 2.0 and sets what the profile
// turns on for it.
func fapiClient(c *Client, signingAlg string) error {
	if c.Public {
		return fmt.Errorf("public: FAPI 2.0 allows confidential clients only (§5.3.2.1)")
	}
	if !slices.Contains(fapiAuthMethods, c.AuthMethod) {
		return fmt.Errorf("token_endpoint_auth_method: %q is not allowed; use one of %v (§5.3.2.1)", c.AuthMethod, fapiAuthMethods)
	}
	switch alg := c.IDTokenSignedResponseAlg; {
	case alg == "":
		// ID tokens with the signing key, not the RS256 default
		c.IDTokenSignedResponseAlg = signingAlg
	case !slices.Contains(fapiAlgs, alg):
		return fmt.Errorf("id_token_signed_response_alg: %s is not allowed; use one of %v (§5.4.1)", alg, fapiAlgs)
	}
	// PKCE S256 for every authorization request (§5.3.2.1); a client
	// without the code grant makes none (and require_pkce is refused for
	// it, which would refuse machine clients at their second provision).
	c.RequirePKCE = c.allowsGrant(GrantAuthorizationCode)
	return nil
}

// fapiAuthMethods are the client authentication methods FAPI 2.0 allows
// (§5.3.2.1): private_key_jwt, or mTLS (RFC 8705).
var fapiAuthMethods = []string{authPrivateKeyJWT, authTLS, authSelfSignedTLS}

// fapiSenderConstrained reports whether a client's tokens are bound without
// a DPoP proof: to its TLS client certificate (RFC 8705 §3), because it
// authenticates with it or is registered for bound tokens (certBinding
// then refuses a token request without a certificate).
func fapiSenderConstrained(c *Client) bool {
	return c.usesMTLS() || c.TLSClientCertificateBoundAccessTokens
}

// fapiMetadata narrows the metadata to what FAPI 2.0 lets a client use:
// its authentication methods and algorithms.
func (a *App) fapiMetadata(m *serverMetadata) {
	methods := func(list []string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return !slices.Contains(fapiAuthMethods, s) })
	}
	m.TokenEndpointAuthMethodsSupported = methods(m.TokenEndpointAuthMethodsSupported)
	m.IntrospectionEndpointAuthMethodsSupported = methods(m.IntrospectionEndpointAuthMethodsSupported)
	m.RevocationEndpointAuthMethodsSupported = methods(m.RevocationEndpointAuthMethodsSupported)
	m.TokenEndpointAuthSigningAlgValuesSupported = fapiAlgs
	m.IntrospectionEndpointAuthSigningAlgValuesSupported = fapiAlgs
	m.RevocationEndpointAuthSigningAlgValuesSupported = fapiAlgs
	m.DPoPSigningAlgValuesSupported = fapiAlgs
}
