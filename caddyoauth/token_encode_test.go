package caddyoauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestClaimsEncoderMatchesJSON: the hand-written encoders of the access
// token's claims (RFC 9068 §2.2, cnf of RFC 7800 §3.1 with RFC 9449 §6.1's
// jkt and RFC 8705 §3.1's x5t#S256) and of the token response (RFC 6749
// §5.1) write exactly what encoding/json writes, byte for byte, including
// strings that need escapes (RFC 8259 §7), HTML-sensitive characters,
// non-ASCII text and invalid UTF-8.
func TestClaimsEncoderMatchesJSON(t *testing.T) {
	strs := []string{
		"", "svc", "reports-service", "https://as.example", "user:read notes:read",
		"é ü 日本語 🙂", "quote\" backslash\\ slash/", "<script>&amp;</script>",
		"line\nfeed\rtab\tnul\x00bell\x07\x1f", "\u2028\u2029", "bad utf-8 \xff\xfe", "\x7f del",
	}
	var claims []accessTokenClaims
	for i, s := range strs {
		c := accessTokenClaims{
			Issuer: "https://as.example", Subject: s, Audience: audience{"https://api.example"},
			Expiry: 1764500000 + int64(i), IssuedAt: 1764496400, ID: "jti-" + s, ClientID: s, Scope: s,
		}
		claims = append(claims, c)
		c.Audience = audience{s, "https://api2.example"}
		c.AuthTime = 1764490000
		c.Cnf = &confirmation{JKT: s}
		claims = append(claims, c)
		c.Cnf = &confirmation{X5TS256: s}
		claims = append(claims, c)
		c.Cnf = &confirmation{JKT: "jkt-" + s, X5TS256: s}
		claims = append(claims, c)
	}
	claims = append(claims,
		accessTokenClaims{Issuer: "i", Cnf: &confirmation{}},     // cnf with no member: {}
		accessTokenClaims{Issuer: "i", Audience: audience{}},     // an empty, non-nil aud: []
		accessTokenClaims{Issuer: "i", Expiry: -1, AuthTime: -5}, // negative numbers
	)
	for _, c := range claims {
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.appendJSON(nil); string(got) != string(want) {
			t.Errorf("claims:\n got %s\nwant %s", got, want)
		}
	}
	for _, s := range strs {
		for _, r := range []tokenResponse{
			{AccessToken: "a.b.c", TokenType: "Bearer", ExpiresIn: 3600},
			{AccessToken: s, TokenType: "DPoP", ExpiresIn: 60, RefreshToken: s, Scope: s, IDToken: s},
			{AccessToken: "x", TokenType: s, ExpiresIn: 0, Scope: s},
		} {
			want, _ := json.Marshal(r)
			if got := r.appendJSON(nil); string(got) != string(want) {
				t.Errorf("response:\n got %s\nwant %s", got, want)
			}
		}
	}
}

// TestWriteTokenResponse: the hand-written response carries the headers
// RFC 6749 §5.1 requires (Content-Type application/json, Cache-Control
// no-store, Pragma no-cache) and nosniff, status 200, and encoding/json's
// body.
func TestWriteTokenResponse(t *testing.T) {
	r := tokenResponse{AccessToken: "a.b.c", TokenType: "Bearer", ExpiresIn: 3600, Scope: "s <t>"}
	rec := httptest.NewRecorder()
	writeTokenResponse(rec, &r)
	want, _ := json.Marshal(r)
	h := rec.Header()
	if rec.Code != http.StatusOK || rec.Body.String() != string(want) || h.Get("Content-Type") != "application/json" ||
		h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("status %d, headers %v, body %s", rec.Code, h, rec.Body)
	}
}
