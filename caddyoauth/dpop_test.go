package caddyoauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyapigw/gateway/internal/dpop"
	"github.com/caddyapigw/gateway/internal/dpop/dpoptest"
	"github.com/caddyapigw/gateway/internal/oauthstore"
)

// tokenURLOf is the URL httptest requests to the token endpoint go to.
const tokenURLOf = "http://example.com/oauth2/token"

func dpopKey(t testing.TB) *dpoptest.Key {
	t.Helper()
	k, err := dpoptest.NewKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// dpopRequest posts form to the token endpoint with proofs in DPoP
// headers (none, one, or several).
func dpopRequest(t testing.TB, s *Server, form url.Values, proofs ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := tokenRequest(form.Encode())
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	rec, _ := serve(t, s, r)
	return rec
}

// tokenJSON decodes a token endpoint answer.
func tokenJSON(t testing.TB, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %s", rec.Body)
	}
	return m
}

// boundJKT is the cnf.jkt of an access token, "" if it has none.
func boundJKT(t testing.TB, tok string) string {
	t.Helper()
	_, p := jwtSegments(t, tok)
	cnf, _ := p["cnf"].(map[string]any)
	jkt, _ := cnf["jkt"].(string)
	return jkt
}

// TestTokenDPoPBinding: RFC 9449 §5, a token request with a valid proof
// gets token_type DPoP and an access token whose cnf.jkt is the proof
// key's thumbprint (§6.1); without a proof, a bearer token with no cnf.
func TestTokenDPoPBinding(t *testing.T) {
	s := newTestServer(t, nil)
	k := dpopKey(t)
	form := ccForm("client_id", svcID, "client_secret", svcSecret)

	rec := dpopRequest(t, s, form, k.Proof("POST", tokenURLOf, dpoptest.Options{}))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	m := tokenJSON(t, rec)
	if m["token_type"] != "DPoP" {
		t.Errorf("token_type = %v, want DPoP (RFC 9449 §5)", m["token_type"])
	}
	if got := boundJKT(t, m["access_token"].(string)); got != k.JKT {
		t.Errorf("cnf.jkt = %q, want the proof key's %q (RFC 9449 §6.1)", got, k.JKT)
	}

	rec = dpopRequest(t, s, form)
	m = tokenJSON(t, rec)
	if m["token_type"] != "Bearer" || boundJKT(t, m["access_token"].(string)) != "" {
		t.Errorf("without a proof: token_type %v, cnf %q; want a plain bearer token", m["token_type"], boundJKT(t, m["access_token"].(string)))
	}
}

// TestTokenDPoPRefusals: each bad proof is invalid_dpop_proof (RFC 9449
// §5, §4.3) and gets no token.
func TestTokenDPoPRefusals(t *testing.T) {
	s := newTestServer(t, nil)
	k := dpopKey(t)
	form := ccForm("client_id", svcID, "client_secret", svcSecret)
	replayed := k.Proof("POST", tokenURLOf, dpoptest.Options{})
	if rec := dpopRequest(t, s, form, replayed); rec.Code != http.StatusOK {
		t.Fatalf("first use: %d %s", rec.Code, rec.Body)
	}
	cases := []struct {
		name   string
		proofs []string
	}{
		{"§11.1: a proof used twice", []string{replayed}},
		{"§4.3 item 1: two DPoP headers", []string{k.Proof("POST", tokenURLOf, dpoptest.Options{}), k.Proof("POST", tokenURLOf, dpoptest.Options{})}},
		{"§4.3 item 8: htm GET", []string{k.Proof("GET", tokenURLOf, dpoptest.Options{})}},
		{"§4.3 item 9: htu of another endpoint", []string{k.Proof("POST", "http://example.com/oauth2/introspect", dpoptest.Options{})}},
		{"§4.3 item 11: stale iat", []string{k.Proof("POST", tokenURLOf, dpoptest.Options{IAT: time.Now().Add(-10 * time.Minute)})}},
		{"§4.3 item 4: typ JWT", []string{k.Proof("POST", tokenURLOf, dpoptest.Options{Typ: "JWT"})}},
		{"§4.3 item 2: garbage", []string{"not-a-proof"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := dpopRequest(t, s, form, tc.proofs...)
			m := assertOAuthError(t, rec, http.StatusBadRequest, errInvalidDPoPProof)
			if _, has := m["access_token"]; has {
				t.Fatal("a refused proof got a token")
			}
		})
	}
}

// TestTokenRequireDPoP: a client with dpop_bound_access_tokens (RFC 9449
// §5.2) gets no token without a proof.
func TestTokenRequireDPoP(t *testing.T) {
	cfg := baseConfig()
	cfg.Clients[0].DPoPBoundAccessTokens = true
	s := newTestServer(t, cfg)
	form := ccForm("client_id", svcID, "client_secret", svcSecret)
	assertOAuthError(t, dpopRequest(t, s, form), http.StatusBadRequest, errInvalidDPoPProof)
	k := dpopKey(t)
	rec := dpopRequest(t, s, form, k.Proof("POST", tokenURLOf, dpoptest.Options{}))
	if rec.Code != http.StatusOK || tokenJSON(t, rec)["token_type"] != "DPoP" {
		t.Fatalf("with a proof: %d %s", rec.Code, rec.Body)
	}
	// The other client is unaffected.
	if rec := dpopRequest(t, s, ccForm("client_id", readerID, "client_secret", readerSecret)); rec.Code != http.StatusOK {
		t.Fatalf("client without require_dpop: %d", rec.Code)
	}
}

// TestTokenDPoPNonce: RFC 9449 §8, with nonces on, a proof without the
// current nonce gets use_dpop_nonce and the nonce in DPoP-Nonce; the
// retry with it gets the token.
func TestTokenDPoPNonce(t *testing.T) {
	cfg := baseConfig()
	cfg.DPoP = &DPoPConfig{Nonce: true}
	s := newTestServer(t, cfg)
	k := dpopKey(t)
	form := ccForm("client_id", svcID, "client_secret", svcSecret)
	rec := dpopRequest(t, s, form, k.Proof("POST", tokenURLOf, dpoptest.Options{}))
	assertOAuthError(t, rec, http.StatusBadRequest, errUseDPoPNonce)
	nonce := rec.Header().Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatal("use_dpop_nonce without a DPoP-Nonce header (RFC 9449 §8)")
	}
	bad := dpopRequest(t, s, form, k.Proof("POST", tokenURLOf, dpoptest.Options{Nonce: "made-up"}))
	assertOAuthError(t, bad, http.StatusBadRequest, errUseDPoPNonce)
	rec = dpopRequest(t, s, form, k.Proof("POST", tokenURLOf, dpoptest.Options{Nonce: nonce}))
	if rec.Code != http.StatusOK {
		t.Fatalf("with the nonce: %d %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("DPoP-Nonce") == "" {
		t.Error("success without the current nonce in DPoP-Nonce")
	}
	// Another instance on the same store accepts the nonce (shared key).
	other := newServer(t, provisionApp(t, &App{Issuer: testIssuer, Clients: baseConfig().Clients, DPoP: &DPoPConfig{Nonce: true}, store: s.app.store}, newStorage(t)), "")
	rec = dpopRequest(t, other, form, k.Proof("POST", tokenURLOf, dpoptest.Options{Nonce: nonce}))
	if rec.Code != http.StatusOK {
		t.Fatalf("second instance refused the first's nonce: %d %s", rec.Code, rec.Body)
	}
}

// TestDPoPPublicClientRefreshBound: RFC 9449 §5, a public client's
// refresh token is bound to the proof key of the code exchange: a refresh
// without a proof, or with another key's, is refused and does not burn
// the token; with the key it works and the new access token is bound.
func TestDPoPPublicClientRefreshBound(t *testing.T) {
	b, _ := newFlow(t, func(a *App) {
		for _, c := range a.Clients {
			if c.ID == spaID {
				c.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
			}
		}
	})
	k, other := dpopKey(t), dpopKey(t)
	verifier, challenge := pkce()
	code := b.code(challenge)
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {spaRedirect}, "client_id": {spaID}, "code_verifier": {verifier}}
	rec := dpopRequest(t, b.s, f, k.Proof("POST", tokenURLOf, dpoptest.Options{}))
	if rec.Code != http.StatusOK {
		t.Fatalf("exchange: %d %s", rec.Code, rec.Body)
	}
	m := tokenJSON(t, rec)
	rt, _ := m["refresh_token"].(string)
	if rt == "" || boundJKT(t, m["access_token"].(string)) != k.JKT {
		t.Fatalf("exchange: no refresh token or unbound access token: %s", rec.Body)
	}
	rf := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {spaID}}
	assertOAuthError(t, dpopRequest(t, b.s, rf), http.StatusBadRequest, errInvalidDPoPProof)
	assertOAuthError(t, dpopRequest(t, b.s, rf, other.Proof("POST", tokenURLOf, dpoptest.Options{})), http.StatusBadRequest, errInvalidDPoPProof)
	rec = dpopRequest(t, b.s, rf, k.Proof("POST", tokenURLOf, dpoptest.Options{}))
	if rec.Code != http.StatusOK {
		t.Fatalf("refresh with the bound key: %d %s", rec.Code, rec.Body)
	}
	if m := tokenJSON(t, rec); boundJKT(t, m["access_token"].(string)) != k.JKT || m["token_type"] != "DPoP" {
		t.Fatalf("refreshed token not bound: %s", rec.Body)
	}
}

// TestDPoPMetadataAndIntrospection: the metadata lists the proof
// algorithms (RFC 9449 §5.1) and introspection of a bound token says
// token_type DPoP with its cnf.jkt (§6.2).
func TestDPoPMetadataAndIntrospection(t *testing.T) {
	s := newTestServer(t, nil)
	m := fetchMetadata(t, s, "/.well-known/oauth-authorization-server")
	algs, _ := m["dpop_signing_alg_values_supported"].([]any)
	if len(algs) == 0 {
		t.Fatalf("no dpop_signing_alg_values_supported: %v", m)
	}
	for _, a := range algs {
		if a == "none" || strings.HasPrefix(a.(string), "HS") {
			t.Errorf("symmetric or none proof algorithm advertised: %v", a)
		}
	}
	k := dpopKey(t)
	rec := dpopRequest(t, s, ccForm("client_id", svcID, "client_secret", svcSecret), k.Proof("POST", tokenURLOf, dpoptest.Options{}))
	tok := tokenJSON(t, rec)["access_token"].(string)
	code, in := introspectAs(t, s, readerID, readerSecret, tok)
	cnf, _ := in["cnf"].(map[string]any)
	if code != http.StatusOK || in["token_type"] != "DPoP" || cnf["jkt"] != k.JKT {
		t.Fatalf("introspection of a bound token: %d %v", code, in)
	}
}

// TestDPoPAuthorizationCodeBinding: RFC 9449 §10, a code asked for with
// dpop_jkt is redeemed only with a proof by that key; a malformed
// dpop_jkt is refused at the authorization endpoint.
func TestDPoPAuthorizationCodeBinding(t *testing.T) {
	b, _ := newFlow(t, nil)
	k, other := dpopKey(t), dpopKey(t)
	exchange := func(code, verifier string, proofs ...string) *httptest.ResponseRecorder {
		f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {spaRedirect}, "client_id": {spaID}, "code_verifier": {verifier}}
		return dpopRequest(t, b.s, f, proofs...)
	}
	cases := []struct {
		name   string
		proofs func() []string
		ok     bool
	}{
		{"no proof", func() []string { return nil }, false},
		{"proof by another key", func() []string { return []string{other.Proof("POST", tokenURLOf, dpoptest.Options{})} }, false},
		{"proof by the key", func() []string { return []string{k.Proof("POST", tokenURLOf, dpoptest.Options{})} }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			verifier, challenge := pkce()
			code := b.code(challenge, "dpop_jkt", k.JKT)
			rec := exchange(code, verifier, tc.proofs()...)
			if !tc.ok {
				assertOAuthError(t, rec, http.StatusBadRequest, errInvalidDPoPProof)
				return
			}
			if rec.Code != http.StatusOK || boundJKT(t, tokenJSON(t, rec)["access_token"].(string)) != k.JKT {
				t.Fatalf("bound code with its key: %d %s", rec.Code, rec.Body)
			}
		})
	}
	_, challenge := pkce()
	u := b.approve(authorizeQuery(challenge, "dpop_jkt", "short"))
	if u.Query().Get("error") != errInvalidRequest {
		t.Fatalf("malformed dpop_jkt: redirect %s, want error=invalid_request", u)
	}
}

// TestDPoPReplayRecord: proofs are recorded in the store (shared by a
// cluster) unless it is Caddy storage, whose lock-file writes are too slow
// for every API call; then in the process.
func TestDPoPReplayRecord(t *testing.T) {
	cfg := baseConfig()
	cfg.store = NewMemoryStore()
	shared := newApp(t, cfg)
	if _, ok := shared.DPoPReplay().(oauthstore.Proofs); !ok {
		t.Errorf("memory store: replay record %T, want the store's", shared.DPoPReplay())
	}
	local := newApp(t, nil) // Caddy file storage
	if local.DPoPReplay() != dpop.Replay(dpop.ProcessReplay) {
		t.Errorf("Caddy storage: replay record %T, want the process's", local.DPoPReplay())
	}
}

// TestUserinfoDPoP: RFC 9449 §7 at the userinfo endpoint: a DPoP-bound
// token is refused as a bearer token and accepted with the DPoP scheme and
// a proof for this request.
func TestUserinfoDPoP(t *testing.T) {
	b, _ := newFlow(t, nil)
	k := dpopKey(t)
	verifier, challenge := pkce()
	code := b.code(challenge, "scope", "profile")
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {spaRedirect}, "client_id": {spaID}, "code_verifier": {verifier}}
	rec := dpopRequest(t, b.s, f, k.Proof("POST", tokenURLOf, dpoptest.Options{}))
	if rec.Code != http.StatusOK {
		t.Fatalf("exchange: %d %s", rec.Code, rec.Body)
	}
	tok := tokenJSON(t, rec)["access_token"].(string)
	const userinfoURL = "http://example.com/oauth2/userinfo"
	get := func(authz string, proofs ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/oauth2/userinfo", nil)
		r.Header.Set("Authorization", authz)
		for _, p := range proofs {
			r.Header.Add("DPoP", p)
		}
		rec, _ := serve(t, b.s, r)
		return rec
	}
	if rec := get("Bearer " + tok); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate")+strings.Join(rec.Header().Values("WWW-Authenticate"), " "), "DPoP") {
		t.Fatalf("bound token as bearer at userinfo: %d %v", rec.Code, rec.Header().Values("WWW-Authenticate"))
	}
	if rec := get("DPoP " + tok); rec.Code != http.StatusUnauthorized {
		t.Fatalf("bound token without a proof at userinfo: %d", rec.Code)
	}
	if rec := get("DPoP "+tok, k.Proof("GET", userinfoURL, dpoptest.Options{AccessToken: tok})); rec.Code != http.StatusOK {
		t.Fatalf("bound token with its proof at userinfo: %d %s", rec.Code, rec.Body)
	}
}
