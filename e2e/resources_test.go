package e2e

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// resourceToken gets a client-credentials token for c with RFC 8707
// resource parameters, or the token endpoint's error answer.
func (g *gateway) resourceToken(c demoClient, resources ...string) (string, int, []byte) {
	g.t.Helper()
	cfg := g.ccConfig(c, oauth2.AuthStyleInHeader)
	cfg.EndpointParams = url.Values{"resource": resources}
	tok, err := cfg.Token(g.ctx())
	if err != nil {
		if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
			return "", re.Response.StatusCode, re.Body
		}
		g.t.Fatalf("token for %s: %v", c.id, err)
	}
	rememberSecret(tok.AccessToken)
	return tok.AccessToken, http.StatusOK, nil
}

// TestResourceIndicatorsE2E: RFC 8707 with the example. A token asked for
// the notes API is accepted there and refused at the users API (401
// invalid_token: wrong audience); a token asked without resource names
// every API of its client; a resource the client may not have gets
// invalid_target (§2). The example's handle_errors block writes the 403
// body, and the gateway's log gives the reason with the same error id.
func TestResourceIndicatorsE2E(t *testing.T) {
	g := startExample(t)
	notes := g.url("/api/notes")

	tok, status, body := g.resourceToken(reportsClient, notes)
	if status != http.StatusOK {
		t.Fatalf("token for %s: %d %s", notes, status, body)
	}
	if status, _, body := g.do("GET", "/api/notes/1", tok, nil); status != http.StatusOK {
		t.Fatalf("notes token refused at the notes API: %d %s", status, body)
	}
	status, h, body := g.do("GET", "/api/users/1", tok, nil)
	expectBearerError(t, "notes token at the users API", status, h, body, http.StatusUnauthorized, "invalid_token")
	if !strings.Contains(string(body), "token audience not accepted") {
		t.Errorf("body does not say why: %s", body)
	}

	all := g.token(reportsClient)
	for _, path := range []string{"/api/notes/1", "/api/users/1"} {
		if status, _, body := g.do("GET", path, all, nil); status != http.StatusOK {
			t.Errorf("token without resource refused at %s: %d %s", path, status, body)
		}
	}

	for _, tt := range []struct {
		c        demoClient
		resource string
	}{
		{reportsClient, g.url("/api/admin")},     // no such API
		{provisioningClient, notes},              // not among its resources
		{reportsClient, notes + "#fragment"},     // §2: no fragment
		{reportsClient, "api/notes"},             // §2: absolute URI
		{reportsClient, "https://evil.example/"}, // someone else's API
	} {
		_, status, body := g.resourceToken(tt.c, tt.resource)
		var e struct{ Error string }
		_ = json.Unmarshal(body, &e)
		if status != http.StatusBadRequest || e.Error != "invalid_target" {
			t.Errorf("%s asking for %q: %d %s, want 400 invalid_target", tt.c.id, tt.resource, status, body)
		}
	}

	// A 403 restyled by the example's handle_errors block: the scope the
	// token lacked and an error id, which the log line of the refusal
	// carries with the reason.
	weak := g.token(reportsClient, "user:read")
	status, h, body = g.do("POST", "/api/users", weak, nil)
	expectBearerError(t, "write with a read token", status, h, body, http.StatusForbidden, "insufficient_scope")
	var styled map[string]string
	if err := json.Unmarshal(body, &styled); err != nil {
		t.Fatalf("403 body is not JSON: %s", body)
	}
	if styled["error"] != "insufficient_scope" || styled["required_scope"] != "user:write" || styled["error_id"] == "" {
		t.Fatalf("403 body not written by the example's handle_errors block: %s", body)
	}
	checkAPIHeaders(t, g, "403", h)
	if !g.logContains(`"reason":"token lacks a required scope"`) || !g.logContains(`"err_id":"`+styled["error_id"]+`"`) {
		g.dumpLog()
		t.Fatal("the log does not give the refusal's reason with its error id")
	}
	if g.logContains(weak[:40]) {
		t.Fatal("the log carries the token")
	}
}

// challengeParam reads one auth-param of a WWW-Authenticate challenge.
func challengeParam(ch, name string) string {
	m := regexp.MustCompile(name + `="([^"]*)"`).FindStringSubmatch(ch)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestProtectedResourceDiscoveryWalk: a client that knows nothing but the
// API's URL starts from a bare 401 and finds its way, as MCP clients do:
// the challenge's resource_metadata (RFC 9728 §5.1) → the resource's
// metadata (§2: resource, authorization_servers, scopes_supported) → the
// authorization server's metadata (RFC 8414 §3) → its token endpoint → a
// token for that resource (RFC 8707) → 200.
func TestProtectedResourceDiscoveryWalk(t *testing.T) {
	g := startExample(t)
	status, h, _ := g.do("GET", "/api/notes", "", nil)
	if status != http.StatusUnauthorized {
		t.Fatalf("bare request: %d", status)
	}
	metaURL := challengeParam(h.Get("WWW-Authenticate"), "resource_metadata")
	if metaURL != g.url("/.well-known/oauth-protected-resource/api/notes") {
		t.Fatalf("challenge %q: resource_metadata %q", h.Get("WWW-Authenticate"), metaURL)
	}
	var rs struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
		BearerMethods        []string `json:"bearer_methods_supported"`
	}
	getJSON(t, g, metaURL, &rs)
	if rs.Resource != g.url("/api/notes") || len(rs.AuthorizationServers) != 1 || len(rs.ScopesSupported) == 0 {
		t.Fatalf("resource metadata %+v", rs)
	}
	as := rs.AuthorizationServers[0]
	var md struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	u, _ := url.Parse(as)
	getJSON(t, g, u.Scheme+"://"+u.Host+"/.well-known/oauth-authorization-server"+strings.TrimSuffix(u.Path, "/"), &md)
	if md.Issuer != as || md.TokenEndpoint == "" {
		t.Fatalf("authorization server metadata %+v for %s", md, as)
	}
	cfg := g.ccConfig(reportsClient, oauth2.AuthStyleInHeader, "notes:read")
	cfg.TokenURL = md.TokenEndpoint
	cfg.EndpointParams = url.Values{"resource": {rs.Resource}}
	tok, err := cfg.Token(g.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if status, _, body := g.do("GET", "/api/notes", tok.AccessToken, nil); status != http.StatusOK {
		t.Fatalf("token found by discovery refused: %d %s", status, body)
	}
}

// getJSON fetches u through the gateway's client and decodes it.
func getJSON(t *testing.T, g *gateway, u string, v any) {
	t.Helper()
	resp, err := g.client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET %s: %d %s %s", u, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, body)
	}
}
