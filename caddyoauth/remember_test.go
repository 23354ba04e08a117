package caddyoauth

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/dpop/dpoptest"
	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// TestIssuedTokenRemembered: a token the app issues is in its verifier's
// cache at once (its first use checks no signature), and the remembered
// claims are exactly those a full verification reads from the token,
// cnf.jkt of a DPoP-bound token (RFC 9449 §6.1) included.
func TestIssuedTokenRemembered(t *testing.T) {
	app := newApp(t, nil)
	s := newServer(t, app, "")
	k := dpopKey(t)
	form := ccForm("client_id", svcID, "client_secret", svcSecret, "scope", "user:read")
	bearer := decodeTokenResponse(t, postToken(t, s, form)).AccessToken
	bound := tokenJSON(t, dpopRequest(t, s, form, k.Proof("POST", tokenURLOf, dpoptest.Options{})))["access_token"].(string)

	fresh := oauthjwt.NewVerifier(oauthjwt.VerifierConfig{Issuer: app.Issuer, Keys: keySet{app}, RequireAccessTokenType: true})
	for name, tok := range map[string]string{"bearer": bearer, "DPoP-bound": bound} {
		got, hit, err := app.Verifier().VerifyCached(tok)
		if err != nil || !hit {
			t.Fatalf("%s: first use: hit %v, err %v; want a cache hit", name, hit, err)
		}
		want, err := fresh.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if got.Issuer != want.Issuer || got.Subject != want.Subject || !slices.Equal(got.Audience, want.Audience) ||
			!got.ExpiresAt.Equal(want.ExpiresAt.Time) || !got.IssuedAt.Equal(want.IssuedAt.Time) || got.ID != want.ID ||
			got.ClientID != want.ClientID || got.ScopeText() != want.ScopeText() || !slices.Equal(got.Scopes(), want.Scopes()) ||
			got.BoundKey() != want.BoundKey() {
			t.Errorf("%s: remembered %+v, verified %+v", name, got, want)
		}
		for _, claim := range []string{"iss", "aud", "cnf", "scope", "auth_time"} {
			g, gok := got.Claim(claim)
			w, wok := want.Claim(claim)
			if g != w || gok != wok {
				t.Errorf("%s: Claim(%q) = %q %v, verified %q %v", name, claim, g, gok, w, wok)
			}
		}
	}
	if got, _, _ := app.Verifier().VerifyCached(bound); got.BoundKey() != k.JKT {
		t.Errorf("remembered cnf.jkt = %q, want %q", got.BoundKey(), k.JKT)
	}
}

// TestTokenCacheSize: token_cache_size bounds the verifier's cache, -1
// turns it off (a token is then verified on every use, even one the app
// just issued), and nonsense is refused.
func TestTokenCacheSize(t *testing.T) {
	parse := func(body string) (*App, error) {
		d := caddyfile.NewTestDispenser("oauth {\n issuer https://a.example\n " + body + "\n}")
		a := new(App)
		return a, a.UnmarshalCaddyfile(d)
	}
	if a, err := parse("token_cache_size 4096"); err != nil || a.TokenCacheSize != 4096 {
		t.Fatalf("parsed %d, %v", a.TokenCacheSize, err)
	}
	for _, body := range []string{"token_cache_size 0", "token_cache_size -2", "token_cache_size lots", "token_cache_size"} {
		if _, err := parse(body); err == nil {
			t.Errorf("%q accepted", body)
		}
	}
	bad := baseConfig()
	bad.TokenCacheSize = -5
	if err := bad.provision(t.Context(), newStorage(t), zap.NewNop()); err == nil || !strings.Contains(err.Error(), "token_cache_size") {
		t.Errorf("token_cache_size -5: %v", err)
	}

	small := baseConfig()
	small.TokenCacheSize = 32
	app := newApp(t, small)
	if got := app.Verifier().CacheCap(); got != 32 {
		t.Errorf("cache holds up to %d tokens, want 32", got)
	}
	off := baseConfig()
	off.TokenCacheSize = -1
	app = newApp(t, off)
	tok := issue(t, app)
	for range 2 {
		if _, hit, err := app.Verifier().VerifyCached(tok); hit || err != nil {
			t.Errorf("cache off: hit %v, err %v; want a full verification", hit, err)
		}
	}
}

// TestRememberLeavesGrantAlone: remembering an issued token's claims does
// not write to the slices it was given (a client's configured scopes and
// resources are shared by every request), so concurrent token requests
// stay race-free (TestTokenConcurrent runs them under -race).
func TestRememberLeavesGrantAlone(t *testing.T) {
	app := newApp(t, nil)
	scopes := []string{"user:read", "user:write"}
	aud := []string{"https://api.example"}
	orig := []string{scopes[0], scopes[1], aud[0]}
	c := &accessTokenClaims{Issuer: app.Issuer, Subject: "s", Audience: aud, Expiry: app.clock().Add(time.Hour).Unix(), ID: "j", ClientID: "c", Scope: "user:read user:write"}
	tok := issue(t, app) // any token text: only the claims are under test
	app.Verifier().Remember(tok, rememberedClaims(c, scopes))
	for i, s := range []string{scopes[0], scopes[1], aud[0]} {
		if unsafe.StringData(s) != unsafe.StringData(orig[i]) {
			t.Errorf("Remember rewrote the caller's slice element %d", i)
		}
	}
}
