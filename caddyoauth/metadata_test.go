package caddyoauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// fetchMetadata GETs the RFC 8414 document at path from s.
func fetchMetadata(t testing.TB, s *Server, path string) map[string]any {
	t.Helper()
	rec, next := serve(t, s, httptest.NewRequest(http.MethodGet, path, nil))
	if next {
		t.Fatalf("GET %s passed to next handler", path)
	}
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200 (RFC 8414 §3.2)", path, rec.Code)
	}
	assertJSON(t, rec.Header())
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("metadata is not a JSON object (RFC 8414 §3.2): %v", err)
	}
	return m
}

func stringList(t testing.TB, m map[string]any, name string) []string {
	t.Helper()
	raw, ok := m[name].([]any)
	if !ok {
		t.Fatalf("%s = %#v, want a JSON array", name, m[name])
	}
	out := make([]string, 0, len(raw))
	for _, v := range raw {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("%s holds %#v, want strings", name, v)
		}
		out = append(out, s)
	}
	return out
}

// TestMetadataPath applies RFC 8414 §3.1: the well-known suffix goes
// between the host and the issuer's path, after a terminating "/" is
// removed. Expected values follow the §3.1 example
// (https://example.com/issuer1 →
// https://example.com/.well-known/oauth-authorization-server/issuer1).
func TestMetadataPath(t *testing.T) {
	tests := []struct{ issuer, want string }{
		{"https://example.com", "/.well-known/oauth-authorization-server"},
		{"https://example.com/", "/.well-known/oauth-authorization-server"},
		{"https://example.com:8443", "/.well-known/oauth-authorization-server"},
		{"https://example.com/issuer1", "/.well-known/oauth-authorization-server/issuer1"},
		{"https://as.example/tenant", "/.well-known/oauth-authorization-server/tenant"},
		{"https://as.example/tenant/", "/.well-known/oauth-authorization-server/tenant"},
		{"https://as.example/a/b", "/.well-known/oauth-authorization-server/a/b"},
	}
	for _, tt := range tests {
		t.Run(tt.issuer, func(t *testing.T) {
			if got := metadataPath(tt.issuer); got != tt.want {
				t.Errorf("metadataPath(%q) = %q, want %q", tt.issuer, got, tt.want)
			}
		})
	}
}

// TestMetadataDocument checks the RFC 8414 §2 members for several issuer
// and prefix combinations, and that the handler serves the document at the
// §3.1 location and the endpoints where the document says they are.
func TestMetadataDocument(t *testing.T) {
	tests := []struct {
		name, issuer, prefix string
		wellKnown            string
		token, jwks          string // expected absolute URLs
	}{
		{"default prefix", "https://as.example", "", "/.well-known/oauth-authorization-server",
			"https://as.example/oauth2/token", "https://as.example/oauth2/jwks"},
		{"issuer with trailing slash", "https://as.example/", "", "/.well-known/oauth-authorization-server",
			"https://as.example/oauth2/token", "https://as.example/oauth2/jwks"},
		{"prefix option moves the endpoints", "https://as.example", "/auth", "/.well-known/oauth-authorization-server",
			"https://as.example/auth/token", "https://as.example/auth/jwks"},
		{"prefix with trailing slash", "https://as.example", "/auth/", "/.well-known/oauth-authorization-server",
			"https://as.example/auth/token", "https://as.example/auth/jwks"},
		{"nested prefix", "https://as.example:8443", "/a/b", "/.well-known/oauth-authorization-server",
			"https://as.example:8443/a/b/token", "https://as.example:8443/a/b/jwks"},
		{"issuer with a path (RFC 8414 §3.1)", "https://as.example/tenant", "", "/.well-known/oauth-authorization-server/tenant",
			"https://as.example/tenant/oauth2/token", "https://as.example/tenant/oauth2/jwks"},
		{"issuer with a path and a prefix", "https://as.example/tenant", "/auth", "/.well-known/oauth-authorization-server/tenant",
			"https://as.example/tenant/auth/token", "https://as.example/tenant/auth/jwks"},
		{"localhost http issuer", "http://localhost:8080", "", "/.well-known/oauth-authorization-server",
			"http://localhost:8080/oauth2/token", "http://localhost:8080/oauth2/jwks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Issuer = tt.issuer
			s := newServer(t, newApp(t, cfg), tt.prefix)
			m := fetchMetadata(t, s, tt.wellKnown)

			// §2 / §3.3: issuer is identical to the configured issuer.
			if m["issuer"] != tt.issuer {
				t.Errorf("issuer = %v, want exactly %q (RFC 8414 §3.3)", m["issuer"], tt.issuer)
			}
			if m["token_endpoint"] != tt.token {
				t.Errorf("token_endpoint = %v, want %s", m["token_endpoint"], tt.token)
			}
			if m["jwks_uri"] != tt.jwks {
				t.Errorf("jwks_uri = %v, want %s", m["jwks_uri"], tt.jwks)
			}
			// §2: response_types_supported is REQUIRED.
			stringList(t, m, "response_types_supported")
			if got := stringList(t, m, "grant_types_supported"); !slices.Equal(got, []string{"client_credentials", "authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer"}) {
				t.Errorf("grant_types_supported = %v, want exactly what is implemented", got)
			}
			methods := stringList(t, m, "token_endpoint_auth_methods_supported")
			slices.Sort(methods)
			if !slices.Equal(methods, []string{"client_secret_basic", "client_secret_jwt", "client_secret_post", "none", "private_key_jwt", "self_signed_tls_client_auth", "tls_client_auth"}) {
				t.Errorf("token_endpoint_auth_methods_supported = %v", methods)
			}
			if got := stringList(t, m, "scopes_supported"); !slices.Equal(got, []string{"user:read", "user:write"}) {
				t.Errorf("scopes_supported = %v, want the clients' scopes", got)
			}
			// §2: the JWT client authentication algorithms (RFC 7523).
			if got := stringList(t, m, "token_endpoint_auth_signing_alg_values_supported"); !slices.Contains(got, "ES256") || !slices.Contains(got, "HS256") || slices.Contains(got, "none") {
				t.Errorf("token_endpoint_auth_signing_alg_values_supported = %v", got)
			}
			// §2: code only (RFC 9700 §2.1.2), S256 only (RFC 7636 §4.2),
			// and iss in responses (RFC 9207 §3).
			if got := stringList(t, m, "response_types_supported"); !slices.Equal(got, []string{"code"}) {
				t.Errorf("response_types_supported = %v, want [code]", got)
			}
			if got := stringList(t, m, "code_challenge_methods_supported"); !slices.Equal(got, []string{"S256"}) {
				t.Errorf("code_challenge_methods_supported = %v, want [S256]", got)
			}
			if m["authorization_response_iss_parameter_supported"] != true {
				t.Error("authorization_response_iss_parameter_supported is not true")
			}
			authzURL := strings.TrimSuffix(tt.token, "/token") + "/authorize"
			if m["authorization_endpoint"] != authzURL {
				t.Errorf("authorization_endpoint = %v, want %s", m["authorization_endpoint"], authzURL)
			}
			au, _ := url.Parse(authzURL)
			if rec, next := serve(t, s, httptest.NewRequest(http.MethodGet, au.Path, nil)); next || rec.Code != http.StatusBadRequest {
				t.Errorf("GET %s: next=%v status %d, want the endpoint's 400 error page", au.Path, next, rec.Code)
			}

			// The advertised endpoints are served by this handler.
			tokenURL, _ := url.Parse(tt.token)
			r := tokenRequest(ccForm().Encode())
			r.URL.Path = tokenURL.Path
			r.Header.Set("Authorization", basicAuth(svcID, svcSecret))
			rec, next := serve(t, s, r)
			if next {
				t.Fatalf("advertised token endpoint %s is not served by the handler", tokenURL.Path)
			}
			decodeTokenResponse(t, rec)
			jwksURL, _ := url.Parse(tt.jwks)
			rec, next = serve(t, s, httptest.NewRequest(http.MethodGet, jwksURL.Path, nil))
			if next || rec.Code != http.StatusOK {
				t.Fatalf("advertised jwks_uri %s is not served (next %v, status %d)", jwksURL.Path, next, rec.Code)
			}
		})
	}
}

// TestServerRouting: the handler answers its own paths only; everything
// else, including near misses, goes to the next handler.
func TestServerRouting(t *testing.T) {
	s := newServer(t, newApp(t, nil), "/auth")
	mine := []string{"/auth/token", "/auth/jwks", "/auth/authorize", "/auth/login", "/auth/consent", "/auth/account",
		"/auth/logout", "/auth/userinfo", "/auth/introspect", "/auth/revoke", "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"}
	others := []string{"/", "/oauth2/token", "/oauth2/jwks", "/auth", "/auth/", "/auth/token/", "/auth/tokens", "/AUTH/token",
		"/auth/authorize/", "/auth/register", "/.well-known/oauth-authorization-server/", "/.well-known/openid-configuration/", "/api/users"}
	for _, p := range mine {
		if _, next := serve(t, s, httptest.NewRequest(http.MethodGet, p, nil)); next {
			t.Errorf("%s passed to next", p)
		}
	}
	for _, p := range others {
		rec, next := serve(t, s, httptest.NewRequest(http.MethodGet, p, nil))
		if !next || rec.Code != http.StatusTeapot {
			t.Errorf("%s not passed to next (status %d)", p, rec.Code)
		}
	}
}

// TestServerPrefixRefused: a prefix that is not a plain absolute path is
// refused, naming the field.
func TestServerPrefixRefused(t *testing.T) {
	app := newApp(t, nil)
	for _, p := range []string{"auth", "auth/", "/a b", "/a//b", "/a*", "/a?b", "/a#b", "/{x}"} {
		s := &Server{Prefix: p}
		err := s.provision(app, nil)
		if err == nil {
			t.Errorf("prefix %q accepted", p)
		} else if !strings.HasPrefix(err.Error(), "prefix: ") {
			t.Errorf("prefix %q: error %q does not name the field", p, err)
		}
	}
}

// TestPublicDocumentMethods: metadata and JWKS answer GET and HEAD; other
// methods get 405 with Allow (RFC 9110 §15.5.6).
func TestPublicDocumentMethods(t *testing.T) {
	s := newTestServer(t, nil)
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/oauth2/jwks"} {
		for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
			rec, next := serve(t, s, httptest.NewRequest(m, p, strings.NewReader("x")))
			if next {
				t.Fatalf("%s %s passed to next", m, p)
			}
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: status %d, want 405", m, p, rec.Code)
			}
			allow := strings.Split(strings.ReplaceAll(rec.Header().Get("Allow"), " ", ""), ",")
			slices.Sort(allow)
			if !slices.Equal(allow, []string{"GET", "HEAD"}) {
				t.Errorf("%s %s: Allow = %q, want GET, HEAD", m, p, rec.Header().Get("Allow"))
			}
		}
		rec, _ := serve(t, s, httptest.NewRequest(http.MethodHead, p, nil))
		if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
			t.Errorf("HEAD %s: status %d, %d body bytes; want 200 and none", p, rec.Code, rec.Body.Len())
		}
		assertJSON(t, rec.Header())
		rec, _ = serve(t, s, httptest.NewRequest(http.MethodGet, p, nil))
		if cc := rec.Header().Get("Cache-Control"); strings.Contains(cc, "no-store") || cc == "" {
			t.Errorf("GET %s: Cache-Control %q; public documents are cacheable", p, cc)
		}
	}
}

// TestJWKS: the key set publishes the public half of every key with kid,
// alg and use "sig" (RFC 7517 §4, RFC 7518 §6), and never private members
// (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2 "d").
func TestJWKS(t *testing.T) {
	private := []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
	for _, tt := range []struct{ alg, kty string }{{"ES256", "EC"}, {"ES384", "EC"}, {"RS256", "RSA"}, {"PS256", "RSA"}, {"EdDSA", "OKP"}} {
		t.Run(tt.alg, func(t *testing.T) {
			cfg := baseConfig()
			cfg.SigningKey = &SigningKeyConfig{Algorithm: tt.alg}
			s := newTestServer(t, cfg)
			rec, _ := serve(t, s, httptest.NewRequest(http.MethodGet, "/oauth2/jwks", nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			assertJSON(t, rec.Header())
			if rec.Header().Get("Access-Control-Allow-Origin") != "*" {
				t.Error("JWKS not readable cross-origin")
			}
			var set struct {
				Keys []map[string]any `json:"keys"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
				t.Fatal(err)
			}
			if len(set.Keys) != 1 {
				t.Fatalf("%d keys, want 1", len(set.Keys))
			}
			k := set.Keys[0]
			active := s.app.Keyring().Active()
			if k["kid"] != active.ID || k["alg"] != tt.alg || k["use"] != "sig" || k["kty"] != tt.kty {
				t.Errorf("JWK %v, want kid %s alg %s use sig kty %s", k, active.ID, tt.alg, tt.kty)
			}
			for _, p := range private {
				if _, has := k[p]; has {
					t.Errorf("JWK publishes private member %q", p)
				}
			}
			// The published key is the one that verifies issued tokens:
			// its thumbprint (RFC 7638) is the kid.
			tp, err := oauthjwt.Thumbprint(active.Public)
			if err != nil || tp != k["kid"] {
				t.Errorf("kid %v is not the active key's thumbprint %s", k["kid"], tp)
			}
		})
	}
}

// TestJWKSFollowsKeyringSwap: the JWKS served reflects the app's current
// keyring, not the one seen first.
func TestJWKSFollowsKeyringSwap(t *testing.T) {
	s := newTestServer(t, nil)
	first := jwksOf(t, s)
	k, err := oauthjwt.GenerateKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	kr, err := oauthjwt.NewKeyring(k, s.app.Keyring().Keys()...)
	if err != nil {
		t.Fatal(err)
	}
	s.app.keys.current.Store(kr)
	second := jwksOf(t, s)
	if len(first) != 1 || len(second) != 2 || second[0] != k.ID || second[1] != first[0] {
		t.Fatalf("JWKS kids before %v, after %v; want the new key added", first, second)
	}
}

func jwksOf(t testing.TB, s *Server) []string {
	t.Helper()
	rec, _ := serve(t, s, httptest.NewRequest(http.MethodGet, "/oauth2/jwks", nil))
	var set oauthjwt.JWKS
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}
