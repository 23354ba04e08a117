package caddyoauth

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap/zaptest"

	"github.com/caddyapigw/gateway/internal/dpop/dpoptest"
	"github.com/caddyapigw/gateway/internal/mtls"
	"github.com/caddyapigw/gateway/internal/mtls/mtlstest"
)

const (
	mtlsDNID   = "payments-dn"
	mtlsSANID  = "payments-san"
	mtlsSelfID = "payments-self"
	boundID    = "bound-secret"
	boundSec   = "bound-secret-0123456789-abcdefghij"
)

// mtlsFixture is an app with a client of each RFC 8705 kind and the
// certificates to present.
type mtlsFixture struct {
	s                  *Server
	good, other, self  *mtlstest.Client
	goodX5T, otherX5T  string
	selfX5T            string
	selfSignedStranger *mtlstest.Client
}

func newMTLSFixture(t *testing.T, mutate func(*App)) *mtlsFixture {
	t.Helper()
	ca, err := mtlstest.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	f := &mtlsFixture{}
	must := func(c *mtlstest.Client, err error) *mtlstest.Client {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	f.good = must(ca.Issue(mtlstest.Names{Subject: pkix.Name{CommonName: "payments", Organization: []string{"Example, Inc."}}, DNS: []string{"payments.example.com"}}))
	f.other = must(ca.Issue(mtlstest.Names{Subject: pkix.Name{CommonName: "other", Organization: []string{"Example, Inc."}}, DNS: []string{"other.example.com"}}))
	f.self = must(mtlstest.SelfSigned(mtlstest.Names{Subject: pkix.Name{CommonName: "payments-self"}}))
	f.selfSignedStranger = must(mtlstest.SelfSigned(mtlstest.Names{Subject: pkix.Name{CommonName: "payments-self"}}))
	f.goodX5T, f.otherX5T, f.selfX5T = mtls.Thumbprint(f.good.Cert), mtls.Thumbprint(f.other.Cert), mtls.Thumbprint(f.self.Cert)
	cfg := flowConfig(t)
	cfg.Clients = append(cfg.Clients,
		&Client{ClientSettings: ClientSettings{ID: mtlsDNID, AuthMethod: authTLS, TLSClientAuthSubjectDN: `CN=payments,O=Example\, Inc.`, Scopes: []string{"user:read"}}},
		&Client{ClientSettings: ClientSettings{ID: mtlsSANID, AuthMethod: authTLS, TLSClientAuthSANDNS: "payments.example.com", Scopes: []string{"user:read"}}},
		&Client{ClientSettings: ClientSettings{ID: mtlsSelfID, AuthMethod: authSelfSignedTLS, JWKS: clientJWKS(t, "k1", f.self.Key.Public().(*ecdsa.PublicKey)), Scopes: []string{"user:read"}}},
		&Client{ClientSettings: ClientSettings{ID: boundID, TLSClientCertificateBoundAccessTokens: true, Scopes: []string{"user:read"}}, Secret: boundSec},
	)
	if mutate != nil {
		mutate(cfg)
	}
	cfg.store = NewMemoryStore()
	f.s = newServer(t, newApp(t, cfg), "")
	return f
}

// post sends form to path on a connection with state st (nil: no TLS)
// and an optional Authorization header.
func (f *mtlsFixture) post(t *testing.T, path string, form url.Values, st *tls.ConnectionState, authz string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	r.TLS = st
	rec, _ := serve(t, f.s, r)
	return rec
}

// boundX5T is the cnf.x5t#S256 of an access token, "" if it has none.
func boundX5T(t testing.TB, tok string) string {
	t.Helper()
	_, p := jwtSegments(t, tok)
	cnf, _ := p["cnf"].(map[string]any)
	x5t, _ := cnf["x5t#S256"].(string)
	return x5t
}

// TestTLSClientAuth: RFC 8705 §2, client authentication with the TLS
// client certificate, at the token endpoint; a token issued so is bound
// to that certificate (§3).
func TestTLSClientAuth(t *testing.T) {
	f := newMTLSFixture(t, nil)
	tests := []struct {
		name   string
		form   url.Values
		st     *tls.ConnectionState
		authz  string
		status int
		x5t    string // want cnf.x5t#S256; "" with an error
	}{
		{"§2.1.2: subject DN matches, chain validated", ccForm("client_id", mtlsDNID), f.good.State(true), "", 200, f.goodX5T},
		{"§2.1.2: DNS SAN matches, chain validated", ccForm("client_id", mtlsSANID), f.good.State(true), "", 200, f.goodX5T},
		{"§2.2: self-signed certificate whose key is in the client's jwks", ccForm("client_id", mtlsSelfID), f.self.State(false), "", 200, f.selfX5T},
		{"§2.1: chain not validated (client_auth mode request)", ccForm("client_id", mtlsDNID), f.good.State(false), "", 400, ""},
		{"§2.1.2: another subject from the same CA", ccForm("client_id", mtlsDNID), f.other.State(true), "", 400, ""},
		{"§2.1.2: another DNS SAN from the same CA", ccForm("client_id", mtlsSANID), f.other.State(true), "", 400, ""},
		{"§2.2: self-signed certificate with another key", ccForm("client_id", mtlsSelfID), f.selfSignedStranger.State(false), "", 400, ""},
		{"§2: TLS without a client certificate", ccForm("client_id", mtlsDNID), &tls.ConnectionState{HandshakeComplete: true}, "", 400, ""},
		{"§2: no TLS at all", ccForm("client_id", mtlsDNID), nil, "", 400, ""},
		{"§2: a secret instead of the certificate", ccForm("client_id", mtlsDNID, "client_secret", "some-secret-0123456789"), f.good.State(true), "", 400, ""},
		{"§2: Basic instead of the certificate", ccForm(), f.good.State(true), basicAuth(mtlsDNID, "some-secret-0123456789"), 401, ""},
		{"RFC 6749 §2.3: a secret client cannot use a certificate instead", ccForm("client_id", svcID), f.good.State(true), "", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.post(t, "/oauth2/token", tt.form, tt.st, tt.authz)
			if tt.status != 200 {
				assertOAuthError(t, rec, tt.status, errInvalidClient)
				return
			}
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			m := tokenJSON(t, rec)
			if m["token_type"] != "Bearer" {
				t.Errorf("token_type = %v, want Bearer (RFC 8705 §3: a bound token is still a bearer token on the wire)", m["token_type"])
			}
			if got := boundX5T(t, m["access_token"].(string)); got != tt.x5t {
				t.Errorf("cnf.x5t#S256 = %q, want %q (§3.1)", got, tt.x5t)
			}
		})
	}
}

// TestCertBoundTokens: RFC 8705 §3 and §3.4: a client registered with
// tls_client_certificate_bound_access_tokens gets tokens bound to the
// certificate it presents, and none without a certificate; other clients
// presenting one are not bound.
func TestCertBoundTokens(t *testing.T) {
	f := newMTLSFixture(t, nil)
	rec := f.post(t, "/oauth2/token", ccForm(), f.other.State(false), basicAuth(boundID, boundSec))
	if rec.Code != 200 {
		t.Fatalf("bound client with a certificate: %d %s", rec.Code, rec.Body)
	}
	tok := tokenJSON(t, rec)["access_token"].(string)
	if got := boundX5T(t, tok); got != f.otherX5T {
		t.Fatalf("cnf.x5t#S256 = %q, want the presented certificate's %q", got, f.otherX5T)
	}
	rec = f.post(t, "/oauth2/token", ccForm(), nil, basicAuth(boundID, boundSec))
	if body := assertOAuthError(t, rec, 400, errInvalidRequest); !strings.Contains(body["error_description"].(string), "certificate") {
		t.Errorf("description %q does not say a certificate is needed", body["error_description"])
	}
	rec = f.post(t, "/oauth2/token", ccForm(), f.good.State(true), basicAuth(svcID, svcSecret))
	if rec.Code != 200 || boundX5T(t, tokenJSON(t, rec)["access_token"].(string)) != "" {
		t.Fatalf("a client without the setting, with a certificate: %d %s, want an unbound token", rec.Code, rec.Body)
	}

	// RFC 8705 §3.2 (via RFC 7662): introspection answers cnf, and a
	// tls_client_auth client authenticates there with its certificate.
	rec = f.post(t, "/oauth2/introspect", url.Values{"token": {tok}, "client_id": {mtlsDNID}}, f.good.State(true), "")
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	cnf, _ := m["cnf"].(map[string]any)
	if rec.Code != 200 || m["active"] != true || cnf["x5t#S256"] != f.otherX5T || m["token_type"] != "Bearer" {
		t.Fatalf("introspection by a certificate client: %d %s, want active, Bearer, cnf.x5t#S256 %s", rec.Code, rec.Body, f.otherX5T)
	}
	rec = f.post(t, "/oauth2/introspect", url.Values{"token": {tok}, "client_id": {mtlsDNID}}, nil, "")
	assertOAuthError(t, rec, 400, errInvalidClient)
	// RFC 7009 §2.1: revocation authenticates the same way (§2.2: an
	// unknown token is answered 200 once the client is authenticated).
	rec = f.post(t, "/oauth2/revoke", url.Values{"token": {"no-such-token"}, "client_id": {mtlsSANID}}, f.good.State(true), "")
	if rec.Code != 200 {
		t.Fatalf("revocation by a certificate client: %d %s", rec.Code, rec.Body)
	}
	assertOAuthError(t, f.post(t, "/oauth2/revoke", url.Values{"token": {"no-such-token"}, "client_id": {mtlsSANID}}, f.other.State(true), ""), 400, errInvalidClient)
}

// TestCertBoundUserinfo: RFC 8705 §3 at this server's own protected
// resource: a bound token needs its certificate on the connection.
func TestCertBoundUserinfo(t *testing.T) {
	f := newMTLSFixture(t, nil)
	a := f.s.app
	c, _, _, err := a.registry.lookup(t.Context(), boundID)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.issueAccessToken(c, accessGrant{sub: aliceUser, authTime: a.clock().Unix(), scopes: []string{"profile"}, aud: []string{a.Audience}, x5t: f.goodX5T}, a.clock(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		st     *tls.ConnectionState
		status int
	}{
		{"§3: the bound certificate", f.good.State(true), 200},
		{"§3: another certificate", f.other.State(true), 401},
		{"§3: no certificate", nil, 401},
	} {
		r := httptest.NewRequest(http.MethodGet, "/oauth2/userinfo", nil)
		r.Header.Set("Authorization", "Bearer "+resp.AccessToken)
		r.TLS = tt.st
		rec, _ := serve(t, f.s, r)
		if rec.Code != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, rec.Code, rec.Body, tt.status)
		}
		if tt.status == 401 && !strings.Contains(rec.Header().Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("%s: challenge %q lacks invalid_token", tt.name, rec.Header().Get("WWW-Authenticate"))
		}
	}
}

// TestCertBoundPublicRefresh: RFC 8705 §4: a public client with bound
// tokens gets its refresh tokens bound to its certificate too; a refresh
// on a connection with another certificate is refused and does not spend
// the token.
func TestCertBoundPublicRefresh(t *testing.T) {
	f := newMTLSFixture(t, func(a *App) {
		for _, c := range a.Clients {
			if c.ID == spaID {
				c.TLSClientCertificateBoundAccessTokens = true
			}
		}
	})
	b := &browser{t: t, s: f.s, cookies: map[string]string{}}
	verifier, challenge := pkce()
	code := b.code(challenge)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {spaRedirect}, "client_id": {spaID}, "code_verifier": {verifier}}
	rec := f.post(t, "/oauth2/token", form, f.good.State(false), "")
	if rec.Code != 200 {
		t.Fatalf("code exchange with a certificate: %d %s", rec.Code, rec.Body)
	}
	m := tokenJSON(t, rec)
	if boundX5T(t, m["access_token"].(string)) != f.goodX5T {
		t.Fatal("the public client's access token is not bound to its certificate")
	}
	rt := m["refresh_token"].(string)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {spaID}}
	assertOAuthError(t, f.post(t, "/oauth2/token", refresh, f.other.State(false), ""), 400, errInvalidGrant)
	assertOAuthError(t, f.post(t, "/oauth2/token", refresh, nil, ""), 400, errInvalidRequest)
	rec = f.post(t, "/oauth2/token", refresh, f.good.State(false), "")
	if rec.Code != 200 || boundX5T(t, tokenJSON(t, rec)["access_token"].(string)) != f.goodX5T {
		t.Fatalf("refresh with the bound certificate: %d %s", rec.Code, rec.Body)
	}
}

// TestMTLSClientProvision: the registrations RFC 8705 §2.1.2 and §2.2.2
// allow, and what is refused at load.
func TestMTLSClientProvision(t *testing.T) {
	self, err := mtlstest.SelfSigned(mtlstest.Names{})
	if err != nil {
		t.Fatal(err)
	}
	jwks := clientJWKS(t, "k1", self.Key.Public().(*ecdsa.PublicKey))
	tests := []struct {
		name string
		c    Client
		err  string // "" when accepted
	}{
		{"§2.1.2: subject DN", Client{ClientSettings: ClientSettings{AuthMethod: authTLS, TLSClientAuthSubjectDN: "CN=a,O=b"}}, ""},
		{"§2.1.2: URI SAN", Client{ClientSettings: ClientSettings{AuthMethod: authTLS, TLSClientAuthSANURI: "spiffe://example.com/a"}}, ""},
		{"§2.1.2: IP SAN", Client{ClientSettings: ClientSettings{AuthMethod: authTLS, TLSClientAuthSANIP: "2001:db8::1"}}, ""},
		{"§2.1.2: e-mail SAN", Client{ClientSettings: ClientSettings{AuthMethod: authTLS, TLSClientAuthSANEmail: "ops@example.com"}}, ""},
		{"§2.2.2: self-signed with jwks", Client{ClientSettings: ClientSettings{AuthMethod: authSelfSignedTLS, JWKS: jwks}}, ""},
		{"§2.1.2: no subject or SAN", Client{ClientSettings: ClientSettings{AuthMethod: authTLS}}, "needs one of"},
		{"§2.1.2: two of them", Client{ClientSettings: ClientSettings{AuthMethod: authTLS, TLSClientAuthSubjectDN: "CN=a", TLSClientAuthSANDNS: "a.example"}}, "exactly one"},
		{"§2.1.2: a subject without tls_client_auth", Client{ClientSettings: ClientSettings{TLSClientAuthSubjectDN: "CN=a"}, Secret: "a-secret-0123456789abc"}, "only for token_endpoint_auth_method"},
		{"§2.1.2: a DN that is not RFC 4514", Client{ClientSettings: ClientSettings{AuthMethod: authTLS, TLSClientAuthSubjectDN: "CN=a;b"}}, "tls_client_auth_subject_dn"},
		{"§2.1.2: an IP SAN that is no IP", Client{ClientSettings: ClientSettings{AuthMethod: authTLS, TLSClientAuthSANIP: "10.0.0"}}, "not an IP address"},
		{"§2: tls_client_auth with a secret", Client{ClientSettings: ClientSettings{AuthMethod: authTLS, TLSClientAuthSANDNS: "a.example"}, Secret: "a-secret-0123456789abc"}, "has no secret"},
		{"§2: tls_client_auth with a secret hash", Client{ClientSettings: ClientSettings{AuthMethod: authTLS, TLSClientAuthSANDNS: "a.example"}, SecretHash: sha256Hex("x")}, "has no secret"},
		{"§2.2.2: self-signed without keys", Client{ClientSettings: ClientSettings{AuthMethod: authSelfSignedTLS}}, "needs the client's certificate keys"},
		{"§2.2: self-signed with a secret", Client{ClientSettings: ClientSettings{AuthMethod: authSelfSignedTLS, JWKS: jwks}, Secret: "a-secret-0123456789abc"}, "has no secret"},
		{"§2: a public client does not authenticate", Client{ClientSettings: ClientSettings{AuthMethod: authTLS, Public: true, TLSClientAuthSANDNS: "a.example"}}, "public client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			c := tt.c
			c.ID, c.Scopes = "m", []string{"user:read"}
			if c.Public {
				c.RedirectURIs = []string{"https://app.example/cb"}
			}
			cfg.Clients = append(cfg.Clients, &c)
			cfg.store = NewMemoryStore()
			err := cfg.provision(t.Context(), newStorage(t), zaptest.NewLogger(t))
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one containing %q", err, tt.err)
			}
		})
	}
}

// TestMTLSMetadata: RFC 8705 §2.1.1, §2.2.1, §3.3 and §5 in the RFC 8414
// document.
func TestMTLSMetadata(t *testing.T) {
	read := func(a *App) map[string]any {
		b, err := a.buildMetadata(testIssuer + "/oauth2")
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := read(newApp(t, nil))
	for _, key := range []string{"token_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"} {
		list, _ := json.Marshal(m[key])
		if !strings.Contains(string(list), `"tls_client_auth"`) || !strings.Contains(string(list), `"self_signed_tls_client_auth"`) {
			t.Errorf("%s = %s, want both mTLS methods (§2.1.1, §2.2.1)", key, list)
		}
	}
	if m["tls_client_certificate_bound_access_tokens"] != true {
		t.Error("tls_client_certificate_bound_access_tokens is not true (§3.3)")
	}
	if _, ok := m["mtls_endpoint_aliases"]; ok {
		t.Error("mtls_endpoint_aliases without mtls_endpoint_base")
	}
	cfg := baseConfig()
	cfg.MTLSEndpointBase = "https://mtls.as.example:8444/oauth2/"
	aliases, _ := read(newApp(t, cfg))["mtls_endpoint_aliases"].(map[string]any)
	want := map[string]string{
		"token_endpoint":                        "https://mtls.as.example:8444/oauth2/token",
		"revocation_endpoint":                   "https://mtls.as.example:8444/oauth2/revoke",
		"introspection_endpoint":                "https://mtls.as.example:8444/oauth2/introspect",
		"userinfo_endpoint":                     "https://mtls.as.example:8444/oauth2/userinfo",
		"pushed_authorization_request_endpoint": "https://mtls.as.example:8444/oauth2/par",
	}
	for k, v := range want {
		if aliases[k] != v {
			t.Errorf("mtls_endpoint_aliases.%s = %v, want %s (§5)", k, aliases[k], v)
		}
	}
	for _, bad := range []string{"http://mtls.as.example/oauth2", "https://mtls.as.example/oauth2?x=1", "/oauth2", "https://user@mtls.as.example/"} {
		cfg := baseConfig()
		cfg.MTLSEndpointBase = bad
		cfg.store = NewMemoryStore()
		if err := cfg.provision(t.Context(), newStorage(t), zaptest.NewLogger(t)); err == nil || !strings.Contains(err.Error(), "mtls_endpoint_base") {
			t.Errorf("mtls_endpoint_base %q: %v, want refused", bad, err)
		}
	}
}

// TestCertAndDPoPBinding: a certificate client's token request with a DPoP
// proof gets a token bound to both (RFC 8705 §3.1, RFC 9449 §6.1),
// token_type DPoP (RFC 9449 §5).
func TestCertAndDPoPBinding(t *testing.T) {
	f := newMTLSFixture(t, nil)
	k := dpopKey(t)
	r := tokenRequest(ccForm("client_id", mtlsDNID).Encode())
	r.TLS = f.good.State(true)
	// On a TLS connection the token endpoint's URL is https.
	r.Header.Set("DPoP", k.Proof("POST", "https://example.com/oauth2/token", dpoptest.Options{}))
	rec, _ := serve(t, f.s, r)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	m := tokenJSON(t, rec)
	tok := m["access_token"].(string)
	if m["token_type"] != "DPoP" || boundJKT(t, tok) != k.JKT || boundX5T(t, tok) != f.goodX5T {
		t.Fatalf("token_type %v, cnf.jkt %q, cnf.x5t#S256 %q: want DPoP, both bindings", m["token_type"], boundJKT(t, tok), boundX5T(t, tok))
	}
}

// TestTLSClientAuthAtPAR: RFC 9126 §2.1 authenticates the client as the
// token endpoint does, so a certificate client pushes with its
// certificate (RFC 8705 §2) and nothing else.
func TestTLSClientAuthAtPAR(t *testing.T) {
	f := newMTLSFixture(t, func(a *App) {
		a.Clients = append(a.Clients, &Client{ClientSettings: ClientSettings{ID: "payments-web", AuthMethod: authTLS, TLSClientAuthSANDNS: "payments.example.com",
			GrantTypes: []string{GrantAuthorizationCode}, RedirectURIs: []string{webRedirect}, Scopes: []string{"notes:read"}}})
	})
	_, challenge := pkce()
	form := url.Values{"client_id": {"payments-web"}, "response_type": {"code"}, "redirect_uri": {webRedirect}, "scope": {"notes:read"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"s1"}}
	rec := f.post(t, "/oauth2/par", form, f.good.State(true), "")
	if rec.Code != http.StatusCreated || !strings.Contains(rec.Body.String(), requestURIPrefix) {
		t.Fatalf("push with the client's certificate: %d %s", rec.Code, rec.Body)
	}
	assertOAuthError(t, f.post(t, "/oauth2/par", form, f.other.State(true), ""), 400, errInvalidClient)
	assertOAuthError(t, f.post(t, "/oauth2/par", form, nil, ""), 400, errInvalidClient)
}

// TestFAPI2WithMTLS: under profile fapi2, certificate-bound tokens are the
// sender constraint FAPI 2.0 §5.3.2.1 allows besides DPoP: a tls_client_auth
// client needs no DPoP proof; a private_key_jwt client registered for
// bound tokens needs a certificate instead of a proof.
func TestFAPI2WithMTLS(t *testing.T) {
	cfg, key := fapiConfig(t)
	cfg.Clients[0].TLSClientCertificateBoundAccessTokens = true
	cfg.Clients = append(cfg.Clients, &Client{ClientSettings: ClientSettings{ID: mtlsSANID, AuthMethod: authTLS, TLSClientAuthSANDNS: "payments.example.com",
		GrantTypes: []string{GrantClientCredentials}, Scopes: []string{"accounts:read"}}})
	cfg.store = NewMemoryStore()
	s := newServer(t, newApp(t, cfg), "")
	f := newMTLSFixture(t, nil) // for its certificates
	post := func(form url.Values, st *tls.ConnectionState) *httptest.ResponseRecorder {
		r := tokenRequest(form.Encode())
		r.TLS = st
		rec, _ := serve(t, s, r)
		return rec
	}
	rec := post(ccForm("client_id", mtlsSANID, "scope", "accounts:read"), f.good.State(true))
	if rec.Code != 200 || boundX5T(t, tokenJSON(t, rec)["access_token"].(string)) != f.goodX5T {
		t.Fatalf("tls_client_auth client without a DPoP proof under fapi2: %d %s, want a certificate-bound token", rec.Code, rec.Body)
	}
	assertion := func() string {
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": pkjID, "sub": pkjID, "aud": testIssuer,
			"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": fmt.Sprintf("j-%d", now.UnixNano())})
		tok.Header["kid"] = "k1"
		signed, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	form := func() url.Values {
		return ccForm("client_assertion_type", assertType, "client_assertion", assertion(), "scope", "accounts:read")
	}
	rec = post(form(), f.other.State(false))
	if rec.Code != 200 || boundX5T(t, tokenJSON(t, rec)["access_token"].(string)) != f.otherX5T {
		t.Fatalf("private_key_jwt client with bound tokens and a certificate: %d %s", rec.Code, rec.Body)
	}
	assertOAuthError(t, post(form(), nil), 400, errInvalidRequest)
}

// TestSelfSignedFromJWKSURI: RFC 8705 §2.2.2: the client's certificate
// keys may come from its jwks_uri.
func TestSelfSignedFromJWKSURI(t *testing.T) {
	self, err := mtlstest.SelfSigned(mtlstest.Names{})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := mtlstest.SelfSigned(mtlstest.Names{})
	if err != nil {
		t.Fatal(err)
	}
	body := clientJWKS(t, "k1", self.Key.Public().(*ecdsa.PublicKey))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	cfg := baseConfig()
	cfg.store = NewMemoryStore()
	cfg.Clients = append(cfg.Clients, &Client{ClientSettings: ClientSettings{ID: mtlsSelfID, AuthMethod: authSelfSignedTLS, JWKSURI: srv.URL + "/jwks", Scopes: []string{"user:read"}}})
	f := &mtlsFixture{s: newServer(t, newApp(t, cfg), "")}
	rec := f.post(t, "/oauth2/token", ccForm("client_id", mtlsSelfID), self.State(false), "")
	if rec.Code != 200 || boundX5T(t, tokenJSON(t, rec)["access_token"].(string)) != mtls.Thumbprint(self.Cert) {
		t.Fatalf("self-signed certificate with a key from jwks_uri: %d %s", rec.Code, rec.Body)
	}
	assertOAuthError(t, f.post(t, "/oauth2/token", ccForm("client_id", mtlsSelfID), stranger.State(false), ""), 400, errInvalidClient)
}
