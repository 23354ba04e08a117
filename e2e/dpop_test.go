package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyapigw/gateway/internal/dpop/dpoptest"
)

// ledgerClient is the example's client that must use DPoP (require_dpop).
var ledgerClient = demoClient{"ledger-service", "ledger-demo-secret-not-for-production"}

// dpopCall is one HTTP request with optional Authorization scheme, DPoP
// proof and Host header (to reach a gateway as another's public name).
type dpopCall struct {
	method, url, authz, proof, host string
	form                            url.Values
}

func (g *gateway) dpopDo(c dpopCall) (int, http.Header, string) {
	g.t.Helper()
	var body io.Reader
	if c.form != nil {
		body = strings.NewReader(c.form.Encode())
	}
	req, err := http.NewRequestWithContext(g.ctx(), c.method, c.url, body)
	if err != nil {
		g.t.Fatal(err)
	}
	if c.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.authz != "" {
		req.Header.Set("Authorization", c.authz)
	}
	if c.proof != "" {
		req.Header.Set("DPoP", c.proof)
	}
	if c.host != "" {
		req.Host = c.host
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// dpopToken gets a DPoP-bound token for c with key k, at g's token
// endpoint (as host, when set).
func (g *gateway) dpopToken(c demoClient, k *dpoptest.Key, scope string) string {
	g.t.Helper()
	tokenURL := g.url("/oauth2/token")
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.id}, "client_secret": {c.secret}, "scope": {scope}}
	status, _, body := g.dpopDo(dpopCall{method: "POST", url: tokenURL, form: form, proof: k.Proof("POST", tokenURL, dpoptest.Options{})})
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal([]byte(body), &tr); err != nil || status != http.StatusOK || tr.TokenType != "DPoP" {
		g.t.Fatalf("DPoP token for %s: %d %s", c.id, status, body)
	}
	return tr.AccessToken
}

// TestDPoPAtTheGateway: the example gateway with a DPoP client (RFC 9449):
// the client gets no token without a proof; its bound token works at
// /api/notes with a fresh proof, and is refused without one, with a proof
// for another method or URL, with a replayed proof, by another key, and as
// a plain bearer token.
func TestDPoPAtTheGateway(t *testing.T) {
	p := newPorts(t)
	g := startGateway(t, p, exampleCaddyfile(t, p), "")
	tokenURL := g.url("/oauth2/token")
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {ledgerClient.id}, "client_secret": {ledgerClient.secret}}
	status, _, body := g.dpopDo(dpopCall{method: "POST", url: tokenURL, form: form})
	if status != http.StatusBadRequest || !strings.Contains(body, "invalid_dpop_proof") {
		t.Fatalf("require_dpop client without a proof: %d %s", status, body)
	}

	k, other := mustKey(t), mustKey(t)
	tok := g.dpopToken(ledgerClient, k, "notes:read")
	notes := g.url("/api/notes")
	fresh := func() string { return k.Proof("GET", notes, dpoptest.Options{AccessToken: tok}) }
	used := fresh()
	if status, _, body := g.dpopDo(dpopCall{method: "GET", url: notes, authz: "DPoP " + tok, proof: used}); status != http.StatusOK {
		t.Fatalf("bound token with a fresh proof: %d %s", status, body)
	}
	refusals := []struct {
		name string
		call dpopCall
		code string
	}{
		{"no proof", dpopCall{method: "GET", url: notes, authz: "DPoP " + tok}, "invalid_dpop_proof"},
		{"replayed proof", dpopCall{method: "GET", url: notes, authz: "DPoP " + tok, proof: used}, "invalid_dpop_proof"},
		{"proof for POST", dpopCall{method: "GET", url: notes, authz: "DPoP " + tok, proof: k.Proof("POST", notes, dpoptest.Options{AccessToken: tok})}, "invalid_dpop_proof"},
		{"proof for another URL", dpopCall{method: "GET", url: notes, authz: "DPoP " + tok, proof: k.Proof("GET", g.url("/api/users"), dpoptest.Options{AccessToken: tok})}, "invalid_dpop_proof"},
		{"proof by another key", dpopCall{method: "GET", url: notes, authz: "DPoP " + tok, proof: other.Proof("GET", notes, dpoptest.Options{AccessToken: tok})}, "invalid_dpop_proof"},
		{"as a bearer token", dpopCall{method: "GET", url: notes, authz: "Bearer " + tok}, "invalid_token"},
		{"as a bearer token with a proof", dpopCall{method: "GET", url: notes, authz: "Bearer " + tok, proof: fresh()}, "invalid_token"},
	}
	for _, r := range refusals {
		status, h, body := g.dpopDo(r.call)
		var dpopChallenge string
		for _, v := range h.Values("WWW-Authenticate") {
			if strings.HasPrefix(v, "DPoP ") {
				dpopChallenge = v
			}
		}
		if status != http.StatusUnauthorized || !strings.Contains(body, r.code) || !strings.Contains(dpopChallenge, `error="`+r.code+`"`) {
			t.Errorf("%s: %d %s, challenges %q; want 401 %s with a DPoP challenge", r.name, status, body, h.Values("WWW-Authenticate"), r.code)
		}
	}
	// Proofs are credentials' companions: the access log leaves them out.
	if g.logContains(used) {
		t.Error("a DPoP proof is in the access log")
	}
	// A bearer client is unaffected.
	if status, _, body := g.do("GET", "/api/notes", g.token(reportsClient), nil); status != http.StatusOK {
		t.Fatalf("bearer token of another client: %d %s", status, body)
	}
	g.logMustNotLeak(t)
}

// TestDPoPReplayAcrossCluster: a proof accepted by gateway A is refused by
// gateway B of the same cluster (one Redis): the jti record is the store's
// (RFC 9449 §11.1), not one process's. B is reached under A's public name,
// as behind one load balancer, so the proof's htu fits B too.
func TestDPoPReplayAcrossCluster(t *testing.T) {
	c := startCluster(t)
	k := mustKey(t)
	tok := c.a.dpopToken(reportsClient, k, "notes:read")
	notes := c.issuer + "/api/notes"
	host := strings.TrimPrefix(c.issuer, "https://")
	bURL := c.b.url("/api/notes")
	p := k.Proof("GET", notes, dpoptest.Options{AccessToken: tok})
	if status, _, body := c.a.dpopDo(dpopCall{method: "GET", url: c.a.url("/api/notes"), authz: "DPoP " + tok, proof: p}); status != http.StatusOK {
		t.Fatalf("A: %d %s", status, body)
	}
	status, _, body := c.b.dpopDo(dpopCall{method: "GET", url: bURL, host: host, authz: "DPoP " + tok, proof: p})
	if status != http.StatusUnauthorized || !strings.Contains(body, "invalid_dpop_proof") {
		t.Fatalf("B accepted a proof A had accepted: %d %s", status, body)
	}
	// The same call with a fresh proof works at B: the refusal was the
	// replay, not the URL.
	if status, _, body := c.b.dpopDo(dpopCall{method: "GET", url: bURL, host: host, authz: "DPoP " + tok, proof: k.Proof("GET", notes, dpoptest.Options{AccessToken: tok})}); status != http.StatusOK {
		t.Fatalf("B with a fresh proof: %d %s", status, body)
	}
}

// TestDPoPOpenIDClient: panva's openid-client v6, a DPoP client nobody
// here wrote, against the example with server nonces on (`dpop { nonce }`):
// it gets a DPoP token after the use_dpop_nonce dance (RFC 9449 §8),
// which it follows by itself, and calls the API with it.
func TestDPoPOpenIDClient(t *testing.T) {
	npmInstallIn(t, oidcRPDir, "openid-client")
	p := newPorts(t)
	cfg := exampleCaddyfile(t, p)
	anchor := "\t\taccess_token_ttl 1h\n"
	if !strings.Contains(cfg, anchor) {
		t.Fatal("example access_token_ttl line not found")
	}
	cfg = strings.Replace(cfg, anchor, anchor+"\t\tdpop {\n\t\t\tnonce\n\t\t}\n", 1)
	g := startGateway(t, p, cfg, "")
	refusedBefore := sum(g.scrape(t), "oauth_token_refused_total", map[string]string{"error": "use_dpop_nonce"})

	rp := startNodeRP(t, g, "dpop.js", "--issuer", g.url(""), "--client-id", ledgerClient.id,
		"--client-secret", ledgerClient.secret, "--scope", "notes:read", "--resource-url", g.url("/api/notes"))
	var res struct {
		TokenType   string   `json:"token_type"`
		AccessToken string   `json:"access_token"`
		Status      int      `json:"status"`
		Body        string   `json:"body"`
		Algs        []string `json:"dpop_algs"`
		Error       string   `json:"error"`
		Cause       string   `json:"cause"`
	}
	rp.next(&res)
	if res.Error != "" {
		t.Fatalf("openid-client: %s (cause %s)\n%s", res.Error, res.Cause, rp.stderr.String())
	}
	if !strings.EqualFold(res.TokenType, "DPoP") || res.Status != http.StatusOK || len(res.Algs) == 0 {
		t.Fatalf("openid-client: token_type %q, API status %d %s, algs %v", res.TokenType, res.Status, res.Body, res.Algs)
	}
	refused := sum(g.scrape(t), "oauth_token_refused_total", map[string]string{"error": "use_dpop_nonce"}) - refusedBefore
	if refused < 1 {
		t.Fatalf("no use_dpop_nonce answer was counted: the nonce dance did not happen")
	}
	// The token openid-client holds is useless to a thief without its key.
	if status, _, _ := g.do("GET", "/api/notes", res.AccessToken, nil); status != http.StatusUnauthorized {
		t.Fatalf("openid-client's DPoP token accepted as a bearer token: %d", status)
	}
	t.Logf("openid-client v6: DPoP token after %s use_dpop_nonce answer(s), API answered %d", strconv.FormatFloat(refused, 'f', 0, 64), res.Status)
}

func mustKey(t *testing.T) *dpoptest.Key {
	t.Helper()
	k, err := dpoptest.NewKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	return k
}
