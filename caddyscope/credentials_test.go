package caddyscope

import (
	"net/http"
	"testing"

	"github.com/caddyapigw/gateway/internal/dpop/dpoptest"
)

// TestCredentialsHidden: an accepted request reaches the rest of the route
// without its Authorization and DPoP headers (the token and its proof),
// unless pass_credentials is set; a refused request keeps them (handle_errors
// routes see the request as it came).
func TestCredentialsHidden(t *testing.T) {
	f := newFixture(t)
	key := mustDPoPKey(t)
	plain := f.token(t, claims("notes:read", nil))
	bound := f.token(t, claims("notes:read", map[string]any{"cnf": map[string]any{"jkt": key.JKT}}))
	for _, pass := range []bool{false, true} {
		for _, tc := range []struct {
			name, authz string
			proof       bool
		}{
			{"bearer", "Bearer " + plain, false},
			{"DPoP", "DPoP " + bound, true},
		} {
			h := newHandler(t, f, &Scope{PassCredentials: pass})
			var proofs []string
			if tc.proof {
				proofs = []string{key.Proof("GET", resURL, dpoptest.Options{AccessToken: bound})}
			}
			res := dpopGet(t, h, tc.authz, proofs...)
			mustAccept(t, res)
			gotAuthz, gotProof := res.nextHeader.Get("Authorization"), res.nextHeader.Get("DPoP")
			if pass {
				if gotAuthz != tc.authz || (tc.proof && gotProof != proofs[0]) {
					t.Errorf("pass_credentials, %s: next saw Authorization %q, DPoP %q; want them kept", tc.name, gotAuthz, gotProof)
				}
				continue
			}
			if gotAuthz != "" || gotProof != "" {
				t.Errorf("%s: next saw Authorization %q, DPoP %q; want both removed", tc.name, gotAuthz, gotProof)
			}
		}
	}

	h := newHandler(t, f, &Scope{})
	r, _ := newRequest(http.MethodGet, "/", "Bearer garbage")
	res := serve(t, h, r)
	checkRefused(t, res, http.StatusUnauthorized, "invalid_token")
	if r.Header.Get("Authorization") == "" {
		t.Error("a refused request lost its Authorization header")
	}
}

// TestForwardHeaderValues: a forwarded value that is one placeholder is
// read with one lookup, anything else through ReplaceAll; both give what
// ReplaceAll gives.
func TestForwardHeaderValues(t *testing.T) {
	for _, tc := range []struct{ value, key string }{
		{"{oauth.client_id}", "oauth.client_id"},
		{"{oauth.claims.n}", "oauth.claims.n"},
		{"{unknown.thing}", "unknown.thing"},
		{"client {oauth.client_id}", ""},
		{"{oauth.client_id}/{oauth.sub}", ""},
		{"{oauth.client_id}x", ""},
		{"\\{oauth.client_id}", ""},
		{"{}", ""},
		{"plain", ""},
	} {
		if got := onlyPlaceholder(tc.value); got != tc.key {
			t.Errorf("onlyPlaceholder(%q) = %q, want %q", tc.value, got, tc.key)
		}
	}
	f := newFixture(t)
	values := map[string]string{
		"X-A": "{oauth.client_id}",
		"X-B": "{oauth.claims.n}", // a number: JSON text
		"X-C": "client {oauth.client_id} of {oauth.sub}",
		"X-D": "{unknown.thing}",
		"X-E": "{oauth.sub}",
	}
	h := newHandler(t, f, &Scope{ForwardHeaders: values})
	r, repl := newRequest(http.MethodGet, "/", "Bearer "+f.token(t, claims(nil, map[string]any{"n": 7})))
	res := serve(t, h, r)
	mustAccept(t, res)
	want := map[string]string{"X-A": testClientID, "X-B": "7", "X-C": "client " + testClientID + " of svc-subject", "X-D": "", "X-E": "svc-subject"}
	for name, value := range values {
		if got := res.nextHeader.Get(name); got != want[name] || got != repl.ReplaceAll(value, "") {
			t.Errorf("%s = %q, want %q (ReplaceAll: %q)", name, got, want[name], repl.ReplaceAll(value, ""))
		}
	}
}
