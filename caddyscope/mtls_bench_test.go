package caddyscope

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddyapigw/gateway/internal/mtls"
)

// BenchmarkScopeCertBound and BenchmarkScopeBearerOverTLS measure an
// accepted request on a connection with a client certificate, with a
// certificate-bound token (RFC 8705 §3: one SHA-256 of the certificate per
// request) and with an unbound one: their difference is the cost of the
// binding check.
func BenchmarkScopeCertBound(b *testing.B) {
	f := newFixture(b)
	good, _ := testCerts(b)
	tok := f.token(b, claims("user:read", map[string]any{"cnf": map[string]any{"x5t#S256": mtls.Thumbprint(good.Cert)}}))
	benchOverTLS(b, f, tok, good.State(true))
}

func BenchmarkScopeBearerOverTLS(b *testing.B) {
	f := newFixture(b)
	good, _ := testCerts(b)
	benchOverTLS(b, f, f.token(b, claims("user:read", nil)), good.State(true))
}

func benchOverTLS(b *testing.B, f *fixture, token string, st *tls.ConnectionState) {
	h := newHandler(b, f, &Scope{
		Rules:          []Rule{{Methods: []string{"GET"}, Scopes: []string{"user:read"}}},
		ForwardHeaders: map[string]string{"X-Client-Id": "{oauth.client_id}", "X-User-Id": "{oauth.sub}"},
	})
	passed := 0
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { passed++; return nil })
	base := httptest.NewRequest(http.MethodGet, "/api/users", nil)
	base.TLS = st
	authz := "Bearer " + token
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		r := base.WithContext(context.WithValue(base.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		r.Header = http.Header{"Authorization": {authz}, "Accept": {"*/*"}}
		if err := h.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
	}
	if passed == 0 {
		b.Fatal("no request was passed on")
	}
}
