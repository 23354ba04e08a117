package caddyscope

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/caddyapigw/gateway/internal/dpop/dpoptest"
	"github.com/caddyapigw/gateway/internal/oauthjwt"
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

// BenchmarkScopeServeHTTPDPoP is BenchmarkScopeServeHTTP with a DPoP-bound
// token (RFC 9449 §7): each request carries a fresh proof, whose
// signature, htm, htu and ath are checked and whose jti is recorded
// (process memory here: the fixture has no store). Proofs are made before
// the timer starts.
func BenchmarkScopeServeHTTPDPoP(b *testing.B) {
	f := newFixture(b)
	h := newHandler(b, f, &Scope{
		Rules:          []Rule{{Methods: []string{"GET"}, Scopes: []string{"user:read"}}},
		ForwardHeaders: map[string]string{"X-Client-Id": "{oauth.client_id}", "X-User-Id": "{oauth.sub}"},
	})
	k := mustDPoPKey(b)
	tok := f.token(b, claims("user:read", map[string]any{"cnf": map[string]any{"jkt": k.JKT}}))
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = k.Proof("GET", "http://example.com/api/users", dpoptest.Options{AccessToken: tok})
	}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return nil })
	base := httptest.NewRequest(http.MethodGet, "/api/users", nil)
	authz := "DPoP " + tok
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := base.WithContext(context.WithValue(base.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		r.Header = http.Header{"Authorization": {authz}, "Dpop": {proofs[i]}, "Accept": {"*/*"}}
		if err := h.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
		if r.Header.Get("X-Client-Id") != testClientID {
			b.Fatalf("refused: %d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkScopeServeHTTPNewToken is BenchmarkScopeServeHTTP where every
// request carries a token never seen before, as when each call of a
// client gets a fresh token from the gateway's own token endpoint.
// "verified": the signature is checked on first use (ES256). "remembered":
// the issuer put the claims in the verifier's cache as it signed the token
// (oauthjwt.Verifier.Remember, whose cost is counted here). Tokens are
// signed before the timer starts.
func BenchmarkScopeServeHTTPNewToken(b *testing.B) {
	for _, remember := range []bool{false, true} {
		name := "path=verified"
		if remember {
			name = "path=remembered"
		}
		b.Run(name, func(b *testing.B) {
			f := newFixture(b)
			h := newHandler(b, f, &Scope{
				Rules:          []Rule{{Methods: []string{"GET"}, Scopes: []string{"user:read"}}},
				ForwardHeaders: map[string]string{"X-Client-Id": "{oauth.client_id}", "X-User-Id": "{oauth.sub}"},
			})
			now := time.Now()
			tokens := make([]string, b.N)
			for i := range tokens {
				tokens[i] = f.token(b, claims("user:read", map[string]any{"jti": "jti-" + strconv.Itoa(i)}))
			}
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return nil })
			base := httptest.NewRequest(http.MethodGet, "/api/users", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if remember {
					f.auth.verifier.Remember(tokens[i], &oauthjwt.Claims{
						RegisteredClaims: jwt.RegisteredClaims{
							Issuer: testIssuer, Subject: "svc-subject", Audience: jwt.ClaimStrings{testAudience},
							ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now), ID: "jti-" + strconv.Itoa(i),
						},
						ClientID: testClientID,
						Scope:    oauthjwt.ScopeClaim{"user:read"},
					})
				}
				r := base.WithContext(context.WithValue(base.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
				r.Header = http.Header{"Authorization": {"Bearer " + tokens[i]}, "Accept": {"*/*"}}
				if err := h.ServeHTTP(w, r, next); err != nil {
					b.Fatal(err)
				}
				if r.Header.Get("X-Client-Id") != testClientID {
					b.Fatalf("refused: %d %s", w.Code, w.Body)
				}
			}
		})
	}
}
