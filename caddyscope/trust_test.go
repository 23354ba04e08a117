package caddyscope

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestIssuerRouting: a token goes to the issuer its iss names; a route
// without issuers keeps trusting the local app only; `issuer local` adds
// the local app to a route with external issuers, whose local tokens
// still pass the client registry.
func TestIssuerRouting(t *testing.T) {
	f := newFixture(t)
	as := newTestAS(t, "", "oauth")
	other := newTestAS(t, "/other", "oauth")
	remoteTok := as.token(t, "user:read", nil)
	localTok := f.token(t, claims("user:read", nil))
	unregistered := f.token(t, claims("user:read", map[string]any{"client_id": "gone", "jti": "other"}))
	otherTok := other.token(t, "user:read", nil)

	localOnly := newHandler(t, f, &Scope{Rules: []Rule{{Methods: []string{"GET"}, Scopes: []string{"user:read"}}}})
	remoteOnly, _ := issuerHandler(t, f, remoteScope(as, nil))
	both := remoteScope(as, nil)
	both.Issuers = append(both.Issuers, Issuer{Issuer: LocalIssuer}, Issuer{Issuer: other.issuer, Audience: []string{testAudience}})
	both, _ = issuerHandler(t, f, both)

	tests := []struct {
		name  string
		h     *Scope
		token string
		ok    bool
		desc  string
	}{
		{"no issuers: local token", localOnly, localTok, true, ""},
		{"no issuers: remote token refused, as before issuers existed", localOnly, remoteTok, false, "token signed by an unknown key"},
		{"remote only: remote token", remoteOnly, remoteTok, true, ""},
		{"remote only: local token refused", remoteOnly, localTok, false, "token issuer not accepted"},
		{"remote only: third issuer refused", remoteOnly, otherTok, false, "token issuer not accepted"},
		{"both: local token", both, localTok, true, ""},
		{"both: remote token", both, remoteTok, true, ""},
		{"both: second remote token", both, otherTok, true, ""},
		{"both: local token of an unregistered client", both, unregistered, false, "token client is not registered"},
		{"both: opaque token, nobody introspects", both, "opaque-token-123", false, "token malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, tt.h, tt.token)
			if tt.ok {
				mustAccept(t, res)
				return
			}
			body := checkRefused(t, res, http.StatusUnauthorized, errInvalidToken)
			if body.Description != tt.desc {
				t.Errorf("error_description = %q, want %q", body.Description, tt.desc)
			}
		})
	}
}

// TestUnverifiedIssuer: which tokens count as JWTs for routing.
func TestUnverifiedIssuer(t *testing.T) {
	enc := func(v any) string { b, _ := json.Marshal(v); return b64(b) }
	h := enc(map[string]any{"alg": "ES256"})
	tests := []struct {
		token   string
		iss     string
		isJWT   bool
		wantErr bool
	}{
		{h + "." + enc(map[string]any{"iss": "https://a"}) + ".sig", "https://a", true, false},
		{"opaque", "", false, false},
		{"a.b", "", false, false},
		{"a.b.c.d.e", "", false, false}, // JWE: not routed by iss
		{enc(map[string]any{"typ": "x"}) + "." + enc(map[string]any{"iss": "https://a"}) + ".s", "", false, false},
		{h + ".!!!.s", "", true, true},
		{h + "." + enc(map[string]any{"sub": "x"}) + ".s", "", true, true},
		{h + "." + enc(map[string]any{"iss": 5}) + ".s", "", true, true},
		{h + "." + b64([]byte("[1]")) + ".s", "", true, true},
	}
	for _, tt := range tests {
		iss, isJWT, err := unverifiedIssuer(tt.token)
		if iss != tt.iss || isJWT != tt.isJWT || (err != nil) != tt.wantErr {
			t.Errorf("unverifiedIssuer(%q) = %q, %v, %v", tt.token, iss, isJWT, err)
		}
	}
}

// FuzzUnverifiedIssuer: reading iss from an untrusted token to route it
// never panics, and a JWT routed without error names an issuer.
func FuzzUnverifiedIssuer(f *testing.F) {
	enc := func(s string) string { return b64([]byte(s)) }
	for _, s := range []string{
		enc(`{"alg":"ES256"}`) + "." + enc(`{"iss":"https://a"}`) + ".sig",
		enc(`{"alg":"ES256"}`) + "." + enc(`{"iss":""}`) + ".",
		enc(`{"alg":"none"}`) + "." + enc(`[]`) + ".x",
		"opaque", "a.b.c", "..", "a.b.c.d.e",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		iss, isJWT, err := unverifiedIssuer(tok)
		if !isJWT && (iss != "" || err != nil) {
			t.Fatalf("not a JWT, yet iss %q err %v", iss, err)
		}
		if isJWT && err == nil && iss == "" {
			t.Fatal("JWT routed without an issuer")
		}
		_ = describe(err)
	})
}
