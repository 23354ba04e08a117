package caddyscope

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// BenchmarkScopeServeHTTP measures oauth_scope on an accepted request: a
// token already in the verifier's cache, a scope check, placeholders and
// two forwarded identity headers, as in Caddyfile.example.
func BenchmarkScopeServeHTTP(b *testing.B) {
	f := newFixture(b)
	h := newHandler(b, f, &Scope{
		Rules:          []Rule{{Methods: []string{"GET"}, Scopes: []string{"user:read"}}},
		ForwardHeaders: map[string]string{"X-Client-Id": "{oauth.client_id}", "X-User-Id": "{oauth.sub}"},
	})
	benchAccepted(b, h, f.token(b, claims("user:read", nil)), testClientID)
}

// benchAccepted serves GET requests carrying token through h, each with a
// fresh header and replacer as Caddy's server makes, and checks each is
// passed on with X-Client-Id set to clientID.
func benchAccepted(b *testing.B, h *Scope, token, clientID string) {
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return nil })
	base := httptest.NewRequest(http.MethodGet, "/api/users", nil)
	authz := "Bearer " + token
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		r := base.WithContext(context.WithValue(base.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		r.Header = http.Header{"Authorization": {authz}, "X-Client-Id": {"spoofed"}, "Accept": {"*/*"}}
		if err := h.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
		if r.Header.Get("X-Client-Id") != clientID {
			b.Fatalf("X-Client-Id = %q", r.Header.Get("X-Client-Id"))
		}
	}
}

// BenchmarkScopeRefuseNoToken measures the cheapest refusal: no token.
func BenchmarkScopeRefuseNoToken(b *testing.B) {
	f := newFixture(b)
	h := newHandler(b, f, &Scope{Rules: []Rule{{Methods: []string{"GET"}, Scopes: []string{"user:read"}}}})
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		b.Fatal("refused request passed on")
		return nil
	})
	base := httptest.NewRequest(http.MethodGet, "/api/users", nil)
	b.ReportAllocs()
	for b.Loop() {
		r := base.WithContext(context.WithValue(base.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		r.Header = http.Header{"Accept": {"*/*"}}
		w := httptest.NewRecorder()
		_ = h.ServeHTTP(w, r, next)
		if w.Code != http.StatusUnauthorized {
			b.Fatalf("status %d", w.Code)
		}
	}
}
