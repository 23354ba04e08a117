package caddyoauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	oauth2jwt "golang.org/x/oauth2/jwt"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

const (
	bridgeID  = "svc-bridge"  // a service account: it signs its own assertions
	partnerID = "partner-app" // a confidential client trusting an external IdP
	idpIssuer = "https://idp.example"
)

type bearerFixture struct {
	s       *Server
	rsaKey  *rsa.PrivateKey
	idpKey  *ecdsa.PrivateKey
	httpSrv *httptest.Server
}

func newBearerFixture(t *testing.T) *bearerFixture {
	t.Helper()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	idpKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, err := oauthjwt.NewPublicKey(oauthjwt.RS256, &rsaKey.PublicKey, "sa-key-1")
	if err != nil {
		t.Fatal(err)
	}
	rsaJWKS, _ := json.Marshal(map[string]any{"keys": []any{rk.PublicJWK()}})
	cfg := baseConfig()
	cfg.store = NewMemoryStore()
	cfg.Clients = append(cfg.Clients,
		&Client{ClientSettings: ClientSettings{ID: bridgeID, AuthMethod: authPrivateKeyJWT, JWKS: rsaJWKS, GrantTypes: []string{GrantJWTBearer}, AssertionSubjects: []string{"alice", "bob"}, Scopes: []string{"notes:read"}}},
		&Client{ClientSettings: ClientSettings{ID: partnerID, JWKS: clientJWKS(t, "idp-1", &idpKey.PublicKey), GrantTypes: []string{GrantJWTBearer}, AssertionIssuer: idpIssuer, AssertionSubjects: []string{"*"}, Scopes: []string{"user:read"}}, Secret: webSecret},
	)
	f := &bearerFixture{s: newServer(t, newApp(t, cfg), ""), rsaKey: rsaKey, idpKey: idpKey}
	f.httpSrv = tokenEndpointServer(t, f.s)
	return f
}

// serviceAccount is x/oauth2/jwt's configuration for the bridge.
func (f *bearerFixture) serviceAccount(sub string) *oauth2jwt.Config {
	der := x509.MarshalPKCS1PrivateKey(f.rsaKey)
	return &oauth2jwt.Config{
		Email:        bridgeID,
		PrivateKey:   pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}),
		PrivateKeyID: "sa-key-1",
		Subject:      sub,
		TokenURL:     f.httpSrv.URL,
		Audience:     tokenURL, // what this server calls its token endpoint
	}
}

// TestJWTBearerWithOAuth2Library: RFC 7523 §2.1 with golang.org/x/oauth2/jwt
// (a service account asserting which user it acts for, no client
// authentication, RFC 7523 §3.1): the token's sub is the asserted subject
// and its client_id the service account.
func TestJWTBearerWithOAuth2Library(t *testing.T) {
	f := newBearerFixture(t)
	tok, err := f.serviceAccount("alice").TokenSource(t.Context()).Token()
	if err != nil {
		t.Fatalf("x/oauth2/jwt: %v", err)
	}
	_, claims := jwtSegments(t, tok.AccessToken)
	if claims["sub"] != "alice" || claims["client_id"] != bridgeID || claims["scope"] != "notes:read" {
		t.Errorf("claims %v", claims)
	}
	if _, err := f.serviceAccount("mallory").TokenSource(t.Context()).Token(); err == nil {
		t.Error("a subject the client may not present got a token")
	}
}

// TestJWTBearerRules: each RFC 7523 §3 rule that makes an assertion
// invalid is invalid_grant (§3.1); an issuer no client trusts, or a client
// with a secret that does not authenticate, is invalid_client.
func TestJWTBearerRules(t *testing.T) {
	f := newBearerFixture(t)
	idp := func(mod func(jwt.MapClaims)) string {
		c := jwt.MapClaims{"iss": idpIssuer, "sub": "someone", "aud": tokenURL, "exp": time.Now().Add(5 * time.Minute).Unix(), "jti": "idp-" + time.Now().Format(time.RFC3339Nano)}
		if mod != nil {
			mod(c)
		}
		tk := jwt.NewWithClaims(jwt.SigningMethodES256, c)
		tk.Header["kid"] = "idp-1"
		s, _ := tk.SignedString(f.idpKey)
		return s
	}
	grant := func(assertion string) url.Values {
		return url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion}}
	}
	rec := basicToken(t, f.s, partnerID, webSecret, grant(idp(nil)))
	if rec.Code != http.StatusOK {
		t.Fatalf("partner with an IdP assertion: %d %s", rec.Code, rec.Body)
	}
	if _, claims := jwtSegments(t, decodeTokenResponse(t, rec).AccessToken); claims["sub"] != "someone" || claims["client_id"] != partnerID {
		t.Errorf("claims %v", claims)
	}
	replayed := idp(nil)
	basicToken(t, f.s, partnerID, webSecret, grant(replayed))
	for _, tc := range []struct {
		name      string
		assertion string
	}{
		{"jti replayed (§3 item 7)", replayed},
		{"wrong aud (§3 item 3)", idp(func(c jwt.MapClaims) { c["aud"] = "https://other.example" })},
		{"no exp (§3 item 4)", idp(func(c jwt.MapClaims) { delete(c, "exp") })},
		{"exp a day ahead", idp(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(24 * time.Hour).Unix() })},
		{"no sub (§3 item 2)", idp(func(c jwt.MapClaims) { delete(c, "sub") })},
		{"another issuer (§3 item 1)", idp(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })},
		{"malformed", "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertOAuthError(t, basicToken(t, f.s, partnerID, webSecret, grant(tc.assertion)), http.StatusBadRequest, errInvalidGrant)
		})
	}
	// The partner has a secret: without authenticating, it is not served.
	assertOAuthError(t, postToken(t, f.s, grant(idp(nil))), http.StatusBadRequest, errInvalidClient)
	// A client not allowed the grant.
	assertOAuthError(t, basicToken(t, f.s, svcID, svcSecret, grant(idp(nil))), http.StatusBadRequest, errUnauthorizedClient)
}

// TestJWTBearerClientID: client authentication is optional for the JWT
// bearer grant (RFC 7521 §4.1, RFC 7523 §3.1) and a client that does not
// authenticate names itself with client_id (RFC 6749 §3.2.1), as
// openid-client v6 does. A public client allowed the grant is served; a
// confidential one must authenticate (§3.2.1: invalid_client); an unknown
// client is invalid_client; a public client not allowed the grant is
// unauthorized_client (RFC 6749 §5.2). None of these tried Basic, so none
// is a 401 (§5.2).
func TestJWTBearerClientID(t *testing.T) {
	const (
		mobileID   = "mobile-app" // public, trusts the IdP
		idp2Issuer = "https://idp2.example"
	)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks := clientJWKS(t, "idp-1", &key.PublicKey)
	cfg := flowConfig(t)
	cfg.store = NewMemoryStore()
	cfg.Clients = append(cfg.Clients,
		&Client{ClientSettings: ClientSettings{ID: mobileID, Public: true, JWKS: jwks, GrantTypes: []string{GrantJWTBearer}, AssertionIssuer: idpIssuer, AssertionSubjects: []string{"*"}, Scopes: []string{"user:read"}}},
		&Client{ClientSettings: ClientSettings{ID: partnerID, JWKS: jwks, GrantTypes: []string{GrantJWTBearer}, AssertionIssuer: idp2Issuer, AssertionSubjects: []string{"*"}, Scopes: []string{"user:read"}}, Secret: webSecret},
	)
	s := newServer(t, newApp(t, cfg), "")
	n := 0
	assertion := func(iss string) string {
		n++
		c := jwt.MapClaims{"iss": iss, "sub": "someone", "aud": tokenURL, "exp": time.Now().Add(5 * time.Minute).Unix(), "jti": fmt.Sprintf("cid-%d", n)}
		tk := jwt.NewWithClaims(jwt.SigningMethodES256, c)
		tk.Header["kid"] = "idp-1"
		signed, _ := tk.SignedString(key)
		return signed
	}
	for _, tc := range []struct {
		name     string
		clientID string // "" for none
		iss      string
		status   int
		code     string
	}{
		{"public client with client_id (RFC 7523 §3.1, RFC 6749 §3.2.1)", mobileID, idpIssuer, http.StatusOK, ""},
		{"public client found by the assertion's issuer, no client_id", "", idpIssuer, http.StatusOK, ""},
		{"confidential client without authentication (§3.2.1)", partnerID, idp2Issuer, http.StatusBadRequest, errInvalidClient},
		{"unknown client_id", "nobody", idpIssuer, http.StatusBadRequest, errInvalidClient},
		{"public client not allowed the grant (§5.2)", spaID, idpIssuer, http.StatusBadRequest, errUnauthorizedClient},
		{"public client, assertion from an issuer it does not trust (RFC 7523 §3.1)", mobileID, idp2Issuer, http.StatusBadRequest, errInvalidGrant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion(tc.iss)}}
			if tc.clientID != "" {
				form.Set("client_id", tc.clientID)
			}
			rec := postToken(t, s, form)
			if tc.status == http.StatusOK {
				_, claims := jwtSegments(t, decodeTokenResponse(t, rec).AccessToken)
				if claims["client_id"] != mobileID || claims["sub"] != "someone" {
					t.Errorf("claims %v", claims)
				}
				return
			}
			assertOAuthError(t, rec, tc.status, tc.code)
			if len(rec.Header().Values("WWW-Authenticate")) != 0 {
				t.Errorf("challenge %q without Basic (RFC 6749 §5.2)", rec.Header().Values("WWW-Authenticate"))
			}
		})
	}
}
