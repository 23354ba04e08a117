package caddyoauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// regPolicy is the registration policy of the tests: tokens required,
// https redirect URIs on app.example only, no public clients.
func regPolicy() *RegistrationConfig {
	return &RegistrationConfig{Scopes: []string{"notes:read", "profile"}, RedirectURIHosts: []string{"app.example", "*.apps.example"}, MaxPerAddress: 100}
}

// regFlow is newFlow with registration on, its app started so that the
// admin API finds it.
func regFlow(t *testing.T, rc *RegistrationConfig) *browser {
	t.Helper()
	b, _ := newFlow(t, func(a *App) { a.Registration = rc })
	activate(t, b.s.app) // not started: no background loops while tests move the clock
	return b
}

// initialToken makes an initial access token through the admin API.
func initialToken(t *testing.T, body string) (string, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := handleRegistrationTokens(rec, httptest.NewRequest("POST", "/oauth/registration/tokens", strings.NewReader(body))); err != nil {
		t.Fatal(err)
	}
	var v struct{ ID, Token string }
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || v.Token == "" || rec.Code != http.StatusCreated {
		t.Fatalf("initial access token: %d %s", rec.Code, rec.Body)
	}
	return v.ID, v.Token
}

// regCall sends a registration request with a Bearer token (if any).
func regCall(t *testing.T, s *Server, method, path, token, body string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = "192.0.2.7:5555"
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	rec, next := serve(t, s, r)
	if next {
		t.Fatalf("%s %s went to the next handler", method, path)
	}
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return rec, m
}

const webRegistration = `{"client_name":"Registered web app","redirect_uris":["https://app.example/cb"],"grant_types":["authorization_code","refresh_token"],"scope":"notes:read"}`

// TestRegistrationOff: without a registration block there is no
// registration endpoint, and the metadata names none.
func TestRegistrationOff(t *testing.T) {
	b, _ := newFlow(t, nil)
	r := httptest.NewRequest("POST", "/oauth2/register", strings.NewReader(webRegistration))
	if _, next := serve(t, b.s, r); !next {
		t.Error("the registration endpoint answered while registration is off")
	}
	if strings.Contains(string(b.s.metadata), "registration_endpoint") {
		t.Error("metadata names a registration endpoint while registration is off")
	}
}

// TestRegistrationErrors: each refusal with its RFC 7591 §3.2.2 code (or
// RFC 6750 §3's for the initial access token).
func TestRegistrationErrors(t *testing.T) {
	b := regFlow(t, regPolicy())
	_, tok := initialToken(t, "")
	if !strings.Contains(string(b.s.metadata), `"registration_endpoint": "`+testIssuer+`/oauth2/register"`) {
		t.Errorf("metadata: %s", b.s.metadata)
	}
	tests := []struct {
		name, token, ct, body string
		status                int
		code                  string
	}{
		{"no initial access token (RFC 7591 §3)", "", "application/json", webRegistration, 401, ""},
		{"unknown initial access token", "made-up", "application/json", webRegistration, 401, "invalid_token"},
		{"redirect URI scheme not allowed", tok, "application/json", `{"redirect_uris":["http://app.example/cb"],"scope":"notes:read"}`, 400, errInvalidRedirectURI},
		{"redirect URI host not allowed", tok, "application/json", `{"redirect_uris":["https://evil.example/cb"],"scope":"notes:read"}`, 400, errInvalidRedirectURI},
		{"wildcard host is a subdomain only", tok, "application/json", `{"redirect_uris":["https://apps.example/cb"],"scope":"notes:read"}`, 400, errInvalidRedirectURI},
		{"redirect URI with a fragment (RFC 6749 §3.1.2)", tok, "application/json", `{"redirect_uris":["https://app.example/cb#x"],"scope":"notes:read"}`, 400, errInvalidRedirectURI},
		{"post-logout URI host not allowed", tok, "application/json", `{"redirect_uris":["https://app.example/cb"],"post_logout_redirect_uris":["https://evil.example/"],"scope":"notes:read"}`, 400, errInvalidRedirectURI},
		{"no redirect URI for the code grant", tok, "application/json", `{"scope":"notes:read"}`, 400, errInvalidRedirectURI},
		{"grant type not allowed", tok, "application/json", `{"grant_types":["client_credentials"],"scope":"notes:read"}`, 400, errInvalidClientMetadata},
		{"scope not allowed", tok, "application/json", `{"redirect_uris":["https://app.example/cb"],"scope":"notes:write"}`, 400, errInvalidClientMetadata},
		{"public clients not allowed", tok, "application/json", `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none"}`, 400, errInvalidClientMetadata},
		{"client_secret_jwt not offered", tok, "application/json", `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_jwt"}`, 400, errInvalidClientMetadata},
		{"private_key_jwt without keys", tok, "application/json", `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`, 400, errInvalidClientMetadata},
		{"implicit response type", tok, "application/json", `{"redirect_uris":["https://app.example/cb"],"response_types":["token"]}`, 400, errInvalidClientMetadata},
		{"response type without its grant (RFC 7591 §2.1)", tok, "application/json", `{"redirect_uris":["https://app.example/cb"],"grant_types":["refresh_token"],"response_types":["code"]}`, 400, errInvalidClientMetadata},
		{"a field of the wrong type", tok, "application/json", `{"redirect_uris":"https://app.example/cb"}`, 400, errInvalidClientMetadata},
		{"not JSON", tok, "application/x-www-form-urlencoded", `client_name=x`, 400, errInvalidClientMetadata},
		{"software statement not approved", tok, "application/json", `{"redirect_uris":["https://app.example/cb"],"software_statement":"eyJhbGciOiJSUzI1NiJ9.eyJzb2Z0d2FyZV9pZCI6IngifQ.c2ln"}`, 400, errUnapprovedSoftwareStatement},
		{"software statement not a JWT", tok, "application/json", `{"redirect_uris":["https://app.example/cb"],"software_statement":42}`, 400, errInvalidSoftwareStatement},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/oauth2/register", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", tt.ct)
			if tt.token != "" {
				r.Header.Set("Authorization", "Bearer "+tt.token)
			}
			rec, _ := serve(t, b.s, r)
			var e oauthError
			_ = json.Unmarshal(rec.Body.Bytes(), &e)
			if rec.Code != tt.status || e.Code != tt.code {
				t.Errorf("%d %s; want %d %q", rec.Code, rec.Body, tt.status, tt.code)
			}
			if rec.Code == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %q", rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
	if l, _ := b.s.app.registry.store.List(t.Context()); len(l) != 0 {
		t.Errorf("refused registrations stored %d clients", len(l))
	}
}

// TestRegistrationLifecycle: a client registers with an initial access
// token, gets tokens by the code grant, reads, updates and deletes itself
// with its registration access token (RFC 7592); operator-only settings
// sent by the registrant are ignored.
func TestRegistrationLifecycle(t *testing.T) {
	b := regFlow(t, regPolicy())
	_, iat := initialToken(t, `{"expires_in":"1h","note":"partner"}`)
	body := strings.TrimSuffix(webRegistration, "}") + `,"metadata":{"tier":"gold"},"resources":["https://x.example/"],"assertion_subjects":["*"],"access_token_ttl":"24h","logo_uri":"https://app.example/logo.png"}`
	rec, got := regCall(t, b.s, "POST", "/oauth2/register", iat, body)
	if rec.Code != http.StatusCreated || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("register: %d %s", rec.Code, rec.Body)
	}
	id, _ := got["client_id"].(string)
	secret, _ := got["client_secret"].(string)
	rat, _ := got["registration_access_token"].(string)
	uri, _ := got["registration_client_uri"].(string)
	if id == "" || secret == "" || rat == "" || uri != testIssuer+"/oauth2/register/"+id || got["client_secret_expires_at"] != float64(0) ||
		got["token_endpoint_auth_method"] != authBasic || got["scope"] != "notes:read" || got["client_id_issued_at"] == float64(0) {
		t.Fatalf("client information response: %s", rec.Body)
	}
	info, ok, _ := b.s.app.Client(id)
	if !ok || len(info.Metadata) != 0 || info.Name != "Registered web app" {
		t.Errorf("registered client %+v: operator-only settings taken from the registrant", info)
	}
	if sc, _ := b.s.app.registry.store.Get(t.Context(), id); sc == nil || len(sc.Resources) != 0 || len(sc.AssertionSubjects) != 0 || sc.AccessTokenTTL != 0 ||
		strings.Contains(sc.RegistrationTokenHash, rat) || sc.RegistrationTokenHash != tokenID(rat) {
		t.Errorf("stored: %+v", sc)
	}

	// The code grant with the registered client.
	verifier, challenge := pkce()
	u := b.approve(authorizeQuery(challenge, "client_id", id, "redirect_uri", "https://app.example/cb", "scope", "notes:read"))
	form := url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {"https://app.example/cb"}, "code_verifier": {verifier}}
	if rec := basicToken(t, b.s, id, secret, form); rec.Code != http.StatusOK {
		t.Fatalf("token: %d %s", rec.Code, rec.Body)
	}

	// RFC 7592 §2.1: read with the token; anything else is 401.
	path := "/oauth2/register/" + id
	if rec, got := regCall(t, b.s, "GET", path, rat, ""); rec.Code != http.StatusOK || got["client_id"] != id || got["client_secret"] != nil {
		t.Errorf("read: %d %s", rec.Code, rec.Body)
	}
	if status, _, raw := adminDo(t, "POST", "/oauth/clients", `{"client_id":"by-admin","scope":"notes:read"}`); status != http.StatusCreated {
		t.Fatalf("admin client: %d %s", status, raw)
	}
	for name, tc := range map[string]struct{ path, token string }{
		"a client made through the admin API": {"/oauth2/register/by-admin", rat},
		"no token":                            {path, ""},
		"wrong token":                         {path, iat},
		"another client's path":               {"/oauth2/register/" + svcID, rat},
		"an unknown client":                   {"/oauth2/register/nobody", rat},
		"the initial token as the RAT":        {path, iat},
	} {
		if rec, _ := regCall(t, b.s, "GET", tc.path, tc.token, ""); rec.Code != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}

	// RFC 7592 §2.2: update replaces the metadata.
	upd := `{"client_id":"` + id + `","client_name":"Renamed","redirect_uris":["https://app.example/cb2"],"grant_types":["authorization_code"],"scope":"notes:read profile"}`
	if rec, got := regCall(t, b.s, "PUT", path, rat, upd); rec.Code != http.StatusOK || got["client_name"] != "Renamed" || got["scope"] != "notes:read profile" {
		t.Errorf("update: %d %s", rec.Code, rec.Body)
	}
	for name, body := range map[string]string{
		"another client_id":            `{"client_id":"other","redirect_uris":["https://app.example/cb"]}`,
		"the server's fields":          `{"client_id":"` + id + `","registration_access_token":"x","redirect_uris":["https://app.example/cb"]}`,
		"a wrong secret":               `{"client_id":"` + id + `","client_secret":"wrong","redirect_uris":["https://app.example/cb"]}`,
		"outside the policy on update": `{"client_id":"` + id + `","redirect_uris":["https://evil.example/cb"]}`,
	} {
		if rec, _ := regCall(t, b.s, "PUT", path, rat, body); rec.Code != http.StatusBadRequest {
			t.Errorf("update with %s: %d %s", name, rec.Code, rec.Body)
		}
	}
	if rec, _ := regCall(t, b.s, "PUT", path, rat, `{"client_id":"`+id+`","client_secret":"`+secret+`","redirect_uris":["https://app.example/cb"]}`); rec.Code != http.StatusOK {
		t.Errorf("update with the right secret: %d %s", rec.Code, rec.Body)
	}
	if rec := basicToken(t, b.s, id, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}); rec.Code == http.StatusUnauthorized {
		t.Errorf("the secret stopped working after an update: %d %s", rec.Code, rec.Body)
	}

	// RFC 7592 §2.3: delete; then the token and the secret are refused.
	if rec, _ := regCall(t, b.s, "DELETE", path, rat, ""); rec.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	if rec, _ := regCall(t, b.s, "GET", path, rat, ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("read after delete: %d", rec.Code)
	}
	if _, ok, _ := b.s.app.Client(id); ok {
		t.Error("deleted client still known")
	}
}

// TestRegistrationOpenAndCapped: open registration needs no token, takes
// public clients when allowed, and is capped per address.
func TestRegistrationOpenAndCapped(t *testing.T) {
	rc := regPolicy()
	rc.Open, rc.AllowPublicClients, rc.MaxPerAddress = true, true, 2
	rc.RedirectURISchemes = []string{"https", "http"}
	b := regFlow(t, rc)
	pub := `{"redirect_uris":["http://127.0.0.1:8765/cb"],"token_endpoint_auth_method":"none","client_name":"CLI"}`
	rc.RedirectURIHosts = nil
	rec, got := regCall(t, b.s, "POST", "/oauth2/register", "", pub)
	if rec.Code != http.StatusCreated || got["client_secret"] != nil || got["token_endpoint_auth_method"] != authNone {
		t.Fatalf("open public registration: %d %s", rec.Code, rec.Body)
	}
	id, _ := got["client_id"].(string)
	if sc, _ := b.s.app.registry.store.Get(t.Context(), id); sc == nil || !sc.Public || sc.SecretHash != "" {
		t.Errorf("registered public client: %+v", sc)
	}
	if rec, _ := regCall(t, b.s, "POST", "/oauth2/register", "", webRegistration); rec.Code != http.StatusCreated {
		t.Fatalf("second: %d %s", rec.Code, rec.Body)
	}
	rec, _ = regCall(t, b.s, "POST", "/oauth2/register", "", webRegistration)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Errorf("third from one address: %d %s", rec.Code, rec.Body)
	}
}

// TestInitialAccessTokensAdmin: made (shown once), listed without the
// token, withdrawn, and expired tokens are refused.
func TestInitialAccessTokensAdmin(t *testing.T) {
	b := regFlow(t, regPolicy())
	var offset atomic.Int64
	b.s.app.clock = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	id, tok := initialToken(t, `{"expires_in":"10m"}`)
	rec := httptest.NewRecorder()
	if err := handleRegistrationTokens(rec, httptest.NewRequest("GET", "/oauth/registration/tokens", nil)); err != nil || strings.Contains(rec.Body.String(), tok) || !strings.Contains(rec.Body.String(), id) {
		t.Fatalf("list: %v %s", err, rec.Body)
	}
	if r, _ := regCall(t, b.s, "POST", "/oauth2/register", tok, webRegistration); r.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Code, r.Body)
	}
	if err := handleRegistrationTokens(httptest.NewRecorder(), httptest.NewRequest("DELETE", "/oauth/registration/tokens/"+id, nil)); err != nil {
		t.Fatal(err)
	}
	if r, _ := regCall(t, b.s, "POST", "/oauth2/register", tok, webRegistration); r.Code != http.StatusUnauthorized {
		t.Errorf("withdrawn token: %d", r.Code)
	}
	_, tok2 := initialToken(t, `{"expires_in":"10m"}`)
	offset.Store(int64(11 * time.Minute))
	if r, _ := regCall(t, b.s, "POST", "/oauth2/register", tok2, webRegistration); r.Code != http.StatusUnauthorized {
		t.Errorf("expired token: %d", r.Code)
	}
	for body, want := range map[string]string{`{"expires_in":"1s"}`: "outside", `{"token":"mine"}`: "unknown field"} {
		err := handleRegistrationTokens(httptest.NewRecorder(), httptest.NewRequest("POST", "/oauth/registration/tokens", strings.NewReader(body)))
		if apiStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// TestRegistrationCaddyfile: the registration block, and its mistakes
// named at parse time.
func TestRegistrationCaddyfile(t *testing.T) {
	v, err := parseOAuthOption(caddyfile.NewTestDispenser(`oauth {
		issuer https://auth.example
		registration {
			open
			allow_public_clients
			grant_types authorization_code refresh_token
			scopes mcp:tools profile
			redirect_uri_schemes https http
			redirect_uri_hosts *.apps.example localhost
			max_per_address 5 10m
		}
	}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	var a App
	if err := json.Unmarshal(v.(httpcaddyfile.App).Value, &a); err != nil {
		t.Fatal(err)
	}
	rc := a.Registration
	if rc == nil || !rc.Open || !rc.AllowPublicClients || len(rc.Scopes) != 2 || len(rc.RedirectURISchemes) != 2 ||
		len(rc.RedirectURIHosts) != 2 || rc.MaxPerAddress != 5 || time.Duration(rc.Window) != 10*time.Minute {
		t.Errorf("registration: %+v", rc)
	}
	for body, want := range map[string]string{
		"registration {\n scopes a\n colour red\n}":                           "unrecognized registration option",
		"registration {\n grant_types authorization_code\n}":                  "scopes",
		"registration {\n scopes a\n redirect_uri_schemes javascript\n}":      "cannot carry",
		"registration {\n scopes a\n grant_types " + GrantJWTBearer + "\n}":   "cannot be registered",
		"registration {\n scopes a\n max_per_address 0\n}":                    "positive",
		"registration {\n scopes a\n}\nregistration {\n scopes a\n}":          "already specified",
		"registration {\n scopes a\n redirect_uri_hosts https://x.example\n}": "host name",
	} {
		_, err := parseOAuthOption(caddyfile.NewTestDispenser("oauth {\n issuer https://auth.example\n "+body+"\n}"), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v; want %q", body, err, want)
		}
	}
}
