package caddyoauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// adminDoHeader is adminDo with a Content-Type.
func adminDoHeader(t *testing.T, method, path, ct, body string) (int, map[string]any, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", ct)
	if err := handleClients(rec, r); err != nil {
		return apiStatus(err), nil, err.Error()
	}
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return rec.Code, m, rec.Body.String()
}

// TestAdminPublicClientGrant: a public PKCE client made only through the
// admin API, with RFC 7591 §2's field names, gets tokens by the
// authorization code grant; it has no secret.
func TestAdminPublicClientGrant(t *testing.T) {
	b, _ := newFlow(t, nil)
	if err := b.s.app.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.s.app.Stop() })
	status, created, raw := adminDo(t, "POST", "/oauth/clients", `{"client_id":"admin-spa","client_name":"Admin SPA","public":true,
		"token_endpoint_auth_method":"none","redirect_uris":["`+spaRedirect+`"],"grant_types":["authorization_code","refresh_token"],
		"scope":"notes:read profile","post_logout_redirect_uris":["https://spa.example/bye"]}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, raw)
	}
	if created["client_secret"] != nil || created["client_name"] != "Admin SPA" || created["scope"] != "notes:read profile" ||
		created["name"] != nil || created["scopes"] != nil || created["public"] != true {
		t.Fatalf("create answer: %s", raw)
	}
	verifier, challenge := pkce()
	u := b.approve(authorizeQuery(challenge, "client_id", "admin-spa"))
	code := u.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %s", u)
	}
	rec := b.exchange(code, verifier, "client_id", "admin-spa")
	if rec.Code != http.StatusOK {
		t.Fatalf("exchange: %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(rec.Body.String(), `"refresh_token"`) {
		t.Errorf("no refresh token for a client with the refresh_token grant")
	}
	// PKCE is mandatory for the public client (RFC 9700 §2.1.1).
	rec = b.do("GET", "/oauth2/authorize?"+authorizeQuery("", "client_id", "admin-spa", "code_challenge", "", "code_challenge_method", ""), nil)
	if loc := rec.Header().Get("Location"); !strings.Contains(loc, "error=invalid_request") {
		t.Errorf("authorization without PKCE: %d %s", rec.Code, loc)
	}
}

// TestAdminPrivateKeyJWTClient: a private_key_jwt client made through the
// admin API authenticates with its key and has no secret; PATCH (RFC 7396)
// turning it into a client_secret_basic client removes the keys and makes
// a secret, shown once.
func TestAdminPrivateKeyJWTClient(t *testing.T) {
	startedApp(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks := string(clientJWKS(t, "k1", &key.PublicKey))
	status, created, raw := adminDo(t, "POST", "/oauth/clients", `{"client_id":"`+pkjID+`","token_endpoint_auth_method":"private_key_jwt","jwks":`+jwks+`,"scope":"user:read"}`)
	if status != http.StatusCreated || created["client_secret"] != nil || created["jwks"] == nil {
		t.Fatalf("create: %d %s", status, raw)
	}
	f := &assertionFixture{s: newServer(t, activeApp.Load(), ""), key: key, kid: "k1"}
	if rec := f.post(t, f.assertion(nil)); rec.Code != http.StatusOK {
		t.Fatalf("private_key_jwt token: %d %s", rec.Code, rec.Body)
	}

	status, patched, raw := adminDoHeader(t, "PATCH", "/oauth/clients/"+pkjID, "application/merge-patch+json",
		`{"token_endpoint_auth_method":"client_secret_basic","jwks":null,"client_name":"Now with a secret"}`)
	secret, _ := patched["client_secret"].(string)
	if status != http.StatusOK || secret == "" || patched["jwks"] != nil || patched["client_name"] != "Now with a secret" || patched["scope"] != "user:read" {
		t.Fatalf("patch: %d %s", status, raw)
	}
	if rec := basicToken(t, f.s, pkjID, secret, ccForm()); rec.Code != http.StatusOK {
		t.Errorf("secret made by PATCH: %d %s", rec.Code, rec.Body)
	}
	if rec := f.post(t, f.assertion(nil)); !strings.Contains(rec.Body.String(), errInvalidClient) {
		t.Errorf("key after it was patched away: %d %s", rec.Code, rec.Body)
	}
	// A later PATCH keeps the secret and does not show it again.
	status, again, raw := adminDoHeader(t, "PATCH", "/oauth/clients/"+pkjID, "application/merge-patch+json", `{"metadata":{"tier":"gold"}}`)
	if status != http.StatusOK || again["client_secret"] != nil {
		t.Fatalf("second patch: %d %s", status, raw)
	}
	if rec := basicToken(t, f.s, pkjID, secret, ccForm()); rec.Code != http.StatusOK {
		t.Errorf("secret after an unrelated PATCH: %d", rec.Code)
	}
}

// TestAdminPatch: JSON merge patch (RFC 7396 §2): members replace, null
// removes, nested objects merge, the rest stays.
func TestAdminPatch(t *testing.T) {
	startedApp(t)
	if status, _, raw := adminDo(t, "POST", "/oauth/clients", `{"client_id":"p","client_name":"P","scope":"a b","metadata":{"tier":"gold","team":"x"},"resources":["https://api.example/"]}`); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, raw)
	}
	status, got, raw := adminDoHeader(t, "PATCH", "/oauth/clients/p", "application/merge-patch+json", `{"scope":"a","metadata":{"team":null,"region":"eu"},"resources":null}`)
	if status != http.StatusOK {
		t.Fatalf("patch: %d %s", status, raw)
	}
	md, _ := got["metadata"].(map[string]any)
	if got["scope"] != "a" || got["client_name"] != "P" || got["resources"] != nil || len(md) != 2 || md["tier"] != "gold" || md["region"] != "eu" {
		t.Errorf("patched: %s", raw)
	}
	tests := []struct {
		name, ct, body string
		status         int
		want           string
	}{
		{"JSON Patch is not taken (RFC 5789 §2.2)", "application/json-patch+json", `[{"op":"remove","path":"/scope"}]`, 415, "merge patch"},
		{"a patch that is not an object", "application/merge-patch+json", `["a"]`, 400, "object"},
		{"the result is validated", "application/merge-patch+json", `{"grant_types":["password"]}`, 400, "grant_types"},
		{"removing every scope", "application/merge-patch+json", `{"scope":null}`, 400, "scopes"},
		{"unknown field", "application/merge-patch+json", `{"colour":"red"}`, 400, "colour"},
		{"renaming through the body", "application/merge-patch+json", `{"client_id":"q"}`, 400, "differs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, raw := adminDoHeader(t, "PATCH", "/oauth/clients/p", tt.ct, tt.body)
			if status != tt.status || !strings.Contains(raw, tt.want) {
				t.Errorf("%d %s; want %d mentioning %q", status, raw, tt.status, tt.want)
			}
		})
	}
	if status, _, raw := adminDoHeader(t, "PATCH", "/oauth/clients/"+svcID, "application/merge-patch+json", `{"scope":"a"}`); status != http.StatusConflict {
		t.Errorf("PATCH of a configured client: %d %s", status, raw)
	}
}

// TestAdminSameValidatorAsConfig: for each client the configuration
// refuses, the admin API refuses it with the same message (one validator,
// Client.provision).
func TestAdminSameValidatorAsConfig(t *testing.T) {
	a, _ := startedApp(t)
	for _, body := range []string{
		`{"client_id":"v1","public":true,"grant_types":["client_credentials"],"scope":"a"}`,
		`{"client_id":"v2","grant_types":["authorization_code"],"scope":"a"}`,
		`{"client_id":"v3","redirect_uris":["http://evil.example/cb"],"scope":"a"}`,
		`{"client_id":"v4","redirect_uris":["https://x.example/cb#frag"],"scope":"a"}`,
		`{"client_id":"v5","token_endpoint_auth_method":"private_key_jwt","scope":"a"}`,
		`{"client_id":"v6","public":true,"token_endpoint_auth_method":"client_secret_post","redirect_uris":["https://x.example/cb"],"scope":"a"}`,
		`{"client_id":"v7","scope":"a","access_token_ttl":"48h"}`,
		`{"client_id":"v8","scope":"a","require_pkce":true}`,
		`{"client_id":"v9","scope":"a","metadata":{"bad key":"x"}}`,
		`{"client_id":"v10","redirect_uris":["https://x.example/cb"],"post_logout_redirect_uris":["javascript:alert(1)"],"scope":"a"}`,
		`{"client_id":"v11","scope":"a","jwks_uri":"https://keys.example/jwks"}`,
	} {
		var req clientRequest
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			t.Fatal(err)
		}
		cs, err := req.settings()
		if err != nil {
			t.Fatal(err)
		}
		c := &Client{ClientSettings: cs}
		if need, _ := hasSecret(cs); need {
			c.SecretHash = HashSecret("a-secret-of-enough-length")
		}
		cfgErr := c.provision(caddy.NewReplacer(), a)
		if cfgErr == nil {
			t.Fatalf("%s: the configuration accepts it", body)
		}
		status, _, raw := adminDo(t, "POST", "/oauth/clients", body)
		if status != http.StatusBadRequest || !strings.Contains(raw, cfgErr.Error()) {
			t.Errorf("%s: admin API %d %s; the configuration says %q", body, status, raw, cfgErr)
		}
	}
	// Both spellings of a field at once are refused, and client_secret_jwt
	// (whose plain secret the store would have to keep) is not offered.
	for body, want := range map[string]string{
		`{"scope":"a","scopes":["a"]}`:                                   "same field",
		`{"client_name":"a","name":"b","scope":"a"}`:                     "same field",
		`{"scope":"a","token_endpoint_auth_method":"client_secret_jwt"}`: "client_secret_jwt",
	} {
		if status, _, raw := adminDo(t, "POST", "/oauth/clients", body); status != http.StatusBadRequest || !strings.Contains(raw, want) {
			t.Errorf("%s: %d %s", body, status, raw)
		}
	}
}

// TestAdminSecretOverlap: a rotation with an overlap window leaves the old
// secret working until the window ends, then only the new one works.
func TestAdminSecretOverlap(t *testing.T) {
	a := newApp(t, nil)
	// The clock moves by an offset, so the cache's background reads never
	// race with the test setting a.clock.
	var offset atomic.Int64
	a.clock = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	activate(t, a)
	srv := newServer(t, a, "")
	_, created, _ := adminDo(t, "POST", "/oauth/clients", `{"client_id":"rot","scope":"user:read"}`)
	old, _ := created["client_secret"].(string)
	status, rotated, raw := adminDo(t, "POST", "/oauth/clients/rot/secret", `{"overlap":"1h"}`)
	fresh, _ := rotated["client_secret"].(string)
	if status != http.StatusOK || fresh == "" || rotated["previous_secret_valid_until"] == nil {
		t.Fatalf("rotate: %d %s", status, raw)
	}
	if _, _, raw := adminDo(t, "GET", "/oauth/clients/rot", ""); strings.Contains(raw, "sha256") || strings.Contains(raw, "secret_hash") {
		t.Errorf("a hash is shown: %s", raw)
	}
	for name, s := range map[string]string{"old": old, "new": fresh} {
		if rec := basicToken(t, srv, "rot", s, ccForm()); rec.Code != http.StatusOK {
			t.Errorf("%s secret within the overlap: %d", name, rec.Code)
		}
	}
	// After the window: the old one is refused, the new one works.
	offset.Store(int64(time.Hour + time.Second))
	a.registry.forget("rot")
	if rec := basicToken(t, srv, "rot", old, ccForm()); rec.Code != http.StatusUnauthorized {
		t.Errorf("old secret after the overlap: %d", rec.Code)
	}
	if rec := basicToken(t, srv, "rot", fresh, ccForm()); rec.Code != http.StatusOK {
		t.Errorf("new secret after the overlap: %d", rec.Code)
	}
	if _, got, _ := adminDo(t, "GET", "/oauth/clients/rot", ""); got["previous_secret_valid_until"] != nil {
		t.Errorf("an ended overlap is still shown: %v", got)
	}

	tests := []struct{ body, want string }{
		{`{"overlap":"800h"}`, "at most"},
		{`{"previous_secret_valid_until":"2001-01-01T00:00:00Z"}`, "not in the future"},
		{`{"overlap":"1h","previous_secret_valid_until":"2101-01-01T00:00:00Z"}`, "not both"},
		{`{"overlap":"-1h"}`, "negative"},
		{`{"secret":"mine"}`, "unknown field"},
	}
	for _, tt := range tests {
		if status, _, raw := adminDo(t, "POST", "/oauth/clients/rot/secret", tt.body); status != http.StatusBadRequest || !strings.Contains(raw, tt.want) {
			t.Errorf("%s: %d %s", tt.body, status, raw)
		}
	}
	if rec := basicToken(t, srv, "rot", fresh, ccForm()); rec.Code != http.StatusOK {
		t.Errorf("a refused rotation changed the secret: %d", rec.Code)
	}
	// A client without a secret has none to rotate.
	adminDo(t, "POST", "/oauth/clients", `{"client_id":"pub","public":true,"redirect_uris":["https://x.example/cb"],"scope":"a"}`)
	if status, _, raw := adminDo(t, "POST", "/oauth/clients/pub/secret", ""); status != http.StatusConflict {
		t.Errorf("rotating a public client's secret: %d %s", status, raw)
	}
}

// TestAdminClientSource: configured clients are reported as coming from
// the Caddyfile only when the Caddyfile adapter made the config.
func TestAdminClientSource(t *testing.T) {
	v, err := parseOAuthOption(caddyfile.NewTestDispenser("oauth {\n issuer "+testIssuer+"\n client cf {\n  secret_hash "+sha256Hex(svcSecret)+"\n  scopes a\n }\n}"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := new(App)
	if err := json.Unmarshal(v.(httpcaddyfile.App).Value, cfg); err != nil {
		t.Fatal(err)
	}
	a := newApp(t, cfg)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	if _, got, raw := adminDo(t, "GET", "/oauth/clients/cf", ""); got["source"] != "caddyfile" {
		t.Errorf("Caddyfile client: %s", raw)
	}
	if status, _, raw := adminDo(t, "DELETE", "/oauth/clients/cf", ""); status != http.StatusConflict || !strings.Contains(raw, "caddyfile") {
		t.Errorf("deleting a Caddyfile client: %d %s", status, raw)
	}
	adminDo(t, "POST", "/oauth/clients", `{"client_id":"st","scope":"a"}`)
	if _, got, raw := adminDo(t, "GET", "/oauth/clients/st", ""); got["source"] != "store" {
		t.Errorf("store client: %s", raw)
	}
	// A JSON config (no adapter mark): json, as TestAdminClientLifecycle
	// checks for baseConfig.
}

// TestAdminMTLSClient: a tls_client_auth client (RFC 8705 §2.1) made
// through the admin API has no secret, and its certificate settings are
// kept and shown.
func TestAdminMTLSClient(t *testing.T) {
	startedApp(t)
	status, got, raw := adminDo(t, "POST", "/oauth/clients", `{"client_id":"mtls","token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"CN=svc,O=Example","scope":"a"}`)
	if status != http.StatusCreated || got["client_secret"] != nil || got["tls_client_auth_subject_dn"] != "CN=svc,O=Example" {
		t.Fatalf("create: %d %s", status, raw)
	}
	if status, _, raw := adminDo(t, "POST", "/oauth/clients/mtls/secret", ""); status != http.StatusConflict {
		t.Errorf("rotating an mTLS client's secret: %d %s", status, raw)
	}
}
