package caddyoauth

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// wellKnownOpenID is the OpenID Connect Discovery 1.0 §4 suffix.
const wellKnownOpenID = "/.well-known/openid-configuration"

// openIDConfigPath is where the OpenID Provider Configuration of issuer
// is served: the suffix appended to the issuer's path (Discovery §4.1),
// unlike RFC 8414 §3.1, which inserts it before the path.
func openIDConfigPath(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return wellKnownOpenID
	}
	return strings.TrimSuffix(u.Path, "/") + wellKnownOpenID
}

// openIDExtra are the members of the OpenID Provider Metadata (Discovery
// §3) that the RFC 8414 document does not have.
type openIDExtra struct {
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                  []string `json:"claims_supported"`
	ClaimsParameterSupported         bool     `json:"claims_parameter_supported"`
	RequestParameterSupported        bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported     bool     `json:"request_uri_parameter_supported"`
	PromptValuesSupported            []string `json:"prompt_values_supported"`
	EndSessionEndpoint               string   `json:"end_session_endpoint"` // RP-Initiated Logout §2.1
}

// buildOpenIDConfig renders the Discovery §3 document from the RFC 8414
// one (rfc8414, built by buildMetadata), so the two never disagree on
// issuer, endpoints or jwks_uri: every member of that document is here
// unchanged, except scopes_supported, which adds the OpenID Connect
// scopes (Discovery §3 says it SHOULD list openid).
func (a *App) buildOpenIDConfig(rfc8414 []byte, base string) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(rfc8414, &doc); err != nil {
		return nil, err
	}
	var scopes []string
	if list, ok := doc["scopes_supported"].([]any); ok {
		for _, s := range list {
			if s, ok := s.(string); ok {
				scopes = append(scopes, s)
			}
		}
	}
	for _, s := range []string{scopeOpenID, scopeProfile, scopeEmail} {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	slices.Sort(scopes)
	doc["scopes_supported"] = scopes

	// The claims this server sets, then the users' own (claim …), sorted.
	claims := []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "sid",
		"name", "preferred_username", "email", "email_verified"}
	var own []string
	for _, u := range a.users {
		for k := range u.Claims {
			if !slices.Contains(claims, k) && !slices.Contains(own, k) {
				own = append(own, k)
			}
		}
	}
	slices.Sort(own)
	claims = append(claims, own...)
	extra, err := json.Marshal(openIDExtra{
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: a.idTokenAlgs(),
		ClaimsSupported:                  claims,
		PromptValuesSupported:            []string{"none", "login", "consent", "select_account"},
		EndSessionEndpoint:               base + "/end_session",
	})
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(extra, &doc); err != nil {
		return nil, err
	}
	return json.MarshalIndent(doc, "", "  ")
}
