package caddyoauth

import (
	"github.com/caddyapigw/gateway/internal/dpop"

	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// wellKnownMetadata is the RFC 8414 §3 well-known URI suffix.
const wellKnownMetadata = "/.well-known/oauth-authorization-server"

// metadataPath is where the metadata document of issuer is served: the
// well-known suffix inserted between the host and the issuer's path
// (RFC 8414 §3.1).
func metadataPath(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return wellKnownMetadata
	}
	// Decoded, as r.URL.Path is when requests are routed.
	return wellKnownMetadata + strings.TrimSuffix(u.Path, "/")
}

// serverMetadata is the RFC 8414 §2 document; it advertises exactly what
// this server implements.
type serverMetadata struct {
	Issuer                                             string   `json:"issuer"`
	AuthorizationEndpoint                              string   `json:"authorization_endpoint"`
	TokenEndpoint                                      string   `json:"token_endpoint"`
	JWKSURI                                            string   `json:"jwks_uri"`
	UserinfoEndpoint                                   string   `json:"userinfo_endpoint"`
	IntrospectionEndpoint                              string   `json:"introspection_endpoint"`
	IntrospectionEndpointAuthMethodsSupported          []string `json:"introspection_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthSigningAlgValuesSupported []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpoint                                 string   `json:"revocation_endpoint"`
	RevocationEndpointAuthMethodsSupported             []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationEndpointAuthSigningAlgValuesSupported    []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	ScopesSupported                                    []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                             []string `json:"response_types_supported"`
	ResponseModesSupported                             []string `json:"response_modes_supported"`
	GrantTypesSupported                                []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported                  []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported         []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	CodeChallengeMethodsSupported                      []string `json:"code_challenge_methods_supported"`
	AuthorizationResponseIssParameterSupported         bool     `json:"authorization_response_iss_parameter_supported"`
	DPoPSigningAlgValuesSupported                      []string `json:"dpop_signing_alg_values_supported"`     // RFC 9449 §5.1
	PushedAuthorizationRequestEndpoint                 string   `json:"pushed_authorization_request_endpoint"` // RFC 9126 §5
	RequirePushedAuthorizationRequests                 bool     `json:"require_pushed_authorization_requests"`
	RegistrationEndpoint                               string   `json:"registration_endpoint,omitempty"` // RFC 8414 §2, RFC 7591

	// RFC 8705 §3.3 and §5.
	TLSClientCertificateBoundAccessTokens bool         `json:"tls_client_certificate_bound_access_tokens"`
	MTLSEndpointAliases                   *mtlsAliases `json:"mtls_endpoint_aliases,omitempty"`
}

// buildMetadata renders the metadata document for endpoints under base.
func (a *App) buildMetadata(base string) ([]byte, error) {
	var scopes []string
	for _, c := range a.Clients {
		for _, s := range c.Scopes {
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	slices.Sort(scopes)
	m := serverMetadata{
		Issuer:                a.Issuer,
		AuthorizationEndpoint: base + "/authorize",
		TokenEndpoint:         base + "/token",
		JWKSURI:               base + "/jwks",
		UserinfoEndpoint:      base + "/userinfo",
		IntrospectionEndpoint: base + "/introspect",
		// RFC 7662 §2.1: only authenticated (confidential) clients.
		IntrospectionEndpointAuthMethodsSupported:          []string{authBasic, authPost, authPrivateKeyJWT, authClientSecretJWT, authTLS, authSelfSignedTLS},
		IntrospectionEndpointAuthSigningAlgValuesSupported: assertionAlgs(),
		RevocationEndpoint:                              base + "/revoke",
		RevocationEndpointAuthMethodsSupported:          []string{authBasic, authPost, authPrivateKeyJWT, authClientSecretJWT, authTLS, authSelfSignedTLS, authNone},
		RevocationEndpointAuthSigningAlgValuesSupported: assertionAlgs(),
		ScopesSupported:                                 scopes,
		ResponseTypesSupported:                          []string{"code"},
		ResponseModesSupported:                          []string{"query"},
		GrantTypesSupported:                             supportedGrants(),
		TokenEndpointAuthMethodsSupported:               []string{authBasic, authPost, authPrivateKeyJWT, authClientSecretJWT, authTLS, authSelfSignedTLS, authNone},
		// RFC 8414 §2: the algorithms of private_key_jwt and
		// client_secret_jwt assertions.
		TokenEndpointAuthSigningAlgValuesSupported: assertionAlgs(),
		CodeChallengeMethodsSupported:              []string{"S256"},
		// RFC 9207: redirects carry iss.
		AuthorizationResponseIssParameterSupported: true,
		DPoPSigningAlgValuesSupported:              dpop.Algs,
		PushedAuthorizationRequestEndpoint:         base + "/par",
		RequirePushedAuthorizationRequests:         a.RequirePushedAuthorizationRequests,
		RegistrationEndpoint:                       a.registrationEndpoint(base),

		TLSClientCertificateBoundAccessTokens: true,
		MTLSEndpointAliases:                   a.mtlsEndpointAliases(),
	}
	if a.fapi2() {
		a.fapiMetadata(&m)
	}
	return json.MarshalIndent(m, "", "  ")
}

// jwksCache holds the rendered JWKS of one keyring, rebuilt when the
// keyring is replaced.
type jwksCache struct {
	v atomic.Pointer[jwksEntry]
}

type jwksEntry struct {
	kr, id *oauthjwt.Keyring
	body   []byte
}

// get returns the JWKS of the access-token keyring kr and, when not nil,
// the ID-token keyring id (each key with its alg, RFC 7517 §4.4).
func (c *jwksCache) get(kr, id *oauthjwt.Keyring) []byte {
	if e := c.v.Load(); e != nil && e.kr == kr && e.id == id {
		return e.body
	}
	set := kr.JWKS()
	if id != nil {
		set.Keys = append(set.Keys, id.JWKS().Keys...)
	}
	body, _ := json.Marshal(set)
	c.v.Store(&jwksEntry{kr: kr, id: id, body: body})
	return body
}

// servePublicDocument answers GET and HEAD with a cacheable public JSON
// document that browsers may read cross-origin.
func servePublicDocument(w http.ResponseWriter, r *http.Request, body []byte) {
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, &oauthError{Code: errInvalidRequest, Description: "use GET"})
		return
	}
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodHead {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSONBytes(w, http.StatusOK, body)
}

// assertionAlgs are the algorithms of client assertions (private_key_jwt
// with a public key, client_secret_jwt with HS256), RFC 8414 §2.
func assertionAlgs() []string { return append(slices.Clone(oauthjwt.SupportedAlgs), oauthjwt.HS256) }
