package caddyoauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/dpop/dpoptest"
)

// fapiConfig is a FAPI 2.0 configuration that meets the profile: ES256,
// one confidential client authenticating with private_key_jwt.
func fapiConfig(t testing.TB) (*App, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cfg := &App{
		Issuer:  testIssuer,
		Profile: ProfileFAPI2,
		Clients: []*Client{{ClientSettings: ClientSettings{
			ID: pkjID, AuthMethod: authPrivateKeyJWT, JWKS: clientJWKS(t, "k1", &key.PublicKey),
			RedirectURIs: []string{webRedirect}, GrantTypes: []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials},
			Scopes: []string{"openid", "accounts:read"},
		}}},
	}
	return cfg, key
}

// TestFAPI2RefusesConfig: a configuration that cannot meet the FAPI 2.0
// Security Profile is refused, naming what fails.
func TestFAPI2RefusesConfig(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*App)
		want string
	}{
		{"§5.4.1: RS256 signing key", func(a *App) { a.SigningKey = &SigningKeyConfig{Algorithm: "RS256"} }, "signing_key"},
		{"§5.4.1: ES384 signing key", func(a *App) { a.SigningKey = &SigningKeyConfig{Algorithm: "ES384"} }, "signing_key"},
		{"§5.3.2.1: public client", func(a *App) {
			a.Clients = append(a.Clients, &Client{ClientSettings: ClientSettings{ID: spaID, Public: true, RedirectURIs: []string{spaRedirect}, Scopes: []string{"openid"}}})
		}, "public"},
		{"§5.3.2.1: client secret", func(a *App) {
			a.Clients = append(a.Clients, &Client{ClientSettings: ClientSettings{ID: webID, RedirectURIs: []string{webRedirect}, Scopes: []string{"openid"}}, Secret: webSecret})
		}, "token_endpoint_auth_method"},
		{"§5.4.1: RS256 ID tokens", func(a *App) { a.Clients[0].IDTokenSignedResponseAlg = "RS256" }, "id_token_signed_response_alg"},
		{"unknown profile", func(a *App) { a.Profile = "fapi3" }, "profile"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := fapiConfig(t)
			tc.mod(cfg)
			err := cfg.provision(t.Context(), newStorage(t), zap.NewNop())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("provision: %v; want an error naming %s", err, tc.want)
			}
		})
	}
	cfg, _ := fapiConfig(t)
	if err := cfg.provision(t.Context(), newStorage(t), zap.NewNop()); err != nil {
		t.Fatalf("a conforming configuration was refused: %v", err)
	}
}

// TestFAPI2Applies: what the profile turns on (FAPI 2.0 §5.3.2.1): PAR and
// PKCE required, sender-constrained tokens only, the issuer as the only
// assertion audience, redirect_uri in every pushed request, ID tokens with
// the signing key, and metadata narrowed to what a client may use.
func TestFAPI2Applies(t *testing.T) {
	cfg, key := fapiConfig(t)
	cfg.store = NewMemoryStore()
	s := newServer(t, newApp(t, cfg), "")
	a := s.app
	c := a.clients[pkjID]
	if !a.RequirePushedAuthorizationRequests || !c.RequirePKCE || c.IDTokenSignedResponseAlg != "ES256" || a.reuseGrace() != fapiReuseGrace {
		t.Fatalf("profile not applied: PAR %v, PKCE %v, ID token alg %q, grace %s", a.RequirePushedAuthorizationRequests, c.RequirePKCE, c.IDTokenSignedResponseAlg, a.reuseGrace())
	}
	assertion := func(aud string) string {
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": pkjID, "sub": pkjID, "aud": aud,
			"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": fmt.Sprintf("j-%d", now.UnixNano())})
		tok.Header["kid"] = "k1"
		signed, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	form := func(aud string) url.Values {
		return ccForm("client_assertion_type", assertType, "client_assertion", assertion(aud), "scope", "accounts:read")
	}
	k := dpopKey(t)

	// Sender-constrained tokens only: no proof, no token.
	assertOAuthError(t, dpopRequest(t, s, form(testIssuer)), http.StatusBadRequest, errInvalidDPoPProof)
	// The token endpoint URL is not an accepted audience under FAPI 2.0.
	if m := assertOAuthError(t, dpopRequest(t, s, form(tokenURL), k.Proof("POST", tokenURLOf, dpoptest.Options{})), http.StatusBadRequest, errInvalidClient); !strings.Contains(fmt.Sprint(m["error_description"]), "audience") {
		t.Fatalf("assertion for the token endpoint URL: %v", m)
	}
	// A DPoP proof with a non-FAPI algorithm is refused.
	es384, err := dpoptest.NewKey("ES384")
	if err != nil {
		t.Fatal(err)
	}
	assertOAuthError(t, dpopRequest(t, s, form(testIssuer), es384.Proof("POST", tokenURLOf, dpoptest.Options{})), http.StatusBadRequest, errInvalidDPoPProof)
	rec := dpopRequest(t, s, form(testIssuer), k.Proof("POST", tokenURLOf, dpoptest.Options{}))
	if rec.Code != http.StatusOK || boundJKT(t, tokenJSON(t, rec)["access_token"].(string)) != k.JKT {
		t.Fatalf("conforming token request: %d %s", rec.Code, rec.Body)
	}

	// PAR: redirect_uri required in the pushed request.
	_, challenge := pkce()
	par := url.Values{"response_type": {"code"}, "client_id": {pkjID}, "scope": {"openid"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
		"client_assertion_type": {assertType}, "client_assertion": {assertion(testIssuer)}}
	r := httptest.NewRequest(http.MethodPost, "/oauth2/par", strings.NewReader(par.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec, _ = serve(t, s, r)
	assertOAuthError(t, rec, http.StatusBadRequest, errInvalidRequest)

	m := fetchMetadata(t, s, "/.well-known/oauth-authorization-server")
	if fmt.Sprint(m["token_endpoint_auth_methods_supported"]) != "[private_key_jwt tls_client_auth self_signed_tls_client_auth]" ||
		fmt.Sprint(m["dpop_signing_alg_values_supported"]) != "[PS256 ES256 EdDSA]" ||
		fmt.Sprint(m["token_endpoint_auth_signing_alg_values_supported"]) != "[PS256 ES256 EdDSA]" ||
		m["require_pushed_authorization_requests"] != true {
		t.Fatalf("metadata under fapi2: methods %v, dpop algs %v, assertion algs %v, PAR %v", m["token_endpoint_auth_methods_supported"],
			m["dpop_signing_alg_values_supported"], m["token_endpoint_auth_signing_alg_values_supported"], m["require_pushed_authorization_requests"])
	}
}
