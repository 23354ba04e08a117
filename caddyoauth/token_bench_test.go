package caddyoauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/dpop/dpoptest"
)

// BenchmarkTokenEndpoint measures a whole client-credentials token request
// through the handler: form parsing, client_secret_basic with a SHA-256
// secret hash, scope check, ES256 signing, JSON response.
func BenchmarkTokenEndpoint(b *testing.B) {
	app := baseConfig()
	if err := app.provision(context.Background(), newStorage(b), zap.NewNop()); err != nil {
		b.Fatal(err)
	}
	s := &Server{}
	if err := s.provision(app, zap.NewNop()); err != nil {
		b.Fatal(err)
	}
	body := ccForm("scope", "user:read").Encode()
	authz := basicAuth(svcID, svcSecret)
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		b.Fatal("token request passed on")
		return nil
	})
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", authz)
		w := httptest.NewRecorder()
		if err := s.ServeHTTP(w, r, next); err != nil || w.Code != http.StatusOK {
			b.Fatalf("status %d, err %v: %s", w.Code, err, w.Body)
		}
	}
}

// BenchmarkSlowHashSecretCached measures client authentication against a
// bcrypt secret hash once its verification is cached: the token endpoint
// is not bound by the slow hash on every call.
func BenchmarkSlowHashSecretCached(b *testing.B) {
	chk, err := parseSecretHash(bcryptHash(b, svcSecret))
	if err != nil {
		b.Fatal(err)
	}
	if !chk.check(svcSecret) {
		b.Fatal("secret refused")
	}
	b.ReportAllocs()
	for b.Loop() {
		if !chk.check(svcSecret) {
			b.Fatal("secret refused")
		}
	}
}

// BenchmarkTokenEndpointDPoP is BenchmarkTokenEndpoint with a DPoP proof
// (RFC 9449) on each request: the proof's signature check, its jti claimed
// in the store (Caddy file storage here, the default), and a bound token.
// Proofs are made before the timer starts.
func BenchmarkTokenEndpointDPoP(b *testing.B) {
	app := baseConfig()
	if err := app.provision(context.Background(), newStorage(b), zap.NewNop()); err != nil {
		b.Fatal(err)
	}
	s := &Server{}
	if err := s.provision(app, zap.NewNop()); err != nil {
		b.Fatal(err)
	}
	body := ccForm("scope", "user:read").Encode()
	authz := basicAuth(svcID, svcSecret)
	k := dpopKey(b)
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = k.Proof("POST", "http://example.com/oauth2/token", dpoptest.Options{})
	}
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		b.Fatal("token request passed on")
		return nil
	})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", authz)
		r.Header.Set("DPoP", proofs[i])
		w := httptest.NewRecorder()
		if err := s.ServeHTTP(w, r, next); err != nil || w.Code != http.StatusOK {
			b.Fatalf("status %d, err %v: %s", w.Code, err, w.Body)
		}
	}
}

// BenchmarkTokenMetrics measures what the metrics add to one token request
// (BenchmarkTokenEndpoint): the latency observation, the issued count of
// an authenticated client, the security event count. Its ratio to
// BenchmarkTokenEndpoint is the cost of metrics on the token endpoint.
func BenchmarkTokenMetrics(b *testing.B) {
	c := &Client{ClientSettings: ClientSettings{ID: svcID}}
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		observeToken(start, GrantClientCredentials, c, nil)
		securityEvents.Inc(eventTokenIssued)
	}
}
