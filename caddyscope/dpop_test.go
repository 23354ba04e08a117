package caddyscope

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddyapigw/gateway/internal/dpop/dpoptest"
)

// resURL is the URL httptest requests for "/api/notes" go to.
const resURL = "http://example.com/api/notes"

// dpopGet sends GET /api/notes with authz and the given DPoP headers.
func dpopGet(t testing.TB, h *Scope, authz string, proofs ...string) result {
	t.Helper()
	var r *http.Request
	if authz == "" {
		r, _ = newRequest(http.MethodGet, "/api/notes")
	} else {
		r, _ = newRequest(http.MethodGet, "/api/notes", authz)
	}
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return serve(t, h, r)
}

// challenges returns the WWW-Authenticate values by scheme.
func challenges(res result) map[string]string {
	out := map[string]string{}
	for _, v := range res.rec.Header().Values("WWW-Authenticate") {
		scheme, _, _ := strings.Cut(v, " ")
		out[scheme] = v
	}
	return out
}

// TestDPoPResourceRFC9449 is RFC 9449 §7's table for a route that allows
// both kinds of token: what each request with a DPoP-bound (or unbound)
// token gets.
func TestDPoPResourceRFC9449(t *testing.T) {
	f := newFixture(t)
	key, other := mustDPoPKey(t), mustDPoPKey(t)
	bound := f.token(t, claims("notes:read", map[string]any{"cnf": map[string]any{"jkt": key.JKT}}))
	plain := f.token(t, claims("notes:read", nil))
	proof := func(o dpoptest.Options) string {
		if o.AccessToken == "" {
			o.AccessToken = bound
		}
		return key.Proof("GET", resURL, o)
	}
	cases := []struct {
		name   string
		authz  string
		proofs []string
		status int
		code   string
	}{
		{"§7.1: bound token, DPoP scheme, fresh proof", "DPoP " + bound, []string{proof(dpoptest.Options{})}, 200, ""},
		{"bearer token still accepted where DPoP is allowed", "Bearer " + plain, nil, 200, ""},
		{"§7.2: bound token as a bearer token", "Bearer " + bound, nil, 401, "invalid_token"},
		{"§7.2: bound token as a bearer token, proof attached", "Bearer " + bound, []string{proof(dpoptest.Options{})}, 401, "invalid_token"},
		{"§7.1: unbound token with the DPoP scheme", "DPoP " + plain, []string{key.Proof("GET", resURL, dpoptest.Options{AccessToken: plain})}, 401, "invalid_token"},
		{"§7.1: no proof", "DPoP " + bound, nil, 401, "invalid_dpop_proof"},
		{"§4.3 item 1: two proofs", "DPoP " + bound, []string{proof(dpoptest.Options{}), proof(dpoptest.Options{})}, 401, "invalid_dpop_proof"},
		{"§4.3 item 8: proof for POST", "DPoP " + bound, []string{key.Proof("POST", resURL, dpoptest.Options{AccessToken: bound})}, 401, "invalid_dpop_proof"},
		{"§4.3 item 9: proof for another URL", "DPoP " + bound, []string{key.Proof("GET", "http://example.com/api/other", dpoptest.Options{AccessToken: bound})}, 401, "invalid_dpop_proof"},
		{"§4.3 item 12: proof without ath", "DPoP " + bound, []string{key.Proof("GET", resURL, dpoptest.Options{Claims: map[string]any{"ath": nil}})}, 401, "invalid_dpop_proof"},
		{"§4.3 item 12: ath of another token", "DPoP " + bound, []string{proof(dpoptest.Options{AccessToken: plain})}, 401, "invalid_dpop_proof"},
		{"§7.1: proof by another key than cnf.jkt", "DPoP " + bound, []string{other.Proof("GET", resURL, dpoptest.Options{AccessToken: bound})}, 401, "invalid_dpop_proof"},
	}
	h := newHandler(t, f, &Scope{Rules: []Rule{{Methods: []string{"GET"}, Scopes: []string{"notes:read"}}}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := dpopGet(t, h, tc.authz, tc.proofs...)
			if tc.status == 200 {
				mustAccept(t, res)
				return
			}
			checkRefused(t, res, tc.status, tc.code)
			ch := challenges(res)
			if !strings.Contains(ch["DPoP"], `error="`+tc.code+`"`) || !strings.Contains(ch["DPoP"], `algs="`) {
				t.Errorf("DPoP challenge %q lacks error %s or algs (RFC 9449 §7.1)", ch["DPoP"], tc.code)
			}
			if strings.Contains(ch["Bearer"], "error=") {
				t.Errorf("the Bearer challenge %q carries the DPoP error", ch["Bearer"])
			}
		})
	}
}

// TestDPoPResourceReplay: RFC 9449 §11.1, a proof is accepted once.
func TestDPoPResourceReplay(t *testing.T) {
	f := newFixture(t)
	key := mustDPoPKey(t)
	bound := f.token(t, claims("notes:read", map[string]any{"cnf": map[string]any{"jkt": key.JKT}}))
	h := newHandler(t, f, &Scope{})
	p := key.Proof("GET", resURL, dpoptest.Options{AccessToken: bound})
	mustAccept(t, dpopGet(t, h, "DPoP "+bound, p))
	checkRefused(t, dpopGet(t, h, "DPoP "+bound, p), 401, "invalid_dpop_proof")
	// A route of another config in the same process shares the record.
	h2 := newHandler(t, f, &Scope{})
	checkRefused(t, dpopGet(t, h2, "DPoP "+bound, p), 401, "invalid_dpop_proof")
	mustAccept(t, dpopGet(t, h2, "DPoP "+bound, key.Proof("GET", resURL, dpoptest.Options{AccessToken: bound})))
}

// TestDPoPRequiredRoute: `dpop required` takes DPoP-bound tokens only and
// challenges with DPoP alone (RFC 9449 §7.1).
func TestDPoPRequiredRoute(t *testing.T) {
	f := newFixture(t)
	key := mustDPoPKey(t)
	bound := f.token(t, claims("notes:read", map[string]any{"cnf": map[string]any{"jkt": key.JKT}}))
	plain := f.token(t, claims("notes:read", nil))
	h := newHandler(t, f, &Scope{DPoP: DPoPRequired})
	mustAccept(t, dpopGet(t, h, "DPoP "+bound, key.Proof("GET", resURL, dpoptest.Options{AccessToken: bound})))

	res := dpopGet(t, h, "Bearer "+plain)
	checkRefused(t, res, 401, "invalid_token")
	ch := challenges(res)
	if _, has := ch["Bearer"]; has || !strings.Contains(ch["DPoP"], "algs=") {
		t.Errorf("challenges %v: want DPoP only, with algs", ch)
	}
	res = dpopGet(t, h, "")
	ch = challenges(res)
	if res.rec.Code != 401 || ch["DPoP"] == "" || strings.Contains(ch["DPoP"], "error=") {
		t.Errorf("no credentials: %d %v; want 401 and a DPoP challenge without error", res.rec.Code, ch)
	}
	if err := (&Scope{DPoP: "sometimes"}).provisionDPoP(); err == nil {
		t.Error("dpop: an unknown mode was accepted")
	}
}

// TestBearerRouteChallengeUnchanged: a request that does not use DPoP, on
// a route that does not require it, gets the Bearer challenge alone.
func TestBearerRouteChallengeUnchanged(t *testing.T) {
	f := newFixture(t)
	h := newHandler(t, f, &Scope{})
	res := dpopGet(t, h, "")
	if vals := res.rec.Header().Values("WWW-Authenticate"); len(vals) != 1 || !strings.HasPrefix(vals[0], "Bearer") {
		t.Errorf("WWW-Authenticate = %q, want one Bearer challenge", vals)
	}
}

func mustDPoPKey(t testing.TB) *dpoptest.Key {
	t.Helper()
	k, err := dpoptest.NewKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	return k
}
