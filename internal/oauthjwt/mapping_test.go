package oauthjwt

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestFindMembers(t *testing.T) {
	names := []string{"azp", "scope", "realm_access"}
	tests := []struct {
		name string
		in   string
		want []string // raw values; "-" for absent
		err  bool
	}{
		{"flat", `{"azp":"web","scope":"a b"}`, []string{`"web"`, `"a b"`, "-"}, false},
		{"nested object skipped whole", `{"x":{"azp":"no","y":[1,{"z":"}"}]},"azp":"yes"}`, []string{`"yes"`, "-", "-"}, false},
		{"object value", `{"realm_access":{"roles":["a","b"]}}`, []string{"-", "-", `{"roles":["a","b"]}`}, false},
		{"duplicate: the last wins, as encoding/json", `{"azp":"one","azp":"two"}`, []string{`"two"`, "-", "-"}, false},
		{"escaped key is unescaped", `{"\u0061zp":"esc"}`, []string{`"esc"`, "-", "-"}, false},
		{"escaped quote in a value", `{"scope":"a\"b","azp":"x"}`, []string{`"x"`, `"a\"b"`, "-"}, false},
		{"names compare exactly (case)", `{"AZP":"upper"}`, []string{"-", "-", "-"}, false},
		{"whitespace", " {\n\t\"azp\" :\r \"w\" , \"scope\":null }", []string{`"w"`, "null", "-"}, false},
		{"numbers and literals", `{"n":-1.5e3,"t":true,"azp":false}`, []string{"false", "-", "-"}, false},
		{"empty object", `{}`, []string{"-", "-", "-"}, false},
		{"not an object", `["azp"]`, nil, true},
		{"truncated", `{"azp":"x`, nil, true},
		{"missing colon", `{"azp" "x"}`, nil, true},
		{"missing value", `{"azp":}`, nil, true},
		{"unterminated nested", `{"a":{"b":[1,2}`, nil, true},
		{"empty", ``, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := make([][]byte, len(names))
			err := findMembers([]byte(tt.in), names, out)
			if tt.err {
				if err == nil {
					t.Fatalf("no error for %q", tt.in)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tt.want {
				got := string(out[i])
				if out[i] == nil {
					got = "-"
				}
				if got != w {
					t.Errorf("%s = %s, want %s", names[i], got, w)
				}
			}
		})
	}
}

func TestSplitClaimPath(t *testing.T) {
	tests := []struct {
		path string
		want []string
		err  bool
	}{
		{"roles", []string{"roles"}, false},
		{"realm_access.roles", []string{"realm_access", "roles"}, false},
		{"resource_access.notes-api.roles", []string{"resource_access", "notes-api", "roles"}, false},
		// A namespaced claim (RFC 7519 §4.2) is one name, dots included.
		{"https://example.com/roles", []string{"https://example.com/roles"}, false},
		{"https://api.example.com/claims.roles", []string{"https://api.example.com/claims.roles"}, false},
		{"", nil, true},
		{".roles", nil, true},
		{"realm_access.", nil, true},
		{"a..b", nil, true},
	}
	for _, tt := range tests {
		got, err := SplitClaimPath(tt.path)
		if (err != nil) != tt.err || !slices.Equal(got, tt.want) {
			t.Errorf("SplitClaimPath(%q) = %q, %v", tt.path, got, err)
		}
	}
}

func TestNewClaimMappingRefusals(t *testing.T) {
	for _, tt := range []struct {
		clientID     []string
		scope, roles string
		want         string
	}{
		{nil, "scope", "", "client id claim"},
		{[]string{"azp", ""}, "scope", "", "client id claim"},
		{[]string{"azp"}, "scope", "a..b", "roles claim"},
	} {
		if _, err := NewClaimMapping(tt.clientID, tt.scope, tt.roles); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewClaimMapping(%q, %q, %q) = %v, want an error about %s", tt.clientID, tt.scope, tt.roles, err, tt.want)
		}
	}
}

// mappedSetup is a verifier with a claim mapping and an ES256 key.
type mappedSetup struct {
	v   *Verifier
	key *Key
}

func newMappedSetup(t testing.TB, m *ClaimMapping, cacheSize int) mappedSetup {
	t.Helper()
	k, err := GenerateKey(ES256)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return mappedSetup{key: k, v: NewVerifier(VerifierConfig{Issuer: testIssuer, Keys: kr, RequireAccessTokenType: true, Mapping: m, CacheSize: cacheSize})}
}

// sign makes a token with header typ (nil: no typ) and the extra header
// members, signed by the setup's key.
func (s mappedSetup) sign(t testing.TB, typ any, extra map[string]any, claims any) string {
	t.Helper()
	h := map[string]any{"alg": ES256, "kid": s.key.ID}
	if typ != nil {
		h["typ"] = typ
	}
	for k, v := range extra {
		h[k] = v
	}
	return rawToken(h, claims, func(in string) []byte {
		sig, err := jwt.SigningMethodES256.Sign(in, s.key.Signer)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	})
}

// providerClaims is a token in a provider's shape: azp, scp as a string,
// roles nested; no sub, iat or jti. Set a key to nil to drop it.
func providerClaims(change map[string]any) map[string]any {
	c := map[string]any{
		"iss":          testIssuer,
		"aud":          "https://api.example",
		"exp":          time.Now().Add(time.Hour).Unix(),
		"azp":          "web-app",
		"scp":          "notes:read notes:write",
		"scope":        "openid profile",
		"realm_access": map[string]any{"roles": []string{"admin", "user"}},
	}
	for k, v := range change {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// TestVerifyMapped: what a verifier with a claim mapping accepts and
// refuses. The mapping reads client id azp then appid, scopes from scp,
// roles from realm_access.roles.
func TestVerifyMapped(t *testing.T) {
	m, err := NewClaimMapping([]string{"azp", "appid"}, "scp", "realm_access.roles")
	if err != nil {
		t.Fatal(err)
	}
	s := newMappedSetup(t, m, -1)
	other, _ := GenerateKey(ES256)
	tests := []struct {
		name      string
		typ       any
		header    map[string]any
		claims    map[string]any
		want      error  // nil: accepted
		client    string // when accepted
		scopes    string
		roles     string
		describes string // Describe(err) when refused
	}{
		{"typ JWT (RFC 7519 §5.1)", "JWT", nil, providerClaims(nil), nil, "web-app", "notes:read notes:write", "admin user", ""},
		{"typ jwt: media types compare ignoring case (RFC 7515 §4.1.9)", "jwt", nil, providerClaims(nil), nil, "web-app", "notes:read notes:write", "admin user", ""},
		{"typ application/jwt is JWT (RFC 7515 §4.1.9)", "application/jwt", nil, providerClaims(nil), nil, "web-app", "notes:read notes:write", "admin user", ""},
		{"no typ (RFC 7519 §5.1: optional)", nil, nil, providerClaims(nil), nil, "web-app", "notes:read notes:write", "admin user", ""},
		{"typ at+jwt (RFC 9068 §2.1)", "at+jwt", nil, providerClaims(nil), nil, "web-app", "notes:read notes:write", "admin user", ""},
		{"typ application/at+jwt (RFC 9068 §2.1)", "application/at+jwt", nil, providerClaims(nil), nil, "web-app", "notes:read notes:write", "admin user", ""},
		{"typ dpop+jwt: a DPoP proof (RFC 9449 §4.2)", "dpop+jwt", nil, providerClaims(nil), ErrNotAccessToken, "", "", "", "token is not an access token"},
		{"typ logout+jwt: a logout token", "logout+jwt", nil, providerClaims(nil), ErrNotAccessToken, "", "", "", "token is not an access token"},
		{"typ id_token", "id_token", nil, providerClaims(nil), ErrNotAccessToken, "", "", "", "token is not an access token"},
		{"typ secevent+jwt (RFC 8417 §2.3)", "secevent+jwt", nil, providerClaims(nil), ErrNotAccessToken, "", "", "", "token is not an access token"},
		{"typ empty", "", nil, providerClaims(nil), ErrNotAccessToken, "", "", "", "token is not an access token"},
		{"typ not a string", 1, nil, providerClaims(nil), ErrNotAccessToken, "", "", "", "token is not an access token"},
		{"jku header still forbidden (RFC 8725 §3.10)", "JWT", map[string]any{"jku": "https://evil.example/jwks"}, providerClaims(nil), ErrForbiddenHeader, "", "", "", "token signature invalid"},
		{"x5c header still forbidden", "JWT", map[string]any{"x5c": []string{"MIIB"}}, providerClaims(nil), ErrForbiddenHeader, "", "", "", "token signature invalid"},
		{"crit header still forbidden (RFC 7515 §4.1.11)", "JWT", map[string]any{"crit": []string{"exp"}}, providerClaims(nil), ErrForbiddenHeader, "", "", "", "token signature invalid"},
		{"alg stays pinned to the key", "JWT", map[string]any{"alg": "ES384"}, providerClaims(nil), ErrAlgMismatch, "", "", "", "token signature invalid"},
		{"unknown kid", "JWT", map[string]any{"kid": other.ID}, providerClaims(nil), ErrUnknownKey, "", "", "", "token signed by an unknown key"},
		{"iss compared exactly", "JWT", nil, providerClaims(map[string]any{"iss": testIssuer + "/"}), jwt.ErrTokenInvalidIssuer, "", "", "", "token issuer not accepted"},
		{"no aud: still required (RFC 9068 §4)", "JWT", nil, providerClaims(map[string]any{"aud": nil}), jwt.ErrTokenRequiredClaimMissing, "", "", "", "token lacks a required claim"},
		{"no exp: still required", "JWT", nil, providerClaims(map[string]any{"exp": nil}), jwt.ErrTokenRequiredClaimMissing, "", "", "", "token lacks a required claim"},
		{"expired", "JWT", nil, providerClaims(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}), jwt.ErrTokenExpired, "", "", "", "token expired"},
		{"future iat still refused when present", "JWT", nil, providerClaims(map[string]any{"iat": time.Now().Add(time.Hour).Unix()}), jwt.ErrTokenUsedBeforeIssued, "", "", "", "token not yet valid"},
		{"no client id claim", "JWT", nil, providerClaims(map[string]any{"azp": nil}), jwt.ErrTokenRequiredClaimMissing, "", "", "", "token lacks a required claim"},
		{"empty client id: the next claim is tried, none left", "JWT", nil, providerClaims(map[string]any{"azp": ""}), jwt.ErrTokenRequiredClaimMissing, "", "", "", "token lacks a required claim"},
		{"client_id does not stand in for the mapped claim", "JWT", nil, providerClaims(map[string]any{"azp": nil, "client_id": "rfc9068-client"}), jwt.ErrTokenRequiredClaimMissing, "", "", "", "token lacks a required claim"},
		{"second client id claim when the first is absent (Entra v1 appid)", "JWT", nil, providerClaims(map[string]any{"azp": nil, "appid": "v1-app"}), nil, "v1-app", "notes:read notes:write", "admin user", ""},
		{"first client id claim wins", "JWT", nil, providerClaims(map[string]any{"appid": "v1-app"}), nil, "web-app", "notes:read notes:write", "admin user", ""},
		{"client id not a string", "JWT", nil, providerClaims(map[string]any{"azp": 42}), ErrClaimType, "", "", "", "token malformed"},
		{"scopes only from the mapped claim, not scope too", "JWT", nil, providerClaims(nil), nil, "web-app", "notes:read notes:write", "admin user", ""},
		{"scp as an array", "JWT", nil, providerClaims(map[string]any{"scp": []string{"a", "b", "a"}}), nil, "web-app", "a b", "admin user", ""},
		{"no scp: no scopes", "JWT", nil, providerClaims(map[string]any{"scp": nil}), nil, "web-app", "", "admin user", ""},
		{"no realm_access: no roles", "JWT", nil, providerClaims(map[string]any{"realm_access": nil}), nil, "web-app", "notes:read notes:write", "", ""},
		{"realm_access without roles: no roles", "JWT", nil, providerClaims(map[string]any{"realm_access": map[string]any{}}), nil, "web-app", "notes:read notes:write", "", ""},
		{"roles null: no roles", "JWT", nil, providerClaims(map[string]any{"realm_access": map[string]any{"roles": nil}}), nil, "web-app", "notes:read notes:write", "", ""},
		{"roles as a space-delimited string", "JWT", nil, providerClaims(map[string]any{"realm_access": map[string]any{"roles": "a b"}}), nil, "web-app", "notes:read notes:write", "a b", ""},
		{"roles not strings", "JWT", nil, providerClaims(map[string]any{"realm_access": map[string]any{"roles": []any{1, 2}}}), ErrClaimType, "", "", "", "token malformed"},
		{"realm_access not an object", "JWT", nil, providerClaims(map[string]any{"realm_access": []string{"admin"}}), ErrClaimType, "", "", "", "token malformed"},
		{"no sub, iat or jti: optional", "JWT", nil, providerClaims(nil), nil, "web-app", "notes:read notes:write", "admin user", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := s.v.Verify(s.sign(t, tt.typ, tt.header, tt.claims))
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				if d := Describe(err); d != tt.describes {
					t.Errorf("Describe = %q, want %q", d, tt.describes)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.ClientID != tt.client || c.ScopeText() != tt.scopes || strings.Join(c.Scopes(), " ") != tt.scopes || c.RolesText() != tt.roles || strings.Join(c.Roles(), " ") != tt.roles {
				t.Fatalf("client %q scopes %q roles %q; want %q %q %q", c.ClientID, c.ScopeText(), c.RolesText(), tt.client, tt.scopes, tt.roles)
			}
		})
	}
}

// TestVerifyMappedScopesAbsent: a mapping without a scope claim (Google
// ID tokens) grants no scopes, whatever the token carries.
func TestVerifyMappedScopesAbsent(t *testing.T) {
	m, _ := NewClaimMapping([]string{"azp"}, "", "")
	s := newMappedSetup(t, m, -1)
	c, err := s.v.Verify(s.sign(t, "JWT", nil, providerClaims(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Scopes() == nil || len(c.Scopes()) != 0 || c.ScopeText() != "" || c.Roles() != nil {
		t.Fatalf("scopes %q roles %q", c.Scopes(), c.Roles())
	}
}

// TestVerifyMappedNamespacedRoles: an Auth0-style namespaced claim is
// one claim name, dots and all.
func TestVerifyMappedNamespacedRoles(t *testing.T) {
	m, _ := NewClaimMapping([]string{"azp"}, "scope", "https://example.com/roles")
	s := newMappedSetup(t, m, -1)
	c, err := s.v.Verify(s.sign(t, "JWT", nil, providerClaims(map[string]any{"https://example.com/roles": []string{"editor"}})))
	if err != nil {
		t.Fatal(err)
	}
	if c.RolesText() != "editor" || c.ScopeText() != "openid profile" {
		t.Fatalf("roles %q scopes %q", c.RolesText(), c.ScopeText())
	}
}

// TestVerifyMappedCached: the mapping runs once per token; the cached
// claims carry its result.
func TestVerifyMappedCached(t *testing.T) {
	m, _ := NewClaimMapping([]string{"azp"}, "scp", "realm_access.roles")
	s := newMappedSetup(t, m, 0)
	tok := s.sign(t, "JWT", nil, providerClaims(nil))
	first, err := s.v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.v.Verify(tok)
	if err != nil || second != first || second.ClientID != "web-app" || second.RolesText() != "admin user" {
		t.Fatalf("second verify: %v, same %v, %+v", err, second == first, second)
	}
}

// TestVerifyStrictUnchanged: without a mapping the RFC 9068 profile
// holds: typ JWT is refused, roles are never read.
func TestVerifyStrictUnchanged(t *testing.T) {
	s := newMappedSetup(t, nil, -1)
	claims := providerClaims(map[string]any{"sub": "s", "client_id": "c", "iat": time.Now().Unix(), "jti": "j"})
	if _, err := s.v.Verify(s.sign(t, "JWT", nil, claims)); !errors.Is(err, ErrNotAccessToken) {
		t.Fatalf("typ JWT under RFC 9068: %v", err)
	}
	c, err := s.v.Verify(s.sign(t, AccessTokenType, nil, claims))
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientID != "c" || c.ScopeText() != "openid profile notes:read notes:write" || c.Roles() != nil {
		t.Fatalf("client %q scopes %q roles %q", c.ClientID, c.ScopeText(), c.Roles())
	}
}

// FuzzClaimMapping feeds arbitrary payloads to the mapping (which walks
// the roles path through untrusted JSON): it never panics, and on valid
// JSON objects the scanner finds exactly the members encoding/json does.
func FuzzClaimMapping(f *testing.F) {
	f.Add([]byte(`{"azp":"a","scp":"x y","realm_access":{"roles":["r"]}}`))
	f.Add([]byte(`{"azp":"a","realm_access":{"roles":"r s"},"azp":"b"}`))
	f.Add([]byte(`{"\u0061zp":"a","realm_access":{"roles":[1]}}`))
	f.Add([]byte(`{"azp":"a","realm_access":[{"roles":["r"]}]}`))
	f.Add([]byte(`{"a":{"b":[1,"]}",{"c":null}]},"azp":"\"q\""}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`["a", "b" ,"c"]`))
	f.Add([]byte(`["a\u0062",null]`))
	f.Add([]byte("[\"\x80\"]")) // invalid UTF-8: encoding/json makes it U+FFFD
	f.Add([]byte(`{"azp":`))
	m, err := NewClaimMapping([]string{"azp", "appid"}, "scp", "realm_access.roles")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		c := &Claims{payload: string(payload)}
		if err := m.apply(c); err == nil {
			if c.ClientID == "" {
				t.Fatal("accepted without a client id")
			}
			for _, r := range c.Roles() {
				if r == "" {
					t.Fatal("empty role")
				}
			}
		}
		if list, ok := plainStringArray(payload); ok {
			var want []string
			if err := json.Unmarshal(payload, &want); err != nil || !slices.Equal(list, want) {
				t.Fatalf("plainStringArray(%q) = %q, encoding/json: %q, %v", payload, list, want, err)
			}
		}
		var ref map[string]json.RawMessage
		if json.Unmarshal(payload, &ref) != nil || ref == nil {
			return
		}
		names := []string{"azp", "scp", "realm_access", ""}
		out := make([][]byte, len(names))
		if err := findMembers(payload, names, out); err != nil {
			t.Fatalf("findMembers refused a valid object %q: %v", payload, err)
		}
		for i, n := range names {
			want, ok := ref[n]
			if ok != (out[i] != nil) || ok && string(want) != string(out[i]) {
				t.Fatalf("%q: member %q = %q, encoding/json says %q (present %v)", payload, n, out[i], want, ok)
			}
		}
	})
}
