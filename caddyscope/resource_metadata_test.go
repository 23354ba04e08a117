package caddyscope

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestMetadataURL: RFC 9728 §3.1 inserts the well-known suffix between the
// host and the path of the resource identifier.
func TestMetadataURL(t *testing.T) {
	tests := []struct{ resource, want string }{
		{"https://resource.example.com", "https://resource.example.com/.well-known/oauth-protected-resource"},
		{"https://resource.example.com/", "https://resource.example.com/.well-known/oauth-protected-resource"},
		// §3.1's example.
		{"https://resource.example.com/resource1", "https://resource.example.com/.well-known/oauth-protected-resource/resource1"},
		{"https://localhost:8443/api/notes/", "https://localhost:8443/.well-known/oauth-protected-resource/api/notes"},
		{"https://api.example/a%20b", "https://api.example/.well-known/oauth-protected-resource/a%20b"},
	}
	for _, tt := range tests {
		if got, err := metadataURL(tt.resource); err != nil || got != tt.want {
			t.Errorf("metadataURL(%q) = %q, %v; want %q", tt.resource, got, err, tt.want)
		}
	}
}

// TestResourceChecked: a resource identifier is an absolute URI without a
// fragment (RFC 8707 §2), https but for loopback hosts, and fit for a
// quoted challenge attribute.
func TestResourceChecked(t *testing.T) {
	f := newFixture(t)
	for _, bad := range []string{"api/notes", "https://api.example/notes#x", "http://api.example/notes",
		"https://api.example/notes?x=1", `https://api.example/"notes"`, "https://user@api.example/"} {
		s := &Scope{Resource: bad}
		if err := s.provision(f.auth, nil); err == nil || !strings.HasPrefix(err.Error(), "resource: ") {
			t.Errorf("resource %q: provision = %v, want an error naming resource", bad, err)
		}
	}
}

// TestResourceAudience: a route with a resource requires it in the token's
// aud (RFC 8707 §2, RFC 9068 §4), so a token asked for another API, or for
// the server's default audience, is refused with invalid_token; the local
// server is told the resource exists; the 401 challenge points at the
// resource's metadata (RFC 9728 §5.1).
func TestResourceAudience(t *testing.T) {
	f := newFixture(t)
	const notes = "https://gw.example/api/notes"
	h := newHandler(t, f, &Scope{Resource: notes})
	t.Cleanup(func() { _ = h.Cleanup() })
	if !slices.Contains(f.auth.declared, notes) {
		t.Errorf("declared resources %v, want %s", f.auth.declared, notes)
	}
	ok := f.token(t, claims("s", map[string]any{"aud": []string{"https://gw.example/api/users", notes}}))
	r, _ := newRequest(http.MethodGet, "/", "Bearer "+ok)
	if res := serve(t, h, r); res.calls != 1 {
		t.Fatalf("token for the resource refused: %d %s", res.rec.Code, res.rec.Body)
	}
	for _, aud := range []any{"https://gw.example/api/users", testAudience} {
		r, _ := newRequest(http.MethodGet, "/", "Bearer "+f.token(t, claims("s", map[string]any{"aud": aud})))
		res := serve(t, h, r)
		body := checkRefused(t, res, http.StatusUnauthorized, errInvalidToken)
		if body.Description != "token audience not accepted" {
			t.Errorf("aud %v: error_description %q", aud, body.Description)
		}
		want := `resource_metadata="https://gw.example/.well-known/oauth-protected-resource/api/notes"`
		if ch := res.rec.Header().Get("WWW-Authenticate"); !strings.Contains(ch, want) {
			t.Errorf("challenge %q lacks %s", ch, want)
		}
	}
	// An explicit audience list still decides.
	h2 := newHandler(t, f, &Scope{Resource: notes, Audience: []string{testAudience}})
	t.Cleanup(func() { _ = h2.Cleanup() })
	r, _ = newRequest(http.MethodGet, "/", "Bearer "+f.token(t, claims("s", nil)))
	if res := serve(t, h2, r); res.calls != 1 {
		t.Fatalf("audience given: token refused: %d %s", res.rec.Code, res.rec.Body)
	}
}

// getMetadata asks the oauth_resource_metadata handler for path.
func getMetadata(t *testing.T, method, target string) (*httptest.ResponseRecorder, int, error) {
	t.Helper()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(method, target, nil)
	nexts := 0
	err := ResourceMetadata{}.ServeHTTP(rec, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		nexts++
		return nil
	}))
	return rec, nexts, err
}

// TestResourceMetadataDocument: the handler serves RFC 9728 §2 documents
// for the routes with a resource, at the §3.1 location: resource (equal to
// the identifier the URL was made from, §3.3), authorization_servers,
// scopes_supported (the union of the routes' rules), and
// bearer_methods_supported ["header"]; unknown resources are 404, other
// methods 405, other paths go on; a route's cleanup withdraws its part.
func TestResourceMetadataDocument(t *testing.T) {
	f := newFixture(t)
	const notes = "https://gw.example/api/notes"
	read := newHandler(t, f, &Scope{Resource: notes, Realm: "notes", Rules: []Rule{{Methods: []string{"GET"}, Scopes: []string{"notes:read"}}}})
	t.Cleanup(func() { _ = read.Cleanup() })
	write := newHandler(t, f, &Scope{Resource: notes, Rules: []Rule{{Methods: []string{"POST"}, Scopes: []string{"notes:write", "notes:read"}}}})

	rec, _, err := getMetadata(t, http.MethodGet, "https://gw.example/.well-known/oauth-protected-resource/api/notes")
	if err != nil || rec.Code != http.StatusOK {
		t.Fatalf("GET metadata: %v %d", err, rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var doc struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
		BearerMethods        []string `json:"bearer_methods_supported"`
		ResourceName         string   `json:"resource_name"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Resource != notes || !slices.Equal(doc.AuthorizationServers, []string{testIssuer}) ||
		!slices.Equal(doc.ScopesSupported, []string{"notes:read", "notes:write"}) ||
		!slices.Equal(doc.BearerMethods, []string{"header"}) || doc.ResourceName != "notes" {
		t.Errorf("document %+v", doc)
	}

	// Reached by another host name: the one resource with that path.
	rec, _, err = getMetadata(t, http.MethodGet, "https://127.0.0.1:8443/.well-known/oauth-protected-resource/api/notes")
	if err != nil || rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"resource":"`+notes+`"`) {
		t.Errorf("by another host: %v %d %s", err, rec.Code, rec.Body)
	}
	rec, _, err = getMetadata(t, http.MethodHead, "https://gw.example/.well-known/oauth-protected-resource/api/notes")
	if err != nil || rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %v %d %q", err, rec.Code, rec.Body)
	}
	for _, tt := range []struct {
		method, target string
		status         int
	}{
		{http.MethodGet, "https://gw.example/.well-known/oauth-protected-resource/api/users", http.StatusNotFound},
		{http.MethodGet, "https://gw.example/.well-known/oauth-protected-resource", http.StatusNotFound},
		{http.MethodPost, "https://gw.example/.well-known/oauth-protected-resource/api/notes", http.StatusMethodNotAllowed},
	} {
		_, _, err := getMetadata(t, tt.method, tt.target)
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) || he.StatusCode != tt.status {
			t.Errorf("%s %s: %v, want status %d", tt.method, tt.target, err, tt.status)
		}
	}
	for _, other := range []string{"https://gw.example/api/notes", "https://gw.example/.well-known/oauth-protected-resourcex"} {
		if _, nexts, err := getMetadata(t, http.MethodGet, other); err != nil || nexts != 1 {
			t.Errorf("%s: %v, next ran %d times, want once", other, err, nexts)
		}
	}

	_ = write.Cleanup()
	rec, _, _ = getMetadata(t, http.MethodGet, "https://gw.example/.well-known/oauth-protected-resource/api/notes")
	if strings.Contains(rec.Body.String(), "notes:write") {
		t.Errorf("a cleaned-up route's scopes are still published: %s", rec.Body)
	}
}
