package e2e

import (
	"crypto/ecdsa"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyapigw/gateway/internal/mtls"
	"github.com/caddyapigw/gateway/internal/mtls/mtlstest"
)

// mtlsSite is what docs/mtls.md adds to the example's site: Caddy asks
// for a client certificate and validates one that is given against the
// test CA; connections without one still work for everything else.
const mtlsSite = `localhost:8443 {
	tls internal {
		client_auth {
			mode verify_if_given
			trust_pool file CA_PEM
		}
	}
`

// mtlsClient is the client of docs/mtls.md: it authenticates with its
// certificate (RFC 8705 §2.1), named by its subject.
const mtlsClient = `		client payments-mtls {
			name "Payments (mTLS)"
			token_endpoint_auth_method tls_client_auth
			tls_client_auth_subject_dn "CN=payments-mtls,O=Example Gateway Tests"
			grant_types client_credentials
			scopes notes:read
			resources https://localhost:8443/api/notes
		}

`

// mtlsCaddyfile is the example with mtlsSite and mtlsClient, the trust
// pool at caPath.
func mtlsCaddyfile(t *testing.T, p ports, caPath string) string {
	t.Helper()
	b, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, r := range []struct{ from, to string }{
		{"localhost:8443 {\n", strings.ReplaceAll(mtlsSite, "CA_PEM", caPath)},
		{"\t\t# What the consent page says each scope allows.\n", mtlsClient + "\t\t# What the consent page says each scope allows.\n"},
	} {
		if strings.Count(cfg, r.from) != 1 {
			t.Fatalf("Caddyfile.example has %q %d times, want once", r.from, strings.Count(cfg, r.from))
		}
		cfg = strings.Replace(cfg, r.from, r.to, 1)
	}
	return derive(t, cfg, p)
}

// withCert is g's client presenting c's certificate on every connection.
func (g *gateway) withCert(c *mtlstest.Client) *http.Client {
	tr := g.client.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = nil
	if c != nil {
		tr.TLSClientConfig.Certificates = append(tr.TLSClientConfig.Certificates, c.TLS())
	}
	return &http.Client{Transport: tr, CheckRedirect: g.client.CheckRedirect, Timeout: g.client.Timeout}
}

// send makes one request with hc and returns status, headers and body.
func send(t *testing.T, hc *http.Client, method, target, authz string, form url.Values) (int, http.Header, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestMTLSAtTheGateway: RFC 8705 end to end with a real Caddy whose site
// asks for client certificates (client_auth verify_if_given, a test CA as
// trust pool): a client certificate from the CA authenticates at the
// token endpoint (§2.1) and gets a token bound to it (§3); the token works
// at /api/notes on a connection with that certificate and is refused on
// one with another certificate of the same CA or none.
func TestMTLSAtTheGateway(t *testing.T) {
	ca, err := mtlstest.NewCA("e2e client CA")
	if err != nil {
		t.Fatal(err)
	}
	good, err := ca.Issue(mtlstest.Names{Subject: pkix.Name{CommonName: "payments-mtls", Organization: []string{"Example Gateway Tests"}}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.Issue(mtlstest.Names{Subject: pkix.Name{CommonName: "someone-else", Organization: []string{"Example Gateway Tests"}}})
	if err != nil {
		t.Fatal(err)
	}
	caPath := filepath.Join(t.TempDir(), "client-ca.pem")
	if err := os.WriteFile(caPath, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newPorts(t)
	g := startGateway(t, p, mtlsCaddyfile(t, p, caPath), "")
	withGood, withOther, without := g.withCert(good), g.withCert(other), g.withCert(nil)

	// §2.1.1, §3.3: the metadata says so.
	_, _, md := send(t, without, "GET", g.url("/.well-known/oauth-authorization-server"), "", nil)
	if !strings.Contains(md, `"tls_client_auth"`) || !strings.Contains(md, `"tls_client_certificate_bound_access_tokens": true`) {
		t.Fatalf("metadata lacks tls_client_auth or bound tokens: %s", md)
	}

	tokenURL := g.url("/oauth2/token")
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"payments-mtls"}}
	status, _, body := send(t, withGood, "POST", tokenURL, "", form)
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal([]byte(body), &tr); err != nil || status != http.StatusOK || tr.AccessToken == "" {
		g.dumpLog()
		t.Fatalf("token request with the client's certificate: %d %s", status, body)
	}
	if tr.TokenType != "Bearer" {
		t.Errorf("token_type %q, want Bearer (RFC 8705 §3)", tr.TokenType)
	}
	if got, want := x5tOf(t, tr.AccessToken), mtls.Thumbprint(good.Cert); got != want {
		t.Fatalf("cnf.x5t#S256 = %q, want the certificate's %q (§3.1)", got, want)
	}

	for _, c := range []struct {
		name string
		hc   *http.Client
	}{{"another certificate of the same CA", withOther}, {"no certificate", without}} {
		status, _, body := send(t, c.hc, "POST", tokenURL, "", form)
		if status != http.StatusBadRequest || !strings.Contains(body, "invalid_client") {
			t.Errorf("token request with %s: %d %s, want 400 invalid_client (§2)", c.name, status, body)
		}
	}

	notes := g.url("/api/notes")
	if status, _, body := send(t, withGood, "GET", notes, "Bearer "+tr.AccessToken, nil); status != http.StatusOK || !strings.Contains(body, `"client_id":["payments-mtls"]`) {
		t.Fatalf("bound token with its certificate: %d %s", status, body)
	}
	for _, c := range []struct {
		name string
		hc   *http.Client
		desc string
	}{{"another certificate of the same CA", withOther, mtls.OtherCertificate}, {"no certificate", without, mtls.NoCertificate}} {
		status, h, body := send(t, c.hc, "GET", notes, "Bearer "+tr.AccessToken, nil)
		if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) || !strings.Contains(body, c.desc) {
			t.Errorf("bound token with %s: %d %q %s, want 401 invalid_token: %s", c.name, status, h.Get("WWW-Authenticate"), body, c.desc)
		}
	}
	// A plain bearer token of another client is not affected by the
	// connection's certificate.
	status, _, body = send(t, withOther, "POST", tokenURL, "", url.Values{"grant_type": {"client_credentials"}, "client_id": {reportsClient.id}, "client_secret": {reportsClient.secret}, "scope": {"notes:read"}})
	if status != http.StatusOK {
		t.Fatalf("secret client over a connection with a certificate: %d %s", status, body)
	}
	var plain struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal([]byte(body), &plain)
	if x5tOf(t, plain.AccessToken) != "" {
		t.Error("a secret client's token was bound without tls_client_certificate_bound_access_tokens")
	}
	if status, _, body := send(t, without, "GET", notes, "Bearer "+plain.AccessToken, nil); status != http.StatusOK {
		t.Errorf("unbound token without a certificate: %d %s", status, body)
	}
}

// x5tOf reads cnf.x5t#S256 from a JWT access token's payload.
func x5tOf(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Cnf struct {
			X5T string `json:"x5t#S256"`
		} `json:"cnf"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p.Cnf.X5T
}

// TestMTLSSelfSignedAtAnAlias: RFC 8705 §2.2 and §5 with a real Caddy.
// The token endpoint for certificates lives on a second site (another
// port, client_auth mode request: chains are not validated), which the
// metadata names in mtls_endpoint_aliases; a client with a self-signed
// certificate whose key is in its jwks_file authenticates there, and its
// bound token works at the API site (which asks for certificates, mode
// request) only with that certificate.
func TestMTLSSelfSignedAtAnAlias(t *testing.T) {
	self, err := mtlstest.SelfSigned(mtlstest.Names{Subject: pkix.Name{CommonName: "edge-device"}})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := mtlstest.SelfSigned(mtlstest.Names{Subject: pkix.Name{CommonName: "edge-device"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	jwksPath := filepath.Join(dir, "edge-device.jwks")
	if err := os.WriteFile(jwksPath, ecJWKS(t, self), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newPorts(t)
	alias := freePorts(t, 1)[0]
	b, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, r := range []struct{ from, to string }{
		{"localhost:8443 {\n", "localhost:8443 {\n\ttls internal {\n\t\tclient_auth {\n\t\t\tmode request\n\t\t}\n\t}\n"},
		{"\t\trate_limit_memory_budget 64MiB\n", "\t\trate_limit_memory_budget 64MiB\n\t\tmtls_endpoint_base https://localhost:MTLS_PORT/oauth2\n"},
		{"\t\t# What the consent page says each scope allows.\n", "\t\tclient edge-device {\n\t\t\ttoken_endpoint_auth_method self_signed_tls_client_auth\n\t\t\tjwks_file " + jwksPath + "\n\t\t\tgrant_types client_credentials\n\t\t\tscopes notes:read\n\t\t\tresources https://localhost:8443/api/notes\n\t\t}\n\n\t\t# What the consent page says each scope allows.\n"},
	} {
		if strings.Count(cfg, r.from) != 1 {
			t.Fatalf("Caddyfile.example has %q %d times, want once", r.from, strings.Count(cfg, r.from))
		}
		cfg = strings.Replace(cfg, r.from, r.to, 1)
	}
	cfg += "\nlocalhost:MTLS_PORT {\n\ttls internal {\n\t\tclient_auth {\n\t\t\tmode request\n\t\t}\n\t}\n\toauth_server\n}\n"
	cfg = strings.ReplaceAll(derive(t, cfg, p), "MTLS_PORT", strconv.Itoa(alias))
	g := startGateway(t, p, cfg, "")
	withSelf, withStranger, without := g.withCert(self), g.withCert(stranger), g.withCert(nil)

	_, _, body := send(t, without, "GET", g.url("/.well-known/oauth-authorization-server"), "", nil)
	var md struct {
		Aliases map[string]string `json:"mtls_endpoint_aliases"`
	}
	if err := json.Unmarshal([]byte(body), &md); err != nil {
		t.Fatal(err)
	}
	tokenURL := md.Aliases["token_endpoint"]
	if want := "https://localhost:" + strconv.Itoa(alias) + "/oauth2/token"; tokenURL != want {
		t.Fatalf("mtls_endpoint_aliases.token_endpoint = %q, want %q (§5): %s", tokenURL, want, body)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"edge-device"}}
	status, _, body := send(t, withSelf, "POST", tokenURL, "", form)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(body), &tr); err != nil || status != http.StatusOK {
		g.dumpLog()
		t.Fatalf("self-signed client at the alias: %d %s", status, body)
	}
	if x5tOf(t, tr.AccessToken) != mtls.Thumbprint(self.Cert) {
		t.Fatal("the token is not bound to the self-signed certificate (§3.1)")
	}
	if status, _, body := send(t, withStranger, "POST", tokenURL, "", form); status != http.StatusBadRequest || !strings.Contains(body, "invalid_client") {
		t.Errorf("a self-signed certificate with another key: %d %s, want 400 invalid_client (§2.2)", status, body)
	}
	notes := g.url("/api/notes")
	if status, _, body := send(t, withSelf, "GET", notes, "Bearer "+tr.AccessToken, nil); status != http.StatusOK {
		t.Fatalf("bound token with its certificate at the API site: %d %s", status, body)
	}
	for _, hc := range []*http.Client{withStranger, without} {
		if status, _, body := send(t, hc, "GET", notes, "Bearer "+tr.AccessToken, nil); status != http.StatusUnauthorized || !strings.Contains(body, "invalid_token") {
			t.Errorf("bound token without its certificate: %d %s, want 401 invalid_token", status, body)
		}
	}
}

// ecJWKS is the JWK Set of c's P-256 public key (RFC 7517, RFC 7518 §6.2).
func ecJWKS(t *testing.T, c *mtlstest.Client) []byte {
	t.Helper()
	pub, ok := c.Key.Public().(*ecdsa.PublicKey)
	if !ok {
		t.Fatal("not an ECDSA key")
	}
	ep, err := pub.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	raw := ep.Bytes() // 0x04 || X || Y
	enc := base64.RawURLEncoding.EncodeToString
	b, _ := json.Marshal(map[string]any{"keys": []any{map[string]string{
		"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "edge-1",
		"x": enc(raw[1:33]), "y": enc(raw[33:]),
	}}})
	return b
}
