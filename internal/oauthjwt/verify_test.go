package oauthjwt

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testIssuer = "https://as.example"

type testSetup struct {
	kr *Keyring
	v  *Verifier
}

func newTestSetup(t testing.TB, alg string) testSetup {
	t.Helper()
	k, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(VerifierConfig{Issuer: testIssuer, Keys: kr, RequireAccessTokenType: true, CacheSize: -1})
	return testSetup{kr: kr, v: v}
}

func goodClaims() *Claims {
	now := time.Now()
	return &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    testIssuer,
			Subject:   "svc",
			Audience:  jwt.ClaimStrings{"https://api.example"},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        "jti-1",
		},
		ClientID: "svc",
		Scope:    ScopeClaim{"user:read", "user:write"},
	}
}

func (s testSetup) sign(t testing.TB, c any) string {
	t.Helper()
	tok, err := s.kr.SignAccessToken(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// rawToken assembles a JWS from a header, a payload and a signature function,
// so attacks can set any header they like.
func rawToken(header map[string]any, claims any, sign func(string) []byte) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	return in + "." + enc.EncodeToString(sign(in))
}

func TestVerifyGood(t *testing.T) {
	for _, alg := range SupportedAlgs {
		t.Run(alg, func(t *testing.T) {
			s := newTestSetup(t, alg)
			c, err := s.v.Verify(s.sign(t, goodClaims()))
			if err != nil {
				t.Fatal(err)
			}
			if c.ClientID != "svc" || c.Subject != "svc" || strings.Join(c.Scopes(), " ") != "user:read user:write" {
				t.Fatalf("claims = %+v", c)
			}
			if got, _ := c.Claim("jti"); got != "jti-1" {
				t.Fatalf("Claim(jti) = %q", got)
			}
			if got, _ := c.Claim("aud"); got != `["https://api.example"]` {
				t.Fatalf("Claim(aud) = %q", got)
			}
		})
	}
}

// TestVerifyAttacks is the JWT attack set: each token must be refused
// (RFC 8725 §2 and §3, RFC 9068 §4, RFC 7515 §4.1.11).
func TestVerifyAttacks(t *testing.T) {
	s := newTestSetup(t, ES256)
	rs := newTestSetup(t, RS256)
	good := s.sign(t, goodClaims())
	active := s.kr.Active()
	hdr := func(extra map[string]any) map[string]any {
		h := map[string]any{"alg": ES256, "kid": active.ID, "typ": AccessTokenType}
		for k, v := range extra {
			if v == nil {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
		return h
	}
	esSign := func(in string) []byte {
		sig, err := jwt.SigningMethodES256.Sign(in, active.Signer)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	parts := strings.Split(good, ".")
	rsPub, _ := x509.MarshalPKIXPublicKey(rs.kr.Active().Public)
	withClaims := func(mut func(*Claims)) string {
		c := goodClaims()
		mut(c)
		return s.sign(t, c)
	}

	tests := []struct {
		name  string
		v     *Verifier
		token string
		want  error // the specific reason, where one check alone must catch it
	}{
		{"alg none (RFC 8725 §3.1)", s.v, rawToken(hdr(map[string]any{"alg": "none"}), goodClaims(), func(string) []byte { return nil }), jwt.ErrTokenSignatureInvalid},
		{"alg none, upper case", s.v, rawToken(hdr(map[string]any{"alg": "NONE"}), goodClaims(), func(string) []byte { return nil }), nil},
		{"HS256 keyed with the RSA public key (RFC 8725 §2.1)", rs.v, rawToken(map[string]any{"alg": "HS256", "kid": rs.kr.Active().ID, "typ": AccessTokenType}, goodClaims(), func(in string) []byte {
			m := hmac.New(sha256.New, rsPub)
			m.Write([]byte(in))
			return m.Sum(nil)
		}), jwt.ErrTokenSignatureInvalid},
		{"PS256 header on an RS256 key (alg pinned to key)", rs.v, rawToken(map[string]any{"alg": PS256, "kid": rs.kr.Active().ID, "typ": AccessTokenType}, goodClaims(), func(in string) []byte {
			sig, _ := jwt.SigningMethodPS256.Sign(in, rs.kr.Active().Signer)
			return sig
		}), ErrAlgMismatch},
		{"signature stripped", s.v, parts[0] + "." + parts[1] + ".", nil},
		{"no signature segment", s.v, parts[0] + "." + parts[1], nil},
		{"signature tampered", s.v, parts[0] + "." + parts[1] + "." + flipLast(parts[2]), jwt.ErrTokenSignatureInvalid},
		{"payload tampered", s.v, parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+testIssuer+`","exp":9999999999,"scope":"admin"}`)) + "." + parts[2], jwt.ErrTokenSignatureInvalid},
		{"unknown kid", s.v, rawToken(hdr(map[string]any{"kid": "nope"}), goodClaims(), esSign), ErrUnknownKey},
		{"no kid", s.v, rawToken(hdr(map[string]any{"kid": nil}), goodClaims(), esSign), ErrUnknownKey},
		{"jwk header key (RFC 8725 §3.10)", s.v, rawToken(hdr(map[string]any{"jwk": active.PublicJWK()}), goodClaims(), esSign), ErrForbiddenHeader},
		{"jku header key (RFC 8725 §3.10)", s.v, rawToken(hdr(map[string]any{"jku": "https://evil.example/jwks"}), goodClaims(), esSign), ErrForbiddenHeader},
		{"x5u header key", s.v, rawToken(hdr(map[string]any{"x5u": "https://evil.example/cert"}), goodClaims(), esSign), ErrForbiddenHeader},
		{"crit header (RFC 7515 §4.1.11)", s.v, rawToken(hdr(map[string]any{"crit": []string{"exp"}}), goodClaims(), esSign), ErrForbiddenHeader},
		{"typ JWT, not at+jwt (RFC 9068 §4)", s.v, rawToken(hdr(map[string]any{"typ": "JWT"}), goodClaims(), esSign), ErrNotAccessToken},
		{"expired (RFC 9068 §4)", s.v, withClaims(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute)) }), jwt.ErrTokenExpired},
		{"no exp", s.v, withClaims(func(c *Claims) { c.ExpiresAt = nil }), jwt.ErrTokenRequiredClaimMissing},
		{"future nbf", s.v, withClaims(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(time.Now().Add(5 * time.Minute)) }), jwt.ErrTokenNotValidYet},
		{"future iat", s.v, withClaims(func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(time.Now().Add(5 * time.Minute)) }), jwt.ErrTokenUsedBeforeIssued},
		{"wrong iss (RFC 9068 §4)", s.v, withClaims(func(c *Claims) { c.Issuer = "https://evil.example" }), jwt.ErrTokenInvalidIssuer},
		{"no iss", s.v, withClaims(func(c *Claims) { c.Issuer = "" }), jwt.ErrTokenRequiredClaimMissing},
		{"no sub (RFC 9068 §2.2)", s.v, withClaims(func(c *Claims) { c.Subject = "" }), jwt.ErrTokenRequiredClaimMissing},
		{"no client_id (RFC 9068 §2.2)", s.v, withClaims(func(c *Claims) { c.ClientID = "" }), jwt.ErrTokenRequiredClaimMissing},
		{"no aud (RFC 9068 §2.2)", s.v, withClaims(func(c *Claims) { c.Audience = nil }), jwt.ErrTokenRequiredClaimMissing},
		{"no iat (RFC 9068 §2.2)", s.v, withClaims(func(c *Claims) { c.IssuedAt = nil }), jwt.ErrTokenRequiredClaimMissing},
		{"no jti (RFC 9068 §2.2)", s.v, withClaims(func(c *Claims) { c.ID = "" }), jwt.ErrTokenRequiredClaimMissing},
		{"verifier without an issuer accepts nothing", NewVerifier(VerifierConfig{Keys: s.kr}), good, ErrNoIssuer},
		{"oversized", s.v, withClaims(func(c *Claims) { c.Subject = strings.Repeat("a", MaxTokenSize) }), ErrTokenTooLarge},
		{"not a JWT", s.v, "garbage", jwt.ErrTokenMalformed},
		{"padded base64 (strict decoding)", s.v, parts[0] + "=." + parts[1] + "." + parts[2], jwt.ErrTokenMalformed},
		{"signed by another key with the same kid", s.v, rawToken(hdr(nil), goodClaims(), func(in string) []byte {
			other, _ := GenerateKey(ES256)
			sig, _ := jwt.SigningMethodES256.Sign(in, other.Signer)
			return sig
		}), jwt.ErrTokenSignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.v.Verify(tt.token)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("refused with %v, want %v", err, tt.want)
			}
			if d := Describe(err); strings.ContainsAny(d, `"\`) {
				t.Fatalf("description %q is not a valid error_description", d)
			}
		})
	}
}

// flipLast changes a character in the middle of a base64url segment (not
// the last one, whose low bits may be padding that strict decoding refuses
// before the signature is ever checked).
func flipLast(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// TestVerifyLeeway: a token expired by less than the leeway passes, one
// expired by more does not (RFC 7519 §4.1.4 allows a small leeway).
func TestVerifyLeeway(t *testing.T) {
	s := newTestSetup(t, ES256)
	c := goodClaims()
	c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
	c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-10 * time.Second))
	if _, err := s.v.Verify(s.sign(t, c)); err != nil {
		t.Fatalf("token 10s past exp refused with 30s leeway: %v", err)
	}
	c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-40 * time.Second))
	if _, err := s.v.Verify(s.sign(t, c)); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("token 40s past exp: err = %v, want expired", err)
	}
}

func TestScopeClaimForms(t *testing.T) {
	tests := []struct {
		payload string
		want    string
	}{
		{`{"scope":"a b"}`, "a b"},               // RFC 9068 §2.2.3
		{`{"scope":["a","b"]}`, "a b"},           // array form some issuers emit
		{`{"scp":["a","b"]}`, "a b"},             // Azure AD / Okta
		{`{"scope":"a","scp":["b","a"]}`, "a b"}, // union
		{`{}`, ""},
	}
	for _, tt := range tests {
		var c Claims
		if err := json.Unmarshal([]byte(tt.payload), &c); err != nil {
			t.Fatalf("%s: %v", tt.payload, err)
		}
		if got := strings.Join(c.Scopes(), " "); got != tt.want {
			t.Errorf("%s: scopes %q, want %q", tt.payload, got, tt.want)
		}
	}
	var c Claims
	if err := json.Unmarshal([]byte(`{"scope":42}`), &c); err == nil {
		t.Error("numeric scope accepted")
	}
}

// TestVerifyCache: a cached token is returned without re-verification and
// is not returned once expired.
func TestVerifyCache(t *testing.T) {
	k, _ := GenerateKey(ES256)
	kr, _ := NewKeyring(k)
	v := NewVerifier(VerifierConfig{Issuer: testIssuer, Keys: kr, RequireAccessTokenType: true})
	c := goodClaims()
	c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(2 * time.Second))
	tok, _ := kr.SignAccessToken(c)
	first, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	second, err := v.Verify(tok)
	if err != nil || second != first {
		t.Fatalf("second verify did not hit the cache: %v", err)
	}
	v.now = func() time.Time { return time.Now().Add(3 * time.Second) }
	if _, ok := v.cache.Get(tok, v.now()); ok {
		t.Fatal("expired token served from cache")
	}
}

func TestCacheBounded(t *testing.T) {
	for _, size := range []int{1, 32, 100} {
		c := newTokenCache(size)
		now := time.Now()
		exp := now.Add(time.Hour)
		for i := range 1000 {
			c.Put(strings.Repeat("x", i), &Claims{}, exp, now)
		}
		if c.Len() > c.Cap() || c.Cap() > size+cacheShards {
			t.Fatalf("size %d: cache holds %d entries, cap %d", size, c.Len(), c.Cap())
		}
	}
}

func FuzzVerify(f *testing.F) {
	s := newTestSetup(f, ES256)
	f.Add(s.sign(f, goodClaims()))
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := s.v.Verify(tok)
		if err == nil && c.Issuer != testIssuer {
			t.Fatalf("accepted token with iss %q", c.Issuer)
		}
		_ = Describe(err)
	})
}
