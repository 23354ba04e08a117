package caddyscope

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddyapigw/gateway/internal/dpop/dpoptest"
	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// TestRememberedBoundTokenStaysBound: a DPoP-bound token the local app
// remembered at issuance (oauthjwt.Verifier.Remember, no signature check
// on first use) keeps its cnf: used as a bearer token it is refused (RFC
// 9449 §7.2), used with its proof it is accepted. The token's signature is
// another key's, so only the remembered claims can explain the acceptance.
func TestRememberedBoundTokenStaysBound(t *testing.T) {
	f := newFixture(t)
	key := mustDPoPKey(t)
	stranger := newFixture(t) // a keyring the verifier does not trust
	c := claims("notes:read", map[string]any{"cnf": map[string]any{"jkt": key.JKT}})
	tok := stranger.token(t, c)
	if _, err := f.auth.verifier.Verify(tok); err == nil {
		t.Fatal("a token of an unknown key verified")
	}
	now := time.Now()
	f.auth.verifier.Remember(tok, &oauthjwt.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testIssuer, Subject: "svc-subject", Audience: jwt.ClaimStrings{testAudience},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now), ID: "jti-remembered",
		},
		ClientID: testClientID,
		Scope:    oauthjwt.ScopeClaim{"notes:read"},
		Cnf:      &oauthjwt.Confirmation{JKT: key.JKT},
	})
	h := newHandler(t, f, &Scope{})
	checkRefused(t, dpopGet(t, h, "Bearer "+tok), 401, "invalid_token")
	mustAccept(t, dpopGet(t, h, "DPoP "+tok, key.Proof("GET", resURL, dpoptest.Options{AccessToken: tok})))
}
