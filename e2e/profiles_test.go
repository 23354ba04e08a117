package e2e

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// idpKeys is the JWK Set (RFC 7517 §5) the test serves for the identity
// providers it plays: one RSA key under each provider's kid, RS256 as they
// sign. Entra's keys carry no alg, so the Entra kid is served without one,
// as Entra serves its keys (the route then names algorithms RS256).
type idpKeys struct {
	key *rsa.PrivateKey
	srv *httptest.Server
}

const (
	e2eKidKeycloak = "oFvWYHq6GCXJGAbN3tcS3Ixo-bPwF0gIo-oo5Ly-JKk"
	e2eKidAuth0    = "NTAxZmMxNDMyZDg3MTU1ZGM0MzEzODJhZWI4NDNlZDU1OGFkNjFiMQ"
	e2eKidEntra    = "i6lGk3FZzxRcUb2C3nEQ7syHJlY"
	e2eKidOkta     = "45js03w0djwedsw"
)

func newIDPKeys(t *testing.T) *idpKeys {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	var set []map[string]string
	for _, kid := range []string{e2eKidKeycloak, e2eKidAuth0, e2eKidEntra, e2eKidOkta} {
		jwk := map[string]string{"kty": "RSA", "use": "sig", "kid": kid, "alg": "RS256",
			"n": enc.EncodeToString(key.N.Bytes()), "e": enc.EncodeToString(big.NewInt(int64(key.E)).Bytes())}
		if kid == e2eKidEntra {
			delete(jwk, "alg")
		}
		set = append(set, jwk)
	}
	body, _ := json.Marshal(map[string]any{"keys": set})
	k := &idpKeys{key: key}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

// sign makes an RS256 JWS (RFC 7515 §7.1) with header (alg added).
func (k *idpKeys) sign(t *testing.T, header, claims map[string]any) string {
	t.Helper()
	h := maps.Clone(header)
	h["alg"] = "RS256"
	hb, _ := json.Marshal(h)
	pb, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	in := enc.EncodeToString(hb) + "." + enc.EncodeToString(pb)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + enc.EncodeToString(sig)
}

// idpIssuer is one identity provider the gateway trusts: its issuer, the
// preset, the audience its tokens name, and further options.
type idpIssuer struct {
	issuer, profile, audience string
	options                   []string // lines besides profile, audience and jwks_url
	strictOptions             []string // the options kept without the preset
}

var (
	e2eKeycloak = idpIssuer{issuer: "https://keycloak.example.com/realms/demo", profile: "keycloak", audience: "https://api.example.com"}
	e2eAuth0    = idpIssuer{issuer: "https://my-tenant.auth0.com/", profile: "auth0", audience: "https://api.example.com",
		options: []string{"roles_claim https://example.com/roles"}}
	e2eEntraV1 = idpIssuer{issuer: "https://sts.windows.net/fa15d692-e9c7-4460-a743-29f29522229/", profile: "entra", audience: "ef1da9d4-ff77-4c3e-a005-840c3f830745",
		options: []string{"algorithms RS256"}, strictOptions: []string{"algorithms RS256"}}
	e2eEntraV2 = idpIssuer{issuer: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0", profile: "entra", audience: "6e74172b-be56-4843-9ff4-e66a39bb12e3",
		options: []string{"algorithms RS256"}, strictOptions: []string{"algorithms RS256"}}
	e2eOkta = idpIssuer{issuer: "https://your-org.okta.com/oauth2/default", profile: "okta", audience: "api://default"}
)

// idpRoute is a route of the gateway trusting every provider above through
// the test's JWKS, with its preset or, strict, with none (the default RFC
// 9068 profile). GET needs a valid token, POST the scope notes:write,
// DELETE the role admin.
func idpRoute(p ports, keys *idpKeys, name string, strict bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\t@%s path /api/%s /api/%s/*\n\thandle @%s {\n\t\toauth_scope {\n", name, name, name, name)
	b.WriteString("\t\t\tGET\n\t\t\tPOST notes:write\n")
	if strict {
		// No issuer of the strict route has a roles claim, so a role rule
		// would be refused at load: DELETE needs a valid token only.
		b.WriteString("\t\t\tDELETE\n")
	} else {
		b.WriteString("\t\t\tDELETE roles admin\n")
	}
	fmt.Fprintf(&b, "\t\t\trealm %s\n", name)
	for _, is := range []idpIssuer{e2eKeycloak, e2eAuth0, e2eEntraV1, e2eEntraV2, e2eOkta} {
		fmt.Fprintf(&b, "\t\t\tissuer %s {\n", is.issuer)
		fmt.Fprintf(&b, "\t\t\t\taudience %s\n\t\t\t\tjwks_url %s/jwks\n\t\t\t\tjwks_refetch_floor 1s\n", is.audience, keys.srv.URL)
		opts := is.strictOptions
		if !strict {
			fmt.Fprintf(&b, "\t\t\t\tprofile %s\n", is.profile)
			opts = is.options
		}
		for _, o := range opts {
			fmt.Fprintf(&b, "\t\t\t\t%s\n", o)
		}
		b.WriteString("\t\t\t}\n")
	}
	b.WriteString("\t\t\timport identity_headers\n\t\t\tforward_header X-Roles {oauth.roles}\n\t\t}\n")
	fmt.Fprintf(&b, "\t\turi strip_prefix /api\n\t\treverse_proxy 127.0.0.1:%d {\n\t\t\theader_up -Authorization\n\t\t}\n\t}\n", p.upstream)
	return b.String()
}

// providerToken is a token shaped as one provider issues it by default
// (claim sets from the providers' documentation, times moved to now).
type providerToken struct {
	name           string
	header, claims map[string]any
	client, scope  string
	admin          bool // holds the role admin
}

func e2eProviderTokens() []providerToken {
	now := time.Now()
	exp, iat := now.Add(time.Hour).Unix(), now.Add(-time.Minute).Unix()
	return []providerToken{
		{
			// Keycloak: typ JWT, azp, scope, realm_access.roles; aud with
			// the API added by an Audience mapper next to "account".
			name: "keycloak", header: map[string]any{"typ": "JWT", "kid": e2eKidKeycloak},
			claims: map[string]any{
				"exp": exp, "iat": iat, "jti": "onrtac:3e4c3c23-7c1f-4c8e-9a53-5a9a5e0c8b5a",
				"iss": e2eKeycloak.issuer, "aud": []string{"https://api.example.com", "account"},
				"sub": "f3b8c1d2-6f0a-4e4b-9b2e-0c6a1d9e7a11", "typ": "Bearer", "azp": "notes-web",
				"sid": "5b0b7a4e-2c4d-4d8a-9a6e-3f1d2c7b9e10", "acr": "1",
				"realm_access":    map[string]any{"roles": []string{"default-roles-demo", "offline_access", "uma_authorization", "admin"}},
				"resource_access": map[string]any{"account": map[string]any{"roles": []string{"manage-account", "view-profile"}}},
				"scope":           "openid profile email notes:write", "preferred_username": "alice",
			},
			client: "notes-web", scope: "openid profile email notes:write", admin: true,
		},
		{
			// Auth0 token profile: typ JWT, azp, scope; no roles claim.
			name: "auth0", header: map[string]any{"typ": "JWT", "kid": e2eKidAuth0},
			claims: map[string]any{
				"iss": e2eAuth0.issuer, "sub": "auth0|123456",
				"aud": []string{"https://api.example.com", "https://my-tenant.auth0.com/userinfo"},
				"azp": "my_client_id", "exp": exp, "iat": iat, "scope": "openid profile read:patients",
			},
			client: "my_client_id", scope: "openid profile read:patients",
		},
		{
			// Entra ID v1.0 (the documented sample): typ JWT, x5t, appid, scp.
			name: "entra v1", header: map[string]any{"typ": "JWT", "x5t": e2eKidEntra, "kid": e2eKidEntra},
			claims: map[string]any{
				"aud": e2eEntraV1.audience, "iss": e2eEntraV1.issuer, "iat": iat, "nbf": iat, "exp": exp,
				"acr": "1", "amr": []string{"wia"}, "appid": "75dbe77f-10a3-4e59-85fd-8c127544f17c", "appidacr": "0",
				"family_name": "Lincoln", "given_name": "Abe (MSFT)", "ipaddr": "222.222.222.22", "name": "abeli",
				"oid": "02223b6b-aa1d-42d4-9ec0-1b2bb9194438", "rh": "I", "scp": "user_impersonation",
				"sub": "l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA", "tid": "fa15d692-e9c7-4460-a743-29f2956fd429",
				"unique_name": "abeli@microsoft.com", "uti": "FVsGxYXI30-TuikuuUoFAA", "ver": "1.0",
			},
			client: "75dbe77f-10a3-4e59-85fd-8c127544f17c", scope: "user_impersonation",
		},
		{
			// Entra ID v2.0 app-only (client credentials): azp, no scp, the
			// application permissions in roles.
			name: "entra v2", header: map[string]any{"typ": "JWT", "kid": e2eKidEntra},
			claims: map[string]any{
				"aud": e2eEntraV2.audience, "iss": e2eEntraV2.issuer, "iat": iat, "nbf": iat, "exp": exp,
				"azp": "0d4f9f0b-1c7e-4e4f-8a4a-6d2b8c0c9a77", "azpacr": "1", "idtyp": "app",
				"oid": "8a1b2c3d-0000-4000-8000-123456789abc", "rh": "I", "roles": []string{"Notes.Read.All", "admin"},
				"sub": "8a1b2c3d-0000-4000-8000-123456789abc", "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
				"uti": "Qw3rTy-uIoPaSdFgHjKlAA", "ver": "2.0",
			},
			client: "0d4f9f0b-1c7e-4e4f-8a4a-6d2b8c0c9a77", admin: true,
		},
		{
			// Okta custom authorization server: no typ, cid, scp array,
			// the groups claim.
			name: "okta", header: map[string]any{"kid": e2eKidOkta},
			claims: map[string]any{
				"ver": 1, "jti": "AT.0mP4JKAZX1iACIT4vbEDF7LpvDVjxypPMf0D7uX39RE", "iss": e2eOkta.issuer,
				"aud": e2eOkta.audience, "sub": "00ujmkLgagxeRrAg20g3", "iat": iat, "exp": exp,
				"cid": "nmdP1fcyvdVO11AL7ECm", "uid": "00ujmkLgagxeRrAg20g3",
				"scp": []string{"openid", "email", "notes:write"}, "auth_time": iat, "groups": []string{"Everyone"},
			},
			client: "nmdP1fcyvdVO11AL7ECm", scope: "openid email notes:write",
		},
	}
}

// TestIssuerProfilesE2E: a real Caddy trusting Keycloak, Auth0, Entra ID
// (v1 and v2) and Okta, whose tokens the test signs in the providers'
// default shapes with the key its JWKS serves. With each issuer's preset
// the route accepts each token (200 from the upstream, with the client,
// scopes and roles the preset reads); the same route without the presets
// refuses each with 401 "token is not an access token" (RFC 9068 §4); a
// role rule refuses a token without the role with 403 insufficient_scope
// (RFC 6750 §3.1) and lets one with it through.
func TestIssuerProfilesE2E(t *testing.T) {
	needBinary(t)
	keys := newIDPKeys(t)
	p := newPorts(t)
	cfg := exampleCaddyfile(t, p)
	cfg = insertRoute(t, cfg, idpRoute(p, keys, "idp", false))
	cfg = insertRoute(t, cfg, idpRoute(p, keys, "strict", true))
	g := startGateway(t, p, cfg, "")

	for _, pt := range e2eProviderTokens() {
		t.Run(pt.name, func(t *testing.T) {
			tok := keys.sign(t, pt.header, pt.claims)

			status, h, body := g.do("GET", "/api/idp/notes", tok, nil)
			if status != http.StatusOK {
				t.Fatalf("with the preset: %d %s (%s)", status, body, h.Get("WWW-Authenticate"))
			}
			echo := decodeEcho(t, body)
			if len(echo.ClientID) != 1 || echo.ClientID[0] != pt.client || echo.Scope != pt.scope || echo.Path != "/idp/notes" {
				t.Fatalf("upstream got client %q scope %q path %q; want %q %q", echo.ClientID, echo.Scope, echo.Path, pt.client, pt.scope)
			}

			status, h, body = g.do("DELETE", "/api/idp/notes/1", tok, nil)
			if pt.admin {
				if status != http.StatusOK {
					t.Fatalf("role admin held, DELETE: %d %s", status, body)
				}
				if !containsFold(decodeEcho(t, body).HeaderNames, "X-Roles") {
					t.Error("no X-Roles header reached the upstream")
				}
			} else {
				expectBearerError(t, "DELETE without the role admin", status, h, body, http.StatusForbidden, "insufficient_scope")
				if !strings.Contains(string(body), "token lacks a required role") {
					t.Errorf("body does not name the role: %s", body)
				}
			}

			status, h, body = g.do("GET", "/api/strict/notes", tok, nil)
			expectBearerError(t, "without the preset", status, h, body, http.StatusUnauthorized, "invalid_token")
			if !strings.Contains(string(body), "token is not an access token") {
				t.Errorf("without the preset: body %s", body)
			}
		})
	}

	// A preset still refuses a token whose client it cannot read, and a
	// token for another audience (Keycloak's default "account").
	kc := e2eProviderTokens()[0]
	noClient := maps.Clone(kc.claims)
	delete(noClient, "azp")
	status, h, body := g.do("GET", "/api/idp", keys.sign(t, kc.header, noClient), nil)
	expectBearerError(t, "no azp", status, h, body, http.StatusUnauthorized, "invalid_token")
	accountOnly := maps.Clone(kc.claims)
	accountOnly["aud"] = "account"
	status, h, body = g.do("GET", "/api/idp", keys.sign(t, kc.header, accountOnly), nil)
	expectBearerError(t, "aud account only", status, h, body, http.StatusUnauthorized, "invalid_token")
	if !strings.Contains(string(body), "audience") {
		t.Errorf("aud account only: body %s", body)
	}
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
