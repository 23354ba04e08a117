package caddyscope

import (
	"errors"
	"fmt"
	"slices"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// Issuer profiles, the values of Issuer.Profile. Each profile other than
// ProfileRFC9068 reads the issuer's JWTs with a claim mapping: where the
// client id, the scopes and the roles are. A preset sets the mapping the
// provider uses by default; ClientIDClaim, ScopeClaim and RolesClaim given
// explicitly override it.
//
// Under every profile other than rfc9068 the JWS typ header may be "JWT"
// (what these providers write), absent, or "at+jwt"; any other typ (an
// ID token of another profile, a DPoP proof, a logout token…) is refused.
// The algorithm stays pinned to the issuer's key, iss is compared exactly,
// aud is required and checked against the issuer's audience, exp is
// required, and so is the client id: without one, every caller would
// share one rate-limit bucket. sub, iat and jti become optional. The jku,
// x5u, jwk, x5c and crit headers stay forbidden.
//
// Only the audience tells such an issuer's access tokens from its ID
// tokens, which carry typ JWT too: set audience to the API's own
// identifier, never to the client id of an app (the aud of an ID token),
// except under ProfileGoogle, which is made for ID tokens.
const (
	// ProfileRFC9068 is the default: the JWT Profile for OAuth 2.0 Access
	// Tokens exactly (RFC 9068): typ at+jwt; iss, exp, aud, sub,
	// client_id, iat and jti required; scopes in scope (or scp). The
	// claim options are refused with it.
	ProfileRFC9068 = "rfc9068"

	// ProfileJWT is a generic JWT access token whose claims are named by
	// hand: client_id_claim (default client_id), scope_claim (default
	// scope) and roles_claim (default none).
	ProfileJWT = "jwt"

	// ProfileKeycloak reads the access tokens of a Keycloak realm
	// (issuer https://<host>/realms/<realm>): client id azp, scopes in
	// scope (space-delimited), roles the realm roles in
	// realm_access.roles (client roles are in
	// resource_access.<client>.roles; set roles_claim for those).
	// Keycloak's default aud is "account" (its Audience Resolve mapper):
	// add an Audience mapper to the client scope of the API so its
	// tokens name the API. See
	// https://www.keycloak.org/docs/latest/server_admin/#audience-support.
	ProfileKeycloak = "keycloak"

	// ProfileAuth0 reads Auth0's default access-token profile (issuer
	// https://<tenant>.auth0.com/, trailing slash included): client id
	// azp, scopes in scope. Auth0 puts no roles in access tokens; an
	// Action adds them as a namespaced custom claim whose name the
	// tenant chooses, so set roles_claim to it (e.g.
	// https://example.com/roles). The permissions claim (RBAC's "Add
	// Permissions in the Access Token") is not taken as roles: with RBAC
	// on, the scope claim already holds the granted permissions (the
	// intersection of those requested and those assigned), so rules
	// require them as scopes; set roles_claim permissions to require
	// them as roles anyway. The audience is the API's Identifier. An API
	// set to Auth0's RFC 9068 profile needs no preset. See
	// https://auth0.com/docs/secure/tokens/access-tokens/access-token-profiles
	// and https://auth0.com/docs/get-started/apis/enable-role-based-access-control-for-apis.
	ProfileAuth0 = "auth0"

	// ProfileEntra reads Microsoft Entra ID access tokens for your own
	// API, v2.0 (issuer https://login.microsoftonline.com/<tenant>/v2.0)
	// and v1.0 (issuer https://sts.windows.net/<tenant>/): client id azp
	// (v2) or appid (v1), scopes in scp (space-delimited; delegated
	// tokens only), roles the app roles in roles (app-only tokens carry
	// their application permissions there). The audience is the API's
	// application (client) ID, or in v1 tokens the App ID URI it was
	// requested for. The v1 issuer's discovery document lives at
	// login.microsoftonline.com, not under the issuer: give jwks_url
	// https://login.microsoftonline.com/<tenant>/discovery/keys, and
	// algorithms RS256 since Entra's keys carry no alg. See
	// https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference
	// and https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens.
	ProfileEntra = "entra"

	// ProfileOkta reads the access tokens of an Okta custom
	// authorization server (issuer https://<org>.okta.com/oauth2/<id>,
	// e.g. /oauth2/default): client id cid, scopes in scp (an array),
	// roles in groups, the groups claim the server is set up to add. The
	// audience is the server's (api://default for the default one). See
	// https://developer.okta.com/docs/api/openapi/okta-oauth/guides/overview/#access-token-payload
	// and https://developer.okta.com/docs/guides/customize-tokens-groups-claim/main/.
	ProfileOkta = "okta"

	// ProfileGoogle reads Google ID tokens (issuer
	// https://accounts.google.com), which callers of an API hosted
	// behind Google sign-in or a service account present as bearer
	// tokens: client id azp, no scopes, no roles. The audience is your
	// OAuth client ID (<n>.apps.googleusercontent.com), or the audience
	// the service account's token was requested for. Google also issues
	// tokens whose iss is accounts.google.com without https://; those
	// are refused (iss is compared exactly, and an issuer is a URL). See
	// https://developers.google.com/identity/openid-connect/openid-connect#an-id-tokens-payload.
	ProfileGoogle = "google"
)

// claimPreset is what a profile maps when no option says otherwise.
type claimPreset struct {
	clientID []string
	scope    string
	roles    string
}

// presets are the profiles other than rfc9068.
var presets = map[string]claimPreset{
	ProfileJWT:      {clientID: []string{"client_id"}, scope: "scope"},
	ProfileKeycloak: {clientID: []string{"azp"}, scope: "scope", roles: "realm_access.roles"},
	ProfileAuth0:    {clientID: []string{"azp"}, scope: "scope"},
	ProfileEntra:    {clientID: []string{"azp", "appid"}, scope: "scp", roles: "roles"},
	ProfileOkta:     {clientID: []string{"cid"}, scope: "scp", roles: "groups"},
	ProfileGoogle:   {clientID: []string{"azp"}},
}

// profileNames lists the profiles, for error messages.
const profileNames = "rfc9068, jwt, keycloak, auth0, entra, okta, google"

// claimMapping returns the mapping of the issuer's profile and claim
// options; nil for rfc9068. Errors name the field.
func (is *Issuer) claimMapping() (*oauthjwt.ClaimMapping, error) {
	if is.Profile == "" || is.Profile == ProfileRFC9068 {
		for _, opt := range []struct {
			name string
			set  bool
		}{
			{"client_id_claim", len(is.ClientIDClaim) > 0},
			{"scope_claim", is.ScopeClaim != ""},
			{"roles_claim", is.RolesClaim != ""},
		} {
			if opt.set {
				return nil, fmt.Errorf("%s: not with profile rfc9068 (the default): RFC 9068 §2.2 fixes the claims (client_id, scope); set profile jwt, or a preset (keycloak, auth0, entra, okta, google), to read tokens of another shape", opt.name)
			}
		}
		return nil, nil
	}
	p, ok := presets[is.Profile]
	if !ok {
		return nil, fmt.Errorf("profile: unknown profile %q (%s)", is.Profile, profileNames)
	}
	if len(is.ClientIDClaim) > 0 {
		if slices.Contains(is.ClientIDClaim, "") {
			return nil, errors.New("client_id_claim: empty claim name")
		}
		p.clientID = is.ClientIDClaim
	}
	if is.ScopeClaim != "" {
		p.scope = is.ScopeClaim
	}
	if is.RolesClaim != "" {
		if _, err := oauthjwt.SplitClaimPath(is.RolesClaim); err != nil {
			return nil, fmt.Errorf("roles_claim: %v", err)
		}
		p.roles = is.RolesClaim
	}
	m, err := oauthjwt.NewClaimMapping(p.clientID, p.scope, p.roles)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %v", is.Profile, err)
	}
	return m, nil
}
