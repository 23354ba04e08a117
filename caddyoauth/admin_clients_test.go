package caddyoauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// adminDo calls the clients admin handler and returns status and body
// (the status of an APIError when the handler returns one).
func adminDo(t *testing.T, method, path, body string) (int, map[string]any, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	err := handleClients(rec, r)
	if err != nil {
		return apiStatus(err), nil, err.Error()
	}
	var m map[string]any
	if rec.Body.Len() > 0 && rec.Body.Bytes()[0] == '{' {
		_ = json.Unmarshal(rec.Body.Bytes(), &m)
	}
	return rec.Code, m, rec.Body.String()
}

// startedApp provisions the base config on fresh storage and starts it, so
// the admin API finds it.
func startedApp(t *testing.T) (*App, *Server) {
	t.Helper()
	a := newApp(t, nil)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	return a, newServer(t, a, "")
}

func TestAdminClientLifecycle(t *testing.T) {
	a, srv := startedApp(t)

	// Create: 201, the secret once, never its hash.
	status, created, raw := adminDo(t, "POST", "/oauth/clients", `{"client_id":"billing","name":"Billing","scopes":["user:read","user:write"],"metadata":{"tier":"gold"}}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, raw)
	}
	secret, _ := created["client_secret"].(string)
	if len(secret) != 43 || created["source"] != "store" || strings.Contains(raw, "sha256") {
		t.Fatalf("create answer %s", raw)
	}

	// The new client gets tokens with its secret, and only the scopes given.
	rec := basicToken(t, srv, "billing", secret, ccForm("scope", "user:write"))
	if rec.Code != http.StatusOK {
		t.Fatalf("token for the created client: %d %s", rec.Code, rec.Body)
	}
	before := decodeTokenResponse(t, rec).AccessToken
	if rec := basicToken(t, srv, "billing", secret, ccForm("scope", "notes:read")); rec.Code != http.StatusBadRequest {
		t.Errorf("scope not given to the client: %d", rec.Code)
	}
	if info, ok, _ := a.Client("billing"); !ok || info.Name != "Billing" || info.Metadata["tier"] != "gold" {
		t.Errorf("Client(billing) = %+v, %v", info, ok)
	}

	// GET never shows the secret; the list has both kinds of client.
	status, got, raw := adminDo(t, "GET", "/oauth/clients/billing", "")
	if status != http.StatusOK || got["client_secret"] != nil || strings.Contains(raw, secret) {
		t.Fatalf("GET: %d %s", status, raw)
	}
	rec2 := httptest.NewRecorder()
	if err := handleClients(rec2, httptest.NewRequest("GET", "/oauth/clients", nil)); err != nil {
		t.Fatal(err)
	}
	var list []clientView
	if err := json.Unmarshal(rec2.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{}
	for _, v := range list {
		sources[v.ID] = v.Source
		if v.ClientSecret != "" {
			t.Errorf("list shows a secret for %s", v.ID)
		}
	}
	if sources["billing"] != "store" || sources[svcID] != "json" || sources[readerID] != "json" {
		t.Errorf("list sources %v", sources)
	}

	// Replace narrows the scopes; tokens follow at once here.
	status, _, raw = adminDo(t, "PUT", "/oauth/clients/billing", `{"name":"Billing v2","scopes":["user:read"]}`)
	if status != http.StatusOK {
		t.Fatalf("PUT: %d %s", status, raw)
	}
	if info, _, _ := a.Client("billing"); info.Name != "Billing v2" || len(info.Scopes) != 1 {
		t.Errorf("after PUT: %+v", info)
	}
	if rec := basicToken(t, srv, "billing", secret, ccForm("scope", "user:write")); rec.Code != http.StatusBadRequest {
		t.Errorf("withdrawn scope still granted: %d", rec.Code)
	}

	// Rotate the secret: shown once, the old one stops working.
	status, rotated, raw := adminDo(t, "POST", "/oauth/clients/billing/secret", "")
	newSecret, _ := rotated["client_secret"].(string)
	if status != http.StatusOK || newSecret == "" || newSecret == secret {
		t.Fatalf("rotate: %d %s", status, raw)
	}
	if rec := basicToken(t, srv, "billing", secret, ccForm()); rec.Code != http.StatusUnauthorized {
		t.Errorf("old secret after rotation: %d", rec.Code)
	}
	if rec := basicToken(t, srv, "billing", newSecret, ccForm()); rec.Code != http.StatusOK {
		t.Errorf("new secret: %d %s", rec.Code, rec.Body)
	}

	// Revoke: tokens issued up to now are refused (their iat is not after
	// the mark); the client itself stays.
	claims, err := a.Verifier().Verify(before)
	if err != nil {
		t.Fatal(err)
	}
	status, _, raw = adminDo(t, "POST", "/oauth/clients/billing/revoke", "")
	if status != http.StatusOK || !strings.Contains(raw, "tokens_revoked_before") {
		t.Fatalf("revoke: %d %s", status, raw)
	}
	info, ok, _ := a.Client("billing")
	if !ok || info.RevokedBefore.IsZero() || claims.IssuedAt.After(info.RevokedBefore) {
		t.Fatalf("after revoke: %+v (token iat %v)", info, claims.IssuedAt)
	}

	// Delete: 204, then unknown to the token endpoint and to Client; a
	// client created again under the id does not inherit old tokens.
	if status, _, raw := adminDo(t, "DELETE", "/oauth/clients/billing", ""); status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", status, raw)
	}
	if _, ok, _ := a.Client("billing"); ok {
		t.Error("deleted client still known")
	}
	if rec := basicToken(t, srv, "billing", newSecret, ccForm()); rec.Code != http.StatusUnauthorized {
		t.Errorf("deleted client got a token: %d", rec.Code)
	}
	if status, _, raw := adminDo(t, "POST", "/oauth/clients", `{"client_id":"billing","scopes":["user:read"]}`); status != http.StatusCreated {
		t.Fatalf("re-create: %d %s", status, raw)
	}
	if info, ok, _ := a.Client("billing"); !ok || info.RevokedBefore.IsZero() || claims.IssuedAt.After(info.RevokedBefore) {
		t.Errorf("re-created client would accept a token from before the delete: %+v", info)
	}
}

func TestAdminClientRefusals(t *testing.T) {
	startedApp(t)
	// Whitespace after the object (curl's newline) is not trailing data.
	if status, _, raw := adminDo(t, "POST", "/oauth/clients", "{\"client_id\":\"dup\",\"scopes\":[\"a\"]}\n  "); status != http.StatusCreated {
		t.Fatalf("setup: %d %s", status, raw)
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"caddyfile client cannot be replaced", "PUT", "/oauth/clients/" + svcID, `{"scopes":["a"]}`, 409, "configuration"},
		{"caddyfile client cannot be deleted", "DELETE", "/oauth/clients/" + svcID, "", 409, "configuration"},
		{"caddyfile client secret is not rotated here", "POST", "/oauth/clients/" + svcID + "/secret", "", 409, "configuration"},
		{"create over a caddyfile client", "POST", "/oauth/clients", `{"client_id":"` + svcID + `","scopes":["a"]}`, 409, "configuration"},
		{"create twice", "POST", "/oauth/clients", `{"client_id":"dup","scopes":["a"]}`, 409, "exists"},
		{"trailing object is refused", "POST", "/oauth/clients", `{"client_id":"x1","scopes":["a"]}{"client_id":"x2","scopes":["a"]}`, 400, "trailing data"},
		{"trailing garbage is refused", "POST", "/oauth/clients", `{"client_id":"x3","scopes":["a"]} x`, 400, "trailing data"},
		{"trailing data on update is refused", "PUT", "/oauth/clients/dup", `{"scopes":["a"]} []`, 400, "trailing data"},
		{"secret in the body is refused", "POST", "/oauth/clients", `{"client_id":"x","scopes":["a"],"secret":"mine"}`, 400, `unknown field "secret"`},
		{"secret_hash in the body is refused", "POST", "/oauth/clients", `{"client_id":"x","scopes":["a"],"secret_hash":"sha256:00"}`, 400, "secret_hash"},
		{"no scopes", "POST", "/oauth/clients", `{"client_id":"x"}`, 400, "scopes"},
		{"bad scope token (RFC 6749 §3.3)", "POST", "/oauth/clients", `{"client_id":"x","scopes":["a b"]}`, 400, "scopes"},
		{"unknown grant", "POST", "/oauth/clients", `{"client_id":"x","scopes":["a"],"grant_types":["password"]}`, 400, "grant_types"},
		{"bad client_id", "POST", "/oauth/clients", `{"client_id":"has space","scopes":["a"]}`, 400, "client_id"},
		{"not JSON", "POST", "/oauth/clients", `scopes=a`, 400, "body"},
		{"unknown client", "GET", "/oauth/clients/nobody", "", 404, "nobody"},
		{"replace unknown", "PUT", "/oauth/clients/nobody", `{"scopes":["a"]}`, 404, "nobody"},
		{"body id differs from path", "PUT", "/oauth/clients/dup", `{"client_id":"other","scopes":["a"]}`, 400, "differs"},
		{"unknown action", "POST", "/oauth/clients/dup/explode", "", 404, "endpoint"},
		{"wrong method on a client", "POST", "/oauth/clients/dup", "", 405, "method"},
		{"wrong method on an action", "GET", "/oauth/clients/dup/revoke", "", 405, "method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, raw := adminDo(t, tt.method, tt.path, tt.body)
			if status != tt.status || !strings.Contains(raw, tt.want) {
				t.Errorf("%s %s: %d %s; want %d mentioning %q", tt.method, tt.path, status, raw, tt.status, tt.want)
			}
		})
	}
}

// TestAdminRevokeCaddyfileClient: a Caddyfile client's tokens can be
// revoked through the admin API too.
func TestAdminRevokeCaddyfileClient(t *testing.T) {
	a, srv := startedApp(t)
	tok := decodeTokenResponse(t, basicToken(t, srv, svcID, svcSecret, ccForm())).AccessToken
	claims, err := a.Verifier().Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, raw := adminDo(t, "POST", "/oauth/clients/"+svcID+"/revoke", ""); status != http.StatusOK {
		t.Fatalf("revoke: %d %s", status, raw)
	}
	info, ok, _ := a.Client(svcID)
	if !ok || info.RevokedBefore.IsZero() || claims.IssuedAt.After(info.RevokedBefore) {
		t.Fatalf("after revoke: %+v", info)
	}
	// A token issued in a later second is not affected.
	time.Sleep(1100 * time.Millisecond)
	later, _ := a.Verifier().Verify(decodeTokenResponse(t, basicToken(t, srv, svcID, svcSecret, url.Values{"grant_type": {"client_credentials"}})).AccessToken)
	if !later.IssuedAt.After(info.RevokedBefore) {
		t.Errorf("a token issued after the revocation falls under it")
	}
}

// TestStoreClientCacheRefresh: a change made on another instance reaches
// this one within about clientCacheTTL, without blocking lookups.
func TestStoreClientCacheRefresh(t *testing.T) {
	storage := newStorage(t)
	a := provisionApp(t, baseConfig(), storage)
	b := provisionApp(t, baseConfig(), storage)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	if status, _, raw := adminDo(t, "POST", "/oauth/clients", `{"client_id":"roaming","scopes":["a"]}`); status != http.StatusCreated {
		t.Fatalf("create on A: %d %s", status, raw)
	}
	if _, ok, _ := b.Client("roaming"); !ok {
		t.Fatal("B does not know a client created on A")
	}
	if status, _, raw := adminDo(t, "DELETE", "/oauth/clients/roaming", ""); status != http.StatusNoContent {
		t.Fatalf("delete on A: %d %s", status, raw)
	}
	deadline := time.Now().Add(5 * clientCacheTTL)
	for {
		if _, ok, _ := b.Client("roaming"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B still knows a client deleted on A")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAdminClientResources: the admin API takes and shows a client's
// resources (RFC 8707), the same ClientSettings field as the Caddyfile,
// and refuses a malformed one naming the field.
func TestAdminClientResources(t *testing.T) {
	_, srv := startedApp(t)
	status, created, raw := adminDo(t, "POST", "/oauth/clients", `{"client_id":"billing","scopes":["user:read"],"resources":["https://billing.example/api","urn:example:ledger"]}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, raw)
	}
	secret, _ := created["client_secret"].(string)
	if got, _ := created["resources"].([]any); len(got) != 2 {
		t.Errorf("create answer resources: %s", raw)
	}
	tok := decodeTokenResponse(t, basicToken(t, srv, "billing", secret, ccForm())).AccessToken
	assertAud(t, tok, "https://billing.example/api", "urn:example:ledger")
	tok = decodeTokenResponse(t, basicToken(t, srv, "billing", secret, withResources(ccForm(), "urn:example:ledger"))).AccessToken
	assertAud(t, tok, "urn:example:ledger")
	assertOAuthError(t, basicToken(t, srv, "billing", secret, withResources(ccForm(), testIssuer)), http.StatusBadRequest, errInvalidTarget)

	status, got, raw := adminDo(t, "GET", "/oauth/clients/billing", "")
	if res, _ := got["resources"].([]any); status != http.StatusOK || len(res) != 2 {
		t.Errorf("GET: %d %s", status, raw)
	}
	status, _, raw = adminDo(t, "POST", "/oauth/clients", `{"client_id":"bad","scopes":["user:read"],"resources":["https://billing.example/#x"]}`)
	if status != http.StatusBadRequest || !strings.Contains(raw, "resources") {
		t.Errorf("resource with a fragment: %d %s", status, raw)
	}
}
