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
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

const (
	pkjID      = "batch-jobs"
	csjID      = "hmac-client"
	csjSecret  = "hmac-client-secret-0123456789-abcdefghijkl"
	tokenURL   = testIssuer + "/oauth2/token"
	assertType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// assertionFixture is an app with a private_key_jwt client (an ES256 key
// in an inline JWKS) and a client_secret_jwt client.
type assertionFixture struct {
	s   *Server
	key *ecdsa.PrivateKey
	kid string
}

func clientJWKS(t testing.TB, kid string, pub *ecdsa.PublicKey) json.RawMessage {
	k, err := oauthjwt.NewPublicKey(oauthjwt.ES256, pub, kid)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"keys": []any{k.PublicJWK()}})
	return b
}

func newAssertionFixture(t *testing.T) *assertionFixture {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cfg := baseConfig()
	cfg.store = NewMemoryStore()
	cfg.Clients = append(cfg.Clients,
		&Client{ClientSettings: ClientSettings{ID: pkjID, AuthMethod: authPrivateKeyJWT, JWKS: clientJWKS(t, "k1", &key.PublicKey), Scopes: []string{"user:read"}}},
		&Client{ClientSettings: ClientSettings{ID: csjID, AuthMethod: authClientSecretJWT, Scopes: []string{"user:read"}}, Secret: csjSecret},
	)
	return &assertionFixture{s: newServer(t, newApp(t, cfg), ""), key: key, kid: "k1"}
}

// assertion signs claims for the private_key_jwt client, changed by mod.
func (f *assertionFixture) assertion(mod func(jwt.MapClaims, *jwt.Token)) string {
	now := time.Now()
	c := jwt.MapClaims{"iss": pkjID, "sub": pkjID, "aud": tokenURL, "exp": now.Add(time.Minute).Unix(),
		"iat": now.Unix(), "jti": fmt.Sprintf("j-%d", now.UnixNano())}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = f.kid
	if mod != nil {
		mod(c, tok)
	}
	s, err := tok.SignedString(f.key)
	if err != nil {
		panic(err)
	}
	return s
}

func (f *assertionFixture) post(t *testing.T, assertion string, kv ...string) *httptest.ResponseRecorder {
	t.Helper()
	form := ccForm("client_assertion_type", assertType, "client_assertion", assertion)
	for i := 0; i+1 < len(kv); i += 2 {
		form.Set(kv[i], kv[i+1])
	}
	return postToken(t, f.s, form)
}

// TestPrivateKeyJWT: RFC 7523 §2.2 and §3: a signed assertion authenticates
// the client; each rule that makes one invalid is invalid_client.
func TestPrivateKeyJWT(t *testing.T) {
	f := newAssertionFixture(t)
	if rec := f.post(t, f.assertion(nil)); rec.Code != http.StatusOK {
		t.Fatalf("valid assertion: %d %s", rec.Code, rec.Body)
	}
	// aud may be the issuer too.
	if rec := f.post(t, f.assertion(func(c jwt.MapClaims, _ *jwt.Token) { c["aud"] = []string{"x", testIssuer} })); rec.Code != http.StatusOK {
		t.Fatalf("aud = issuer: %d %s", rec.Code, rec.Body)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pubDER, _ := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	for _, tc := range []struct {
		name      string
		assertion string
		extra     []string
	}{
		{"wrong aud (RFC 7523 §3 item 3)", f.assertion(func(c jwt.MapClaims, _ *jwt.Token) { c["aud"] = "https://other.example/token" }), nil},
		{"no exp (§3 item 4)", f.assertion(func(c jwt.MapClaims, _ *jwt.Token) { delete(c, "exp") }), nil},
		{"expired", f.assertion(func(c jwt.MapClaims, _ *jwt.Token) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), nil},
		{"exp too far (one request, not an hour)", f.assertion(func(c jwt.MapClaims, _ *jwt.Token) { c["exp"] = time.Now().Add(time.Hour).Unix() }), nil},
		{"no jti (§3 item 7)", f.assertion(func(c jwt.MapClaims, _ *jwt.Token) { delete(c, "jti") }), nil},
		{"iss is not the client (§3 item 1)", f.assertion(func(c jwt.MapClaims, _ *jwt.Token) { c["iss"] = "someone" }), nil},
		{"sub names another client", f.assertion(func(c jwt.MapClaims, _ *jwt.Token) { c["sub"], c["iss"] = csjID, csjID }), nil},
		{"client_id differs from sub (§3 item 2)", f.assertion(nil), []string{"client_id", svcID}},
		{"unknown kid", f.assertion(func(_ jwt.MapClaims, tok *jwt.Token) { tok.Header["kid"] = "k2" }), nil},
		{"jku header (RFC 8725 §3.10)", f.assertion(func(_ jwt.MapClaims, tok *jwt.Token) { tok.Header["jku"] = "https://evil.example/jwks" }), nil},
		{"signed by another key", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": pkjID, "sub": pkjID, "aud": tokenURL, "exp": time.Now().Add(time.Minute).Unix(), "jti": "x1"})
			tok.Header["kid"] = "k1"
			s, _ := tok.SignedString(other)
			return s
		}(), nil},
		{"RS256 against the ES256 key (alg pinned)", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": pkjID, "sub": pkjID, "aud": tokenURL, "exp": time.Now().Add(time.Minute).Unix(), "jti": "x2"})
			tok.Header["kid"] = "k1"
			s, _ := tok.SignedString(rsaKey)
			return s
		}(), nil},
		{"HS256 keyed with the public key (algorithm confusion)", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": pkjID, "sub": pkjID, "aud": tokenURL, "exp": time.Now().Add(time.Minute).Unix(), "jti": "x3"})
			tok.Header["kid"] = "k1"
			s, _ := tok.SignedString(pubPEM)
			return s
		}(), nil},
		{"alg none", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": pkjID, "sub": pkjID, "aud": tokenURL, "exp": time.Now().Add(time.Minute).Unix(), "jti": "x4"})
			s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}(), nil},
		{"garbage", "not.a.jwt", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// RFC 6749 §5.2: 400, no Basic challenge for an assertion.
			assertOAuthError(t, f.post(t, tc.assertion, tc.extra...), http.StatusBadRequest, errInvalidClient)
		})
	}
}

// TestAssertionReplay: the same jti twice is refused (RFC 7523 §3 item 7),
// also on another instance sharing the store.
func TestAssertionReplay(t *testing.T) {
	f := newAssertionFixture(t)
	a := f.assertion(nil)
	if rec := f.post(t, a); rec.Code != http.StatusOK {
		t.Fatalf("first use: %d %s", rec.Code, rec.Body)
	}
	assertOAuthError(t, f.post(t, a), http.StatusBadRequest, errInvalidClient)
	// A second instance on the same store.
	cfg := baseConfig()
	cfg.store = f.s.app.store
	cfg.Clients = append(cfg.Clients, &Client{ClientSettings: ClientSettings{ID: pkjID, AuthMethod: authPrivateKeyJWT, JWKS: clientJWKS(t, "k1", &f.key.PublicKey), Scopes: []string{"user:read"}}})
	other := &assertionFixture{s: newServer(t, newApp(t, cfg), ""), key: f.key, kid: "k1"}
	assertOAuthError(t, other.post(t, a), http.StatusBadRequest, errInvalidClient)
}

// TestAuthMethodPinned: a client authenticates only with its registered
// method (RFC 7591 §2): no secret for a private_key_jwt client, no Basic
// for a client_secret_jwt one; mixing an assertion with Basic is
// invalid_request (RFC 6749 §2.3).
func TestAuthMethodPinned(t *testing.T) {
	f := newAssertionFixture(t)
	assertOAuthError(t, basicToken(t, f.s, csjID, csjSecret, ccForm()), http.StatusUnauthorized, errInvalidClient)
	rec := basicToken(t, f.s, svcID, svcSecret, ccForm("client_assertion_type", assertType, "client_assertion", f.assertion(nil)))
	assertOAuthError(t, rec, http.StatusBadRequest, errInvalidRequest)
	assertOAuthError(t, f.post(t, f.assertion(nil), "client_assertion_type", "urn:example:other"), http.StatusBadRequest, errInvalidClient)
	// A client_secret client cannot switch to an assertion.
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": svcID, "sub": svcID, "aud": tokenURL, "exp": time.Now().Add(time.Minute).Unix(), "jti": "y"})
	s, _ := hs.SignedString([]byte(svcSecret))
	assertOAuthError(t, f.post(t, s), http.StatusBadRequest, errInvalidClient)
}

// TestClientSecretJWTWithOAuth2Library: x/oauth2's clientcredentials sends
// an HS256 assertion as endpoint parameters and gets a token.
func TestClientSecretJWTWithOAuth2Library(t *testing.T) {
	f := newAssertionFixture(t)
	srv := tokenEndpointServer(t, f.s)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": csjID, "sub": csjID, "aud": tokenURL, "exp": time.Now().Add(time.Minute).Unix(), "jti": "z1"})
	assertion, _ := hs.SignedString([]byte(csjSecret))
	cfg := clientcredentials.Config{
		TokenURL: srv.URL,
		EndpointParams: url.Values{
			"client_assertion_type": {assertType},
			"client_assertion":      {assertion},
		},
		AuthStyle: 1, // oauth2.AuthStyleInParams: no Basic header
	}
	tok, err := cfg.Token(t.Context())
	if err != nil {
		t.Fatalf("x/oauth2 with client_secret_jwt: %v", err)
	}
	if _, claims := jwtSegments(t, tok.AccessToken); claims["client_id"] != csjID {
		t.Errorf("token client_id %v", claims["client_id"])
	}
	if _, err := cfg.Token(t.Context()); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("the same assertion again: %v, want invalid_client", err)
	}
}

// TestPrivateKeyJWTFromJWKSURI: keys come from the client's jwks_uri, and
// a key the client adds later is found by refetching on its unknown kid.
func TestPrivateKeyJWTFromJWKSURI(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var body json.RawMessage = clientJWKS(t, "k1", &k1.PublicKey)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	cfg := baseConfig()
	cfg.store = NewMemoryStore()
	cfg.Clients = append(cfg.Clients, &Client{ClientSettings: ClientSettings{ID: pkjID, AuthMethod: authPrivateKeyJWT, JWKSURI: srv.URL + "/jwks", Scopes: []string{"user:read"}}})
	f := &assertionFixture{s: newServer(t, newApp(t, cfg), ""), key: k1, kid: "k1"}
	if rec := f.post(t, f.assertion(nil)); rec.Code != http.StatusOK {
		t.Fatalf("key from jwks_uri: %d %s", rec.Code, rec.Body)
	}
	// The client rotates to k2 and publishes both.
	k1JWK := clientJWKS(t, "k1", &k1.PublicKey)
	k2JWK := clientJWKS(t, "k2", &k2.PublicKey)
	var a, b struct{ Keys []json.RawMessage }
	_ = json.Unmarshal(k1JWK, &a)
	_ = json.Unmarshal(k2JWK, &b)
	body, _ = json.Marshal(map[string]any{"keys": append(a.Keys, b.Keys...)})
	f2 := &assertionFixture{s: f.s, key: k2, kid: "k2"}
	if rec := f2.post(t, f2.assertion(nil)); rec.Code != http.StatusOK {
		t.Fatalf("new kid after refetch: %d %s", rec.Code, rec.Body)
	}
}
