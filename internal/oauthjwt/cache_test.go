package oauthjwt

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// TestCacheKeyIsTheWholeText: the cache is keyed by a digest of the
// token's whole text, so a token differing from a cached one in any byte
// (the signature's last character, the header's first) is not served the
// cached claims: it goes through verification and is refused.
func TestCacheKeyIsTheWholeText(t *testing.T) {
	s := newTestSetup(t, ES256)
	v := NewVerifier(VerifierConfig{Issuer: testIssuer, Keys: s.kr, RequireAccessTokenType: true})
	tok := s.sign(t, goodClaims())
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	if _, hit, err := v.VerifyCached(tok); !hit || err != nil {
		t.Fatalf("second use: hit %v, err %v", hit, err)
	}
	flip := func(i int) string {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, other := range []string{flip(len(tok) - 1), flip(0), tok + "A", tok[:len(tok)-1]} {
		if _, hit, err := v.VerifyCached(other); hit || err == nil {
			t.Errorf("a token one byte away: hit %v, err %v; want a refusal, not the cached claims", hit, err)
		}
	}
	var k1, k2 CacheKey = cacheKey(tok), cacheKey(flip(len(tok) - 1))
	if k1 == k2 || len(k1) != 32 {
		t.Error("cache keys of different tokens are equal, or not a SHA-256 digest")
	}
}

// TestCompactClaimsUnchanged: the cached claims, whose strings share the
// payload's memory (compact), say exactly what the payload says, for
// scope strings, scope arrays, scp, duplicates, several audiences, a cnf
// and strings with JSON escapes (which cannot be found in the payload
// as they are).
func TestCompactClaimsUnchanged(t *testing.T) {
	s := newTestSetup(t, ES256)
	v := NewVerifier(VerifierConfig{Issuer: testIssuer, Keys: s.kr, RequireAccessTokenType: true})
	now := time.Now().Unix()
	base := map[string]any{
		"iss": testIssuer, "exp": now + 3600, "iat": now, "jti": "jti-é\"1",
		"sub": "person \\ \u2028 <b>", "client_id": "svc", "aud": "https://api.example",
	}
	for _, extra := range []map[string]any{
		{"scope": "a b c"},
		{"scope": []string{"a", "b"}, "scp": []string{"b", "c"}},
		{"scope": "a a b"},
		{"scope": "é ü", "aud": []string{"https://api.example", "https://api2.example"}},
		{"scope": "x", "cnf": map[string]any{"jkt": "abc", "x5t#S256": "def"}},
	} {
		c := map[string]any{}
		for k, val := range base {
			c[k] = val
		}
		for k, val := range extra {
			c[k] = val
		}
		tok := s.sign(t, c)
		got, err := v.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(c)
		var want Claims
		if err := json.Unmarshal(payload, &want); err != nil {
			t.Fatal(err)
		}
		if got.Issuer != want.Issuer || got.Subject != want.Subject || got.ID != want.ID || got.ClientID != want.ClientID ||
			!slices.Equal(got.Audience, want.Audience) || !slices.Equal(got.Scope, want.Scope) || !slices.Equal(got.Scp, want.Scp) ||
			got.ScopeText() != want.ScopeText() || !slices.Equal(got.Scopes(), want.Scopes()) {
			t.Errorf("%v: cached %+v, payload says %+v", extra, got, &want)
		}
		if (got.Cnf == nil) != (want.Cnf == nil) || (got.Cnf != nil && *got.Cnf != *want.Cnf) {
			t.Errorf("%v: cnf %+v, want %+v", extra, got.Cnf, want.Cnf)
		}
		if sub, _ := got.Claim("sub"); sub != want.Subject {
			t.Errorf("Claim(sub) = %q, want %q", sub, want.Subject)
		}
	}
}
