package caddyscope

import (
	"testing"
	"time"
)

// BenchmarkScopeIssuers compares an accepted request per kind of issuer,
// in one run: the local oauth app as before issuers existed, the local app
// on a route that also lists another issuer, another issuer's JWT with its
// keys and the token already verified (warm JWKS and token caches), and an
// opaque token with its introspection answer cached. Each request also
// scope-checks, sets placeholders and forwards two identity headers, as
// BenchmarkScopeServeHTTP does.
func BenchmarkScopeIssuers(b *testing.B) {
	f := newFixture(b)
	as := newTestAS(b, "", "oauth")
	rules := []Rule{{Methods: []string{"GET"}, Scopes: []string{"user:read"}}}
	fwd := map[string]string{"X-Client-Id": "{oauth.client_id}", "X-User-Id": "{oauth.sub}"}
	remote := Issuer{Issuer: as.issuer, Audience: []string{testAudience}}

	b.Run("local", func(b *testing.B) {
		h := newHandler(b, f, &Scope{Rules: rules, ForwardHeaders: fwd})
		benchAccepted(b, h, f.token(b, claims("user:read", nil)), testClientID)
	})
	b.Run("local_among_issuers", func(b *testing.B) {
		h, _ := issuerHandler(b, f, &Scope{Rules: rules, ForwardHeaders: fwd, Issuers: []Issuer{{Issuer: LocalIssuer}, remote}})
		benchAccepted(b, h, f.token(b, claims("user:read", nil)), testClientID)
	})
	b.Run("jwks_warm", func(b *testing.B) {
		h, _ := issuerHandler(b, f, &Scope{Rules: rules, ForwardHeaders: fwd, Issuers: []Issuer{{Issuer: LocalIssuer}, remote}})
		tok := as.token(b, "user:read", nil)
		mustAccept(b, get(b, h, tok))
		benchAccepted(b, h, tok, "partner-app")
	})
	b.Run("introspection_warm", func(b *testing.B) {
		intro := newTestAS(b, "/intro", "none")
		s := introspectingScope(intro, nil)
		s.ForwardHeaders = fwd
		h, _ := issuerHandler(b, f, s)
		intro.answer("opaque-bench", activeAnswer(intro, "user:read", time.Now().Add(time.Hour), nil))
		mustAccept(b, get(b, h, "opaque-bench"))
		benchAccepted(b, h, "opaque-bench", "partner-app")
	})
}
