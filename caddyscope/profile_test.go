package caddyscope

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// providerRSAKey is the one RSA key the provider-shaped tokens are signed
// with (the providers sign with RS256); generating one per test is slow.
var providerRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// providerJWKS serves the test RSA key under each provider's kid, as a
// JWK Set (RFC 7517 §5) on loopback. Entra's keys carry no alg, so the
// kid of the Entra tokens is served without one, as Entra does.
type providerJWKS struct {
	srv  *httptest.Server
	keys map[string]*oauthjwt.Key // by kid
}

// Key ids of the tokens below, as the providers' documentation shows them.
const (
	kidKeycloak = "oFvWYHq6GCXJGAbN3tcS3Ixo-bPwF0gIo-oo5Ly-JKk"
	kidAuth0    = "NTAxZmMxNDMyZDg3MTU1ZGM0MzEzODJhZWI4NDNlZDU1OGFkNjFiMQ"
	kidEntra    = "i6lGk3FZzxRcUb2C3nEQ7syHJlY" // no alg in the JWKS
	kidOkta     = "45js03w0djwedsw"
	kidGoogle   = "f05415b13acb9590f70df862765c655f5a7a019e"
)

func newProviderJWKS(t testing.TB) *providerJWKS {
	t.Helper()
	pj := &providerJWKS{keys: map[string]*oauthjwt.Key{}}
	var set []map[string]any
	for _, kid := range []string{kidKeycloak, kidAuth0, kidEntra, kidOkta, kidGoogle} {
		k, err := oauthjwt.NewKey(oauthjwt.RS256, providerRSAKey(), kid)
		if err != nil {
			t.Fatal(err)
		}
		pj.keys[kid] = k
		var change map[string]any
		if kid == kidEntra {
			change = map[string]any{"alg": nil}
		}
		set = append(set, jwkJSON(t, k, change))
	}
	body := jwksJSON(set...)
	pj.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(pj.srv.Close)
	return pj
}

func (pj *providerJWKS) url() string { return pj.srv.URL + "/jwks" }

// sign makes a JWS with header (alg RS256 added) over claims.
func (pj *providerJWKS) sign(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	h := maps.Clone(header)
	h["alg"] = "RS256"
	return rawToken(h, claims, func(in string) []byte {
		sig, err := jwt.SigningMethodRS256.Sign(in, providerRSAKey())
		if err != nil {
			t.Fatal(err)
		}
		return sig
	})
}

// providerToken is a token as one provider issues it with its defaults.
type providerToken struct {
	name     string
	issuer   string
	profile  string
	opts     func(*Issuer) // further issuer options (Entra: algorithms)
	audience string
	header   map[string]any
	claims   map[string]any
	// what the preset reads
	client, scope, roles string
}

// fresh sets exp, iat and nbf around now; the documented samples expired
// long ago.
func fresh(c map[string]any) map[string]any {
	now := time.Now()
	c = maps.Clone(c)
	for k := range c {
		switch k {
		case "exp":
			c[k] = now.Add(time.Hour).Unix()
		case "iat", "nbf", "auth_time":
			c[k] = now.Add(-time.Minute).Unix()
		}
	}
	return c
}

var entraAlgorithms = func(is *Issuer) { is.Algorithms = []string{"RS256"} }

// providerTokens are the claim sets of the providers' documentation,
// with exp, iat and nbf moved to now and the key ids above.
func providerTokens() []providerToken {
	return []providerToken{
		{
			// Keycloak 26 access token for a user, with an Audience mapper
			// adding the API next to Keycloak's default "account"
			// (https://www.keycloak.org/docs/latest/server_admin/#audience-support).
			name: "keycloak", issuer: "https://keycloak.example.com/realms/demo", profile: ProfileKeycloak,
			audience: "https://api.example.com",
			header:   map[string]any{"typ": "JWT", "kid": kidKeycloak},
			claims: fresh(map[string]any{
				"exp": 0, "iat": 0, "auth_time": 0,
				"jti":                "onrtac:3e4c3c23-7c1f-4c8e-9a53-5a9a5e0c8b5a",
				"iss":                "https://keycloak.example.com/realms/demo",
				"aud":                []string{"https://api.example.com", "account"},
				"sub":                "f3b8c1d2-6f0a-4e4b-9b2e-0c6a1d9e7a11",
				"typ":                "Bearer",
				"azp":                "notes-web",
				"sid":                "5b0b7a4e-2c4d-4d8a-9a6e-3f1d2c7b9e10",
				"acr":                "1",
				"allowed-origins":    []string{"https://app.example.com"},
				"realm_access":       map[string]any{"roles": []string{"default-roles-demo", "offline_access", "uma_authorization", "admin"}},
				"resource_access":    map[string]any{"account": map[string]any{"roles": []string{"manage-account", "manage-account-links", "view-profile"}}},
				"scope":              "openid profile email notes:read",
				"email_verified":     true,
				"name":               "Alice Liddell",
				"preferred_username": "alice",
				"given_name":         "Alice",
				"family_name":        "Liddell",
				"email":              "alice@example.com",
			}),
			client: "notes-web", scope: "openid profile email notes:read", roles: "default-roles-demo offline_access uma_authorization admin",
		},
		{
			// Auth0 token profile sample
			// (https://auth0.com/docs/secure/tokens/access-tokens/access-token-profiles),
			// with the roles an Action adds as a namespaced claim.
			name: "auth0", issuer: "https://my-domain.auth0.com/", profile: ProfileAuth0,
			opts:     func(is *Issuer) { is.RolesClaim = "https://example.com/roles" },
			audience: "https://example.com/health-api",
			header:   map[string]any{"typ": "JWT", "kid": kidAuth0},
			claims: fresh(map[string]any{
				"iss":                       "https://my-domain.auth0.com/",
				"sub":                       "auth0|123456",
				"aud":                       []string{"https://example.com/health-api", "https://my-domain.auth0.com/userinfo"},
				"azp":                       "my_client_id",
				"exp":                       0,
				"iat":                       0,
				"scope":                     "openid profile read:patients read:admin",
				"my_custom_claim":           "my_custom_value",
				"https://example.com/roles": []string{"admin"},
			}),
			client: "my_client_id", scope: "openid profile read:patients read:admin", roles: "admin",
		},
		{
			// Entra ID v1.0 access token sample
			// (https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens),
			// decoded: appid, scp, no azp.
			name: "entra v1", issuer: "https://sts.windows.net/fa15d692-e9c7-4460-a743-29f29522229/", profile: ProfileEntra,
			opts: entraAlgorithms, audience: "ef1da9d4-ff77-4c3e-a005-840c3f830745",
			header: map[string]any{"typ": "JWT", "x5t": kidEntra, "kid": kidEntra},
			claims: fresh(map[string]any{
				"aud": "ef1da9d4-ff77-4c3e-a005-840c3f830745", "iss": "https://sts.windows.net/fa15d692-e9c7-4460-a743-29f29522229/",
				"iat": 0, "nbf": 0, "exp": 0, "acr": "1",
				"aio":   "AXQAi/8IAAAAFm+E/QTG+gFnVxLjWdw8K+61AGrSOuMMF6ebaMj7XO3IbmD3fGmrOyD+NvZyGn2VaT/kDKXw4MIhrgGVq6Bn8wLXoT1LkIZ+FzQVkJPPLQOV4KcXqSlCVPDS/DiCDgE222TImMvWNaEMaUOTsIGvTQ==",
				"amr":   []string{"wia"},
				"appid": "75dbe77f-10a3-4e59-85fd-8c127544f17c", "appidacr": "0", "email": "AbeLi@microsoft.com",
				"family_name": "Lincoln", "given_name": "Abe (MSFT)", "idp": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd0122247/",
				"ipaddr": "222.222.222.22", "name": "abeli", "oid": "02223b6b-aa1d-42d4-9ec0-1b2bb9194438", "rh": "I",
				"scp": "user_impersonation", "sub": "l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA",
				"tid": "fa15d692-e9c7-4460-a743-29f2956fd429", "unique_name": "abeli@microsoft.com",
				"uti": "FVsGxYXI30-TuikuuUoFAA", "ver": "1.0",
			}),
			client: "75dbe77f-10a3-4e59-85fd-8c127544f17c", scope: "user_impersonation",
		},
		{
			// Entra ID v2.0 access token sample, decoded: azp, scp.
			name: "entra v2", issuer: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0", profile: ProfileEntra,
			opts: entraAlgorithms, audience: "6e74172b-be56-4843-9ff4-e66a39bb12e3",
			header: map[string]any{"typ": "JWT", "kid": kidEntra},
			claims: fresh(map[string]any{
				"aud": "6e74172b-be56-4843-9ff4-e66a39bb12e3", "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
				"iat": 0, "nbf": 0, "exp": 0,
				"aio": "AXQAi/8IAAAAtAaZLo3ChMif6KOnttRB7eBq4/DccQzjcJGxPYy/C3jDaNGxXd6wNIIVGRghNRnwJ1lOcAnNZcjvkoyrFxCttv33140RioOFJ4bCCGVuoCag1uOTT22222gHwLPYQ/uf79QX+0KIijdrmp69RctzmQ==",
				"azp": "6e74172b-be56-4843-9ff4-e66a39bb12e3", "azpacr": "0", "name": "Abe Lincoln",
				"oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474", "preferred_username": "abeli@microsoft.com", "rh": "I",
				"scp": "access_as_user", "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
				"tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0",
			}),
			client: "6e74172b-be56-4843-9ff4-e66a39bb12e3", scope: "access_as_user",
		},
		{
			// Entra ID v2.0 app-only token (client credentials): no scp,
			// the application permissions in roles
			// (https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference).
			name: "entra v2 app-only", issuer: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0", profile: ProfileEntra,
			opts: entraAlgorithms, audience: "6e74172b-be56-4843-9ff4-e66a39bb12e3",
			header: map[string]any{"typ": "JWT", "kid": kidEntra},
			claims: fresh(map[string]any{
				"aud": "6e74172b-be56-4843-9ff4-e66a39bb12e3", "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
				"iat": 0, "nbf": 0, "exp": 0, "azp": "0d4f9f0b-1c7e-4e4f-8a4a-6d2b8c0c9a77", "azpacr": "1",
				"idtyp": "app", "oid": "8a1b2c3d-0000-4000-8000-123456789abc", "rh": "I",
				"roles": []string{"Notes.Read.All", "admin"}, "sub": "8a1b2c3d-0000-4000-8000-123456789abc",
				"tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "uti": "Qw3rTy-uIoPaSdFgHjKlAA", "ver": "2.0",
			}),
			client: "0d4f9f0b-1c7e-4e4f-8a4a-6d2b8c0c9a77", roles: "Notes.Read.All admin",
		},
		{
			// Okta custom authorization server access token
			// (https://developer.okta.com/docs/api/openapi/okta-oauth/guides/overview/#access-token-payload):
			// no typ header, cid, scp as an array, and the groups claim
			// the server adds.
			name: "okta", issuer: "https://your-org.okta.com/oauth2/0oacqf8qaJw56czJi0g4", profile: ProfileOkta,
			audience: "https://api.example.com",
			header:   map[string]any{"kid": kidOkta},
			claims: fresh(map[string]any{
				"ver": 1, "jti": "AT.0mP4JKAZX1iACIT4vbEDF7LpvDVjxypPMf0D7uX39RE",
				"iss": "https://your-org.okta.com/oauth2/0oacqf8qaJw56czJi0g4", "aud": "https://api.example.com",
				"sub": "00ujmkLgagxeRrAg20g3", "iat": 0, "exp": 0, "cid": "nmdP1fcyvdVO11AL7ECm",
				"uid": "00ujmkLgagxeRrAg20g3", "scp": []string{"openid", "email", "flights", "custom"},
				"auth_time": 0, "custom_claim": "CustomValue", "groups": []string{"Everyone", "admin"},
			}),
			client: "nmdP1fcyvdVO11AL7ECm", scope: "openid email flights custom", roles: "Everyone admin",
		},
		{
			// Google ID token payload
			// (https://developers.google.com/identity/openid-connect/openid-connect#an-id-tokens-payload).
			name: "google", issuer: "https://accounts.google.com", profile: ProfileGoogle,
			audience: "1234987819200.apps.googleusercontent.com",
			header:   map[string]any{"kid": kidGoogle, "typ": "JWT"},
			claims: fresh(map[string]any{
				"iss": "https://accounts.google.com", "azp": "1234987819200.apps.googleusercontent.com",
				"aud": "1234987819200.apps.googleusercontent.com", "sub": "10769150350006150715113082367",
				"at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q", "hd": "example.com", "email": "jsmith@example.com",
				"email_verified": "true", "iat": 0, "exp": 0, "nonce": "0394852-3190485-2490358",
			}),
			client: "1234987819200.apps.googleusercontent.com",
		},
	}
}

// providerScope is a route trusting pt's issuer, through the JWKS above,
// with profile (and pt's options when the profile is pt's), GET open to
// any valid token and every identity placeholder forwarded.
func providerScope(pj *providerJWKS, pt providerToken, profile string, rules []Rule) *Scope {
	is := Issuer{Issuer: pt.issuer, Audience: []string{pt.audience}, JWKSURL: pj.url(), Profile: profile}
	if pt.opts != nil {
		pt.opts(&is)
	}
	if profile == "" {
		// The default profile refuses the claim options: keep only the
		// key settings.
		is.ClientIDClaim, is.ScopeClaim, is.RolesClaim = nil, "", ""
	}
	if rules == nil {
		rules = []Rule{{Methods: []string{"GET"}}}
	}
	return &Scope{
		Rules:   rules,
		Issuers: []Issuer{is},
		ForwardHeaders: map[string]string{
			"X-Client-Id": "{oauth.client_id}", "X-Scope": "{oauth.scope}", "X-Roles": "{oauth.roles}", "X-User-Id": "{oauth.sub}",
		},
	}
}

// TestProviderProfiles: each provider's token, shaped as its
// documentation shows it, passes with its preset, which reads its client,
// scopes and roles; under the default RFC 9068 profile the same token is
// refused with 401 "token is not an access token" (RFC 9068 §4: typ must
// be at+jwt).
func TestProviderProfiles(t *testing.T) {
	pj := newProviderJWKS(t)
	for _, pt := range providerTokens() {
		t.Run(pt.name, func(t *testing.T) {
			tok := pj.sign(t, pt.header, pt.claims)

			h, _ := issuerHandler(t, nil, providerScope(pj, pt, pt.profile, nil))
			res := get(t, h, tok)
			mustAccept(t, res)
			for name, want := range map[string]string{"X-Client-Id": pt.client, "X-Scope": pt.scope, "X-Roles": pt.roles, "X-User-Id": str(pt.claims["sub"])} {
				if got := res.nextHeader.Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}

			strict, _ := issuerHandler(t, nil, providerScope(pj, pt, "", nil))
			body := checkRefused(t, get(t, strict, tok), http.StatusUnauthorized, errInvalidToken)
			if body.Description != "token is not an access token" {
				t.Errorf("default profile: error_description = %q", body.Description)
			}
		})
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// TestProviderTokenRefusals: what a preset still refuses. The token is
// Keycloak's, changed one way each time.
func TestProviderTokenRefusals(t *testing.T) {
	pj := newProviderJWKS(t)
	kc := providerTokens()[0]
	h, _ := issuerHandler(t, nil, providerScope(pj, kc, ProfileKeycloak, nil))
	change := func(header, claims map[string]any) string {
		hd := maps.Clone(kc.header)
		for k, v := range header {
			hd[k] = v
		}
		return pj.sign(t, hd, applyChanges(maps.Clone(kc.claims), claims))
	}
	tests := []struct {
		name  string
		token string
		desc  string
	}{
		{"typ dpop+jwt: a DPoP proof, not an access token (RFC 9449 §4.2)", change(map[string]any{"typ": "dpop+jwt"}, nil), "token is not an access token"},
		{"typ logout+jwt: a logout token", change(map[string]any{"typ": "logout+jwt"}, nil), "token is not an access token"},
		{"typ id_token", change(map[string]any{"typ": "id_token"}, nil), "token is not an access token"},
		{"no azp: no client id (an empty one would share one rate-limit bucket)", change(nil, map[string]any{"azp": nil}), "token lacks a required claim"},
		{"client_id does not replace the preset's azp", change(nil, map[string]any{"azp": nil, "client_id": "notes-web"}), "token lacks a required claim"},
		{"no aud (RFC 9068 §4: the audience is always checked)", change(nil, map[string]any{"aud": nil}), "token lacks a required claim"},
		{"Keycloak's default aud only: no audience mapper", change(nil, map[string]any{"aud": "account"}), "token audience not accepted"},
		{"no exp", change(nil, map[string]any{"exp": nil}), "token lacks a required claim"},
		{"iss with another realm", change(nil, map[string]any{"iss": "https://keycloak.example.com/realms/other"}), "token issuer not accepted"},
		{"jku header (RFC 8725 §3.10)", change(map[string]any{"jku": "https://evil.example/jwks"}, nil), "token signature invalid"},
		{"realm_access not an object", change(nil, map[string]any{"realm_access": []string{"admin"}}), "token malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := checkRefused(t, get(t, h, tt.token), http.StatusUnauthorized, errInvalidToken)
			if body.Description != tt.desc {
				t.Errorf("error_description = %q, want %q", body.Description, tt.desc)
			}
		})
	}
	// The same token with sub, iat and jti removed still passes: the
	// preset makes them optional.
	mustAccept(t, get(t, h, change(nil, map[string]any{"sub": nil, "iat": nil, "jti": nil})))
}

// TestRoleRules: a rule can require roles as well as scopes; a token
// without one of them is refused with 403 insufficient_scope (RFC 6750
// §3.1: the request requires higher privileges than the token provides),
// and the challenge names the scopes the rule needs, not the roles.
func TestRoleRules(t *testing.T) {
	pj := newProviderJWKS(t)
	rules := []Rule{
		{Methods: []string{"GET"}, Scopes: []string{"notes:read"}},
		{Methods: []string{"DELETE"}, Scopes: []string{"notes:read"}, Roles: []string{"admin"}},
		{Methods: []string{"PUT"}, Roles: []string{"admin", "editor"}},
		{Methods: []string{"POST"}, Scopes: []string{"notes:write"}, Roles: []string{"admin"}},
	}
	kc := providerTokens()[0]
	h, _ := issuerHandler(t, nil, providerScope(pj, kc, ProfileKeycloak, rules))
	with := func(roles any, scope string) string {
		return pj.sign(t, kc.header, applyChanges(maps.Clone(kc.claims), map[string]any{"realm_access": map[string]any{"roles": roles}, "scope": scope}))
	}
	admin := with([]string{"user", "admin"}, "notes:read")
	user := with([]string{"user"}, "notes:read")
	noRoles := pj.sign(t, kc.header, applyChanges(maps.Clone(kc.claims), map[string]any{"realm_access": nil, "scope": "notes:read"}))
	tests := []struct {
		name, method, token string
		status              int
		desc, scope         string
	}{
		{"no role needed", "GET", user, 200, "", ""},
		{"role held", "DELETE", admin, 200, "", ""},
		{"role missing: 403", "DELETE", user, 403, "token lacks a required role", "notes:read"},
		{"no roles claim at all: 403", "DELETE", noRoles, 403, "token lacks a required role", "notes:read"},
		{"every role is required", "PUT", admin, 403, "token lacks a required role", ""},
		{"roles compare exactly", "DELETE", with([]string{"Admin"}, "notes:read"), 403, "token lacks a required role", "notes:read"},
		{"the scope is checked first", "POST", admin, 403, "token lacks a required scope", "notes:write"},
		{"scope and role held", "POST", with([]string{"admin"}, "notes:write"), 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, repl := newRequest(tt.method, "/", "Bearer "+tt.token)
			res := serve(t, h, r)
			if tt.status == 200 {
				mustAccept(t, res)
				if got, _ := repl.GetString("oauth.roles"); !strings.Contains(got, "admin") && tt.method != "GET" {
					t.Errorf("{oauth.roles} = %q", got)
				}
				return
			}
			body := checkRefused(t, res, http.StatusForbidden, errInsufficientScope)
			ch := parseChallenge(t, res.rec.Header().Get("WWW-Authenticate"))
			if body.Description != tt.desc || ch["error_description"] != tt.desc || ch["scope"] != tt.scope {
				t.Errorf("description %q, challenge %v; want %q with scope %q", body.Description, ch, tt.desc, tt.scope)
			}
			// With handle_errors routes the refusal goes to Caddy as an
			// error, never a silent 200.
			r, _ = newRequest(tt.method, "/", "Bearer "+tt.token)
			res = serve(t, h, withErrorRoutes(r))
			var he caddyhttp.HandlerError
			if !errors.As(res.err, &he) || he.StatusCode != http.StatusForbidden || res.calls != 0 {
				t.Errorf("with handle_errors: ServeHTTP = %v, next ran %d times; want a 403 handler error", res.err, res.calls)
			}
		})
	}
}

// TestRoleRulesLocalToken: the local app's tokens carry no roles: on a
// route that also trusts an issuer with roles, a role rule refuses them
// with 403 once the token itself is found good (a revoked or unknown
// client's token is still 401).
func TestRoleRulesLocalToken(t *testing.T) {
	f := newFixture(t)
	pj := newProviderJWKS(t)
	kc := providerTokens()[0]
	s := providerScope(pj, kc, ProfileKeycloak, []Rule{{Methods: []string{"GET"}, Roles: []string{"admin"}}})
	s.Issuers = append(s.Issuers, Issuer{Issuer: LocalIssuer})
	s.Audience = []string{testAudience}
	h, _ := issuerHandler(t, f, s)
	body := checkRefused(t, get(t, h, f.token(t, claims("user:read", nil))), http.StatusForbidden, errInsufficientScope)
	if body.Description != "token lacks a required role" {
		t.Errorf("error_description = %q", body.Description)
	}
	r, _ := newRequest(http.MethodGet, "/", "Bearer "+f.token(t, claims("user:read", nil)))
	if res := serve(t, h, withErrorRoutes(r)); !isHandlerError(res.err, http.StatusForbidden) {
		t.Errorf("with handle_errors: ServeHTTP = %v; want a 403 handler error", res.err)
	}
	checkRefused(t, get(t, h, f.token(t, claims("user:read", map[string]any{"client_id": "gone"}))), http.StatusUnauthorized, errInvalidToken)
	mustAccept(t, get(t, h, pj.sign(t, kc.header, kc.claims)))
}

// isHandlerError reports whether err is a Caddy handler error with status.
func isHandlerError(err error, status int) bool {
	var he caddyhttp.HandlerError
	return errors.As(err, &he) && he.StatusCode == status
}

// TestProfileConfigRefusals: profile settings that cannot work are
// refused at provision with the field named and the reason.
func TestProfileConfigRefusals(t *testing.T) {
	f := newFixture(t)
	idp := "https://idp.example"
	aud := []string{"https://api.example"}
	tests := []struct {
		name string
		s    Scope
		auth bool
		want string
	}{
		{"client_id_claim under the default profile", Scope{Issuers: []Issuer{{Issuer: idp, Audience: aud, ClientIDClaim: []string{"azp"}}}}, false, "client_id_claim: not with profile rfc9068 (the default): RFC 9068 §2.2 fixes the claims"},
		{"scope_claim under rfc9068", Scope{Issuers: []Issuer{{Issuer: idp, Audience: aud, Profile: "rfc9068", ScopeClaim: "scp"}}}, false, "scope_claim: not with profile rfc9068"},
		{"roles_claim under rfc9068", Scope{Issuers: []Issuer{{Issuer: idp, Audience: aud, RolesClaim: "roles"}}}, false, "roles_claim: not with profile rfc9068"},
		{"unknown profile", Scope{Issuers: []Issuer{{Issuer: idp, Audience: aud, Profile: "cognito"}}}, false, `profile: unknown profile "cognito" (rfc9068, jwt, keycloak, auth0, entra, okta, google)`},
		{"empty client_id_claim", Scope{Issuers: []Issuer{{Issuer: idp, Audience: aud, Profile: "jwt", ClientIDClaim: []string{"azp", ""}}}}, false, "client_id_claim: empty claim name"},
		{"roles_claim with an empty member", Scope{Issuers: []Issuer{{Issuer: idp, Audience: aud, Profile: "jwt", RolesClaim: "realm_access..roles"}}}, false, "roles_claim:"},
		{"a profile on an introspection-only issuer", Scope{Issuers: []Issuer{{Issuer: idp, Profile: "keycloak", IntrospectionURL: idp + "/introspect", ClientID: "gw", ClientSecret: "s"}}}, false, "profile: keycloak applies to JWTs verified with the issuer's keys"},
		{"a profile still needs an audience (RFC 9068 §4)", Scope{Issuers: []Issuer{{Issuer: idp, Profile: "entra"}}}, false, "audience: required"},
		{"a profile on issuer local", Scope{Issuers: []Issuer{{Issuer: LocalIssuer, Profile: "keycloak"}}}, true, "the local issuer takes no options"},
		{"role rule, local app only", Scope{Rules: []Rule{{Methods: []string{"GET"}, Roles: []string{"admin"}}}}, true, "rules[0]: roles: no issuer of this route has a roles claim"},
		{"role rule, RFC 9068 issuers only", Scope{Rules: []Rule{{Methods: []string{"GET"}}, {Methods: []string{"DELETE"}, Roles: []string{"admin"}}}, Issuers: []Issuer{{Issuer: LocalIssuer}, {Issuer: idp, Audience: aud}}}, true, "rules[1]: roles: no issuer of this route has a roles claim"},
		{"role rule, a preset without roles (auth0)", Scope{Rules: []Rule{{Methods: []string{"GET"}, Roles: []string{"admin"}}}, Issuers: []Issuer{{Issuer: idp, Audience: aud, Profile: "auth0"}}}, false, "set roles_claim"},
		{"empty role name", Scope{Rules: []Rule{{Methods: []string{"GET"}, Roles: []string{""}}}, Issuers: []Issuer{{Issuer: idp, Audience: aud, Profile: "okta"}}}, false, "rules[0]: roles:"},
		{"role name with a control character", Scope{Rules: []Rule{{Methods: []string{"GET"}, Roles: []string{"ad\nmin"}}}, Issuers: []Issuer{{Issuer: idp, Audience: aud, Profile: "okta"}}}, false, "rules[0]: roles:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var auth oauthjwt.Authority
			if tt.auth {
				auth = f.auth
			}
			s := tt.s
			err := s.provision(auth, zap.NewNop())
			_ = s.Cleanup()
			if err == nil {
				t.Fatalf("provision accepted %+v", tt.s)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestProfileOverrides: options given explicitly override the preset's.
func TestProfileOverrides(t *testing.T) {
	tests := []struct {
		is                   Issuer
		client, scope, roles string
	}{
		{Issuer{Profile: "keycloak"}, "azp", "scope", "realm_access.roles"},
		{Issuer{Profile: "keycloak", RolesClaim: "resource_access.notes-api.roles"}, "azp", "scope", "resource_access.notes-api.roles"},
		{Issuer{Profile: "entra", ClientIDClaim: []string{"appid"}}, "appid", "scp", "roles"},
		{Issuer{Profile: "okta", ScopeClaim: "scope"}, "cid", "scope", "groups"},
		{Issuer{Profile: "auth0", RolesClaim: "permissions"}, "azp", "scope", "permissions"},
		{Issuer{Profile: "jwt"}, "client_id", "scope", ""},
		{Issuer{Profile: "jwt", ClientIDClaim: []string{"azp", "client_id"}, ScopeClaim: "scp", RolesClaim: "groups"}, "azp client_id", "scp", "groups"},
		{Issuer{Profile: "google"}, "azp", "", ""},
	}
	for _, tt := range tests {
		m, err := tt.is.claimMapping()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(m.ClientIDClaims(), " "); got != tt.client || m.ScopeClaim() != tt.scope || m.RolesClaim() != tt.roles {
			t.Errorf("%+v: client %q scope %q roles %q; want %q %q %q", tt.is, got, m.ScopeClaim(), m.RolesClaim(), tt.client, tt.scope, tt.roles)
		}
	}
	if m, err := (&Issuer{Profile: "rfc9068"}).claimMapping(); m != nil || err != nil {
		t.Errorf("rfc9068: %v, %v", m, err)
	}
}

// TestProfilePoolKey: two routes trusting one issuer under two profiles
// run two verifiers; under one profile they share one.
func TestProfilePoolKey(t *testing.T) {
	pj := newProviderJWKS(t)
	kc := providerTokens()[0]
	a, _ := issuerHandler(t, nil, providerScope(pj, kc, ProfileKeycloak, nil))
	b, _ := issuerHandler(t, nil, providerScope(pj, kc, ProfileKeycloak, nil))
	c, _ := issuerHandler(t, nil, providerScope(pj, kc, ProfileJWT, nil))
	if a.trust.all[0].remote != b.trust.all[0].remote || a.trust.all[0].remote == c.trust.all[0].remote {
		t.Fatal("issuers not shared by profile")
	}
}
