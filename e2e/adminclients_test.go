package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Clients made only through the admin API, with no Caddyfile change: a
// public PKCE client, a private_key_jwt client and a client-credentials
// client each get tokens for the notes API of the running example; a
// secret rotation with an overlap leaves the old secret working until the
// overlap ends; a deleted client's token is refused; all of it survives a
// reload and a restart (the clients live in the store).

// adminJSON calls g's admin API with a JSON body and decodes the answer.
func adminJSON(t *testing.T, g *gateway, method, path, ct, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, g.adminURL(path), strings.NewReader(body))
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if m == nil {
		m = map[string]any{"raw": string(b)}
	}
	return resp.StatusCode, m
}

// es256JWT signs claims with key (JWS compact, RFC 7515; ES256 is r‖s).
func es256JWT(t *testing.T, key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": kid})
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// tokenAt posts a token request with optional Basic credentials.
func tokenAt(t *testing.T, g *gateway, id, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", g.url("/oauth2/token"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestAdminAPIClientsEndToEnd(t *testing.T) {
	p := newPorts(t)
	home := t.TempDir()
	g := startGateway(t, p, exampleCaddyfile(t, p), home)
	notes := g.url("/api/notes")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk := map[string]any{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(key.X.FillBytes(make([]byte, 32))),
		"y": base64.RawURLEncoding.EncodeToString(key.Y.FillBytes(make([]byte, 32)))}
	jwks, _ := json.Marshal(map[string]any{"keys": []any{jwk}})

	for _, body := range []string{
		`{"client_id":"adm-spa","client_name":"Admin SPA","public":true,"redirect_uris":["` + g.url("/demo/callback") + `"],"grant_types":["authorization_code","refresh_token"],"scope":"notes:read","resources":["` + notes + `"]}`,
		`{"client_id":"adm-pkj","token_endpoint_auth_method":"private_key_jwt","jwks":` + string(jwks) + `,"scope":"notes:read","resources":["` + notes + `"]}`,
	} {
		if status, v := adminJSON(t, g, "POST", "/oauth/clients", "application/json", body); status != http.StatusCreated || v["client_secret"] != nil {
			t.Fatalf("create: %d %v", status, v)
		}
	}
	status, v := adminJSON(t, g, "POST", "/oauth/clients", "application/json", `{"client_id":"adm-cc","scope":"notes:read","resources":["`+notes+`"]}`)
	secret1, _ := v["client_secret"].(string)
	if status != http.StatusCreated || secret1 == "" {
		t.Fatalf("create adm-cc: %d %v", status, v)
	}

	pp := newPerson(t)
	verifier, challenge := pkcePair()
	var spaRefresh string
	useAll := func(g *gateway, ccSecret, when string) string {
		t.Helper()
		// client_credentials with the secret.
		status, tok := tokenAt(t, g, "adm-cc", ccSecret, url.Values{"grant_type": {"client_credentials"}})
		at, _ := tok["access_token"].(string)
		if status != http.StatusOK {
			t.Fatalf("%s: adm-cc token: %d %v", when, status, tok)
		}
		if s, _, body := g.do("GET", "/api/notes", at, nil); s != http.StatusOK {
			t.Fatalf("%s: notes API with adm-cc's token: %d %s", when, s, body)
		}
		// private_key_jwt (RFC 7523 §2.2).
		now := time.Now().Unix()
		assertion := es256JWT(t, key, "k1", map[string]any{"iss": "adm-pkj", "sub": "adm-pkj", "aud": g.url("/oauth2/token"),
			"iat": now, "exp": now + 60, "jti": fmt.Sprintf("%s-%d", when, time.Now().UnixNano())})
		status, tok = tokenAt(t, g, "", "", url.Values{"grant_type": {"client_credentials"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}})
		if status != http.StatusOK {
			t.Fatalf("%s: adm-pkj token: %d %v", when, status, tok)
		}
		pkjToken, _ := tok["access_token"].(string)
		if s, _, body := g.do("GET", "/api/notes", pkjToken, nil); s != http.StatusOK {
			t.Fatalf("%s: notes API with adm-pkj's token: %d %s", when, s, body)
		}
		// The public client: a code with PKCE the first time, then its
		// refresh token.
		if spaRefresh == "" {
			q := url.Values{"response_type": {"code"}, "client_id": {"adm-spa"}, "redirect_uri": {g.url("/demo/callback")},
				"scope": {"notes:read"}, "state": {"s1"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
			back := pp.signInAt(g, g.url("/oauth2/authorize?"+q.Encode()))
			status, tok = tokenAt(t, g, "", "", url.Values{"grant_type": {"authorization_code"}, "client_id": {"adm-spa"},
				"code": {back.Query().Get("code")}, "code_verifier": {verifier}, "redirect_uri": {g.url("/demo/callback")}})
		} else {
			status, tok = tokenAt(t, g, "", "", url.Values{"grant_type": {"refresh_token"}, "client_id": {"adm-spa"}, "refresh_token": {spaRefresh}})
		}
		if status != http.StatusOK {
			t.Fatalf("%s: adm-spa token: %d %v", when, status, tok)
		}
		spaRefresh, _ = tok["refresh_token"].(string)
		spaToken, _ := tok["access_token"].(string)
		if s, _, body := g.do("GET", "/api/notes", spaToken, nil); s != http.StatusOK {
			t.Fatalf("%s: notes API with adm-spa's token: %d %s", when, s, body)
		}
		return at
	}
	useAll(g, secret1, "after creation")

	// Rotation with an overlap: both secrets work until it ends, then only
	// the new one.
	status, v = adminJSON(t, g, "POST", "/oauth/clients/adm-cc/secret", "application/json", `{"overlap":"3s"}`)
	secret2, _ := v["client_secret"].(string)
	if status != http.StatusOK || secret2 == "" || v["previous_secret_valid_until"] == nil {
		t.Fatalf("rotate: %d %v", status, v)
	}
	for name, s := range map[string]string{"old": secret1, "new": secret2} {
		if status, tok := tokenAt(t, g, "adm-cc", s, url.Values{"grant_type": {"client_credentials"}}); status != http.StatusOK {
			t.Errorf("%s secret within the overlap: %d %v", name, status, tok)
		}
	}
	time.Sleep(3500 * time.Millisecond)
	if status, _ := tokenAt(t, g, "adm-cc", secret1, url.Values{"grant_type": {"client_credentials"}}); status != http.StatusUnauthorized {
		t.Errorf("old secret after the overlap: %d", status)
	}

	// A reload, then a restart on the same storage: the clients are still
	// there and work.
	g.reload(withGeneration(t, g.config))
	g.awaitGeneration("/health", "")
	useAll(g, secret2, "after reload")
	g.stop()
	g = startGateway(t, p, exampleCaddyfile(t, p), home)
	ccToken := useAll(g, secret2, "after restart")
	if status, v := adminJSON(t, g, "GET", "/oauth/clients/adm-pkj", "", ""); status != http.StatusOK || v["source"] != "store" {
		t.Errorf("adm-pkj after restart: %d %v", status, v)
	}
	if status, v := adminJSON(t, g, "GET", "/oauth/clients/notes-web", "", ""); status != http.StatusOK || v["source"] != "caddyfile" {
		t.Errorf("a Caddyfile client: %d %v", status, v)
	}

	// Removing a client: its token is refused at the API, its secret at
	// the token endpoint.
	if status, v := adminJSON(t, g, "DELETE", "/oauth/clients/adm-cc", "", ""); status != http.StatusNoContent {
		t.Fatalf("delete: %d %v", status, v)
	}
	if s, _, _ := g.do("GET", "/api/notes", ccToken, nil); s != http.StatusUnauthorized {
		t.Errorf("a deleted client's token at the API: %d", s)
	}
	if status, _ := tokenAt(t, g, "adm-cc", secret2, url.Values{"grant_type": {"client_credentials"}}); status != http.StatusUnauthorized {
		t.Errorf("a deleted client's secret: %d", status)
	}
}
