package caddyoauth

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

const (
	hsID  = "node-api"
	hsKey = "node-api-shared-hs256-key-0123456789abcdef"
)

func hs256App(t *testing.T, alg ...string) *Server {
	t.Helper()
	cfg := baseConfig()
	if len(alg) > 0 {
		cfg.SigningKey = &SigningKeyConfig{Algorithm: alg[0]}
	}
	cfg.Clients = append(cfg.Clients, &Client{ClientSettings: ClientSettings{ID: hsID, Scopes: []string{"user:read"}}, Secret: webSecret, AccessTokenKey: hsKey})
	return newServer(t, newApp(t, cfg), "")
}

// TestHS256ClientTokens: a client configured with access_token_key gets
// HS256 tokens under kid hs256:<id> that its API can verify with the key,
// and the gateway accepts them; the key never appears in the JWKS; other
// clients keep getting ES256 tokens.
func TestHS256ClientTokens(t *testing.T) {
	s := hs256App(t)
	tok := decodeTokenResponse(t, basicToken(t, s, hsID, webSecret, ccForm())).AccessToken
	header, claims := jwtSegments(t, tok)
	if header["alg"] != "HS256" || header["kid"] != "hs256:"+hsID || header["typ"] != "at+jwt" {
		t.Fatalf("header %v", header)
	}
	// The client's API verifies with the shared key alone.
	if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte(hsKey), nil }, jwt.WithValidMethods([]string{"HS256"})); err != nil {
		t.Fatalf("verifying with the shared key: %v", err)
	}
	if got, err := s.app.Verifier().Verify(tok); err != nil || got.ClientID != hsID || claims["sub"] != hsID {
		t.Fatalf("the gateway's verifier: %v", err)
	}
	jwks, _ := json.Marshal(s.app.Keyring().JWKS())
	if strings.Contains(string(jwks), "hs256") || strings.Contains(string(jwks), `"oct"`) {
		t.Errorf("JWKS publishes the shared key: %s", jwks)
	}
	other := decodeTokenResponse(t, basicToken(t, s, svcID, svcSecret, ccForm())).AccessToken
	if h, _ := jwtSegments(t, other); h["alg"] != "ES256" {
		t.Errorf("other client's token alg %v", h["alg"])
	}
}

// TestHS256Confusion: HS256 is accepted only for a kid that resolves to an
// HS256 key, and only as that key's client's own token (RFC 8725 §3.1-3.2):
// HS256 keyed with a public key (PEM or JWK bytes) under a public kid is
// refused; an ES256 token under an hs256 kid is refused; a token the client
// signs for another client, for a person, or for a year is refused.
func TestHS256Confusion(t *testing.T) {
	for _, alg := range []string{oauthjwt.ES256, oauthjwt.RS256} {
		t.Run(alg, func(t *testing.T) { testHS256Confusion(t, hs256App(t, alg)) })
	}
}

func testHS256Confusion(t *testing.T, s *Server) {
	v := s.app.Verifier()
	now := time.Now()
	base := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": testIssuer, "sub": hsID, "aud": testIssuer, "exp": now.Add(time.Hour).Unix(),
			"iat": now.Unix(), "jti": "j", "client_id": hsID, "scope": "user:read"}
		if mod != nil {
			mod(c)
		}
		return c
	}
	hs := func(kid string, key []byte, c jwt.MapClaims) string {
		tk := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
		tk.Header["kid"], tk.Header["typ"] = kid, "at+jwt"
		out, _ := tk.SignedString(key)
		return out
	}
	active := s.app.Keyring().Active()
	der, _ := x509.MarshalPKIXPublicKey(active.Public)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	jwkBytes, _ := json.Marshal(active.PublicJWK())
	if _, err := v.Verify(hs("hs256:"+hsID, []byte(hsKey), base(nil))); err != nil {
		t.Fatalf("control: a proper HS256 token is refused: %v", err)
	}
	for _, tc := range []struct{ name, token string }{
		{"HS256 keyed with the public key PEM under the public kid", hs(active.ID, pubPEM, base(nil))},
		{"HS256 keyed with the public JWK under the public kid", hs(active.ID, jwkBytes, base(nil))},
		{"HS256 under an unknown client's hs256 kid", hs("hs256:"+svcID, []byte(hsKey), base(nil))},
		{"HS256 with the wrong key", hs("hs256:"+hsID, []byte(strings.Repeat("x", 40)), base(nil))},
		{"the client signs for another client", hs("hs256:"+hsID, []byte(hsKey), base(func(c jwt.MapClaims) { c["client_id"] = svcID }))},
		{"the client signs for a person", hs("hs256:"+hsID, []byte(hsKey), base(func(c jwt.MapClaims) { c["sub"] = "alice" }))},
		{"the client signs for a year", hs("hs256:"+hsID, []byte(hsKey), base(func(c jwt.MapClaims) { c["exp"] = now.Add(365 * 24 * time.Hour).Unix() }))},
		{"ES256 under the hs256 kid", func() string {
			k, _ := oauthjwt.GenerateKey(oauthjwt.ES256)
			tk := jwt.NewWithClaims(jwt.SigningMethodES256, base(nil))
			tk.Header["kid"], tk.Header["typ"] = "hs256:"+hsID, "at+jwt"
			out, _ := tk.SignedString(k.Signer)
			return out
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := v.Verify(tc.token); err == nil {
				t.Error("accepted")
			}
		})
	}
	// Without any HS256 client, the verifier does not take HS256 at all.
	plain := newApp(t, nil)
	if _, err := plain.Verifier().Verify(hs("hs256:"+hsID, []byte(hsKey), base(nil))); err == nil {
		t.Error("HS256 accepted by an app with no HS256 client")
	}
}

// TestHS256ClientConfig: the key must be 32+ bytes and the client limited
// to client_credentials.
func TestHS256ClientConfig(t *testing.T) {
	for _, c := range []*Client{
		{ClientSettings: ClientSettings{ID: hsID, Scopes: []string{"s"}}, Secret: webSecret, AccessTokenKey: "short"},
		{ClientSettings: ClientSettings{ID: hsID, RedirectURIs: []string{"https://a.example/cb"}, Scopes: []string{"s"}}, Secret: webSecret, AccessTokenKey: hsKey},
	} {
		cfg := baseConfig()
		cfg.Clients = append(cfg.Clients, c)
		err := cfg.provision(t.Context(), newStorage(t), zap.NewNop())
		if err == nil || !strings.Contains(err.Error(), "access_token_key") {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
