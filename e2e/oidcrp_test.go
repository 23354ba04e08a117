package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Relying parties that people use unchanged sign in through the gateway's
// OpenID provider (OpenID Connect Core 1.0, Discovery 1.0): go-oidc and
// openid-client (v6 and v5) each discover it from the issuer URL of
// Caddyfile.example, run the code flow with PKCE for the demo web app
// (notes-web), and validate the ID token, while the test plays the person
// at the login and consent pages.

// notesWeb is the confidential person-facing app of Caddyfile.example.
var notesWeb = demoClient{"notes-web", "notes-web-demo-secret-not-for-production"}

// oidcRPDir is the Node project of the openid-client relying parties.
const oidcRPDir = "oidc-rp"

// signInAt drives an authorization request given as a full URL of g, as
// the person: signs in and approves where asked, and returns the URL the
// gateway sends the browser back to (the client's redirect URI).
func (p *person) signInAt(g *gateway, authorizeURL string) *url.URL {
	p.t.Helper()
	u, err := url.Parse(authorizeURL)
	if err != nil {
		p.t.Fatal(err)
	}
	resp, page := p.get(g, u.RequestURI())
	for range 6 {
		switch {
		case resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther:
			loc, err := resp.Location()
			if err != nil {
				p.t.Fatal(err)
			}
			if strings.HasPrefix(loc.Path, "/oauth2/authorize") {
				resp, page = p.get(g, loc.RequestURI())
				continue
			}
			return loc
		case strings.Contains(page, `name="password"`):
			resp = p.submit(g, "/oauth2/login", page, url.Values{"username": {demoUser}, "password": {demoPassword}})
			page = ""
		case strings.Contains(page, `value="allow"`):
			resp = p.submit(g, "/oauth2/consent", page, url.Values{"decision": {"allow"}})
			page = ""
		default:
			p.t.Fatalf("authorize: %d %.500s", resp.StatusCode, page)
		}
	}
	p.t.Fatal("authorization did not finish")
	return nil
}

func randomString(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestGoOIDCRelyingParty: github.com/coreos/go-oidc discovers the gateway
// from its issuer URL (Discovery §4), the code flow runs with PKCE and a
// nonce through the real login, and go-oidc verifies the ID token (Core
// §3.1.3.7: signature from the JWKS, iss, aud, exp), its nonce and its
// at_hash (§3.1.3.8); userinfo (§5.3) names the same sub; a refresh
// returns an ID token with the same sub and auth_time (§12.2); and the ID
// token is refused as a bearer token at an API route (RFC 9068 §4).
func TestGoOIDCRelyingParty(t *testing.T) {
	p := newPorts(t)
	g := startGateway(t, p, exampleCaddyfile(t, p), "")
	ctx := oidc.ClientContext(t.Context(), g.client)
	issuer := g.url("")

	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery from %s: %v", issuer, err)
	}
	conf := oauth2.Config{
		ClientID: notesWeb.id, ClientSecret: notesWeb.secret,
		Endpoint: provider.Endpoint(), RedirectURL: g.url("/demo/callback"),
		Scopes: []string{oidc.ScopeOpenID, "profile", "email", "notes:read"},
	}
	verifier := oauth2.GenerateVerifier()
	state, nonce := randomString(t), randomString(t)
	alice := newPerson(t)
	back := alice.signInAt(g, conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)))
	q := back.Query()
	if q.Get("state") != state || q.Get("iss") != issuer || q.Get("code") == "" {
		t.Fatalf("callback %s: want the state, iss %s and a code", back, issuer)
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		t.Fatal("no id_token in the token response")
	}
	idv := provider.Verifier(&oidc.Config{ClientID: notesWeb.id})
	idt, err := idv.Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("go-oidc refused the ID token: %v", err)
	}
	if idt.Nonce != nonce {
		t.Errorf("nonce %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var claims struct {
		Email    string `json:"email"`
		Name     string `json:"name"`
		AZP      string `json:"azp"`
		AuthTime int64  `json:"auth_time"`
		SID      string `json:"sid"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != demoUser || claims.Email != "alice@example.com" || claims.Name != "Alice Example" || claims.AZP != notesWeb.id || claims.AuthTime == 0 || claims.SID == "" {
		t.Errorf("ID token sub %q, claims %+v", idt.Subject, claims)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(rawID, ".")[0])
	var h struct{ Alg, Typ string }
	_ = json.Unmarshal(hdr, &h)
	if h.Alg != "RS256" || h.Typ != "JWT" {
		t.Errorf("ID token header %s: want RS256 (Core §15.1, the example's key is ES256) and typ JWT", hdr)
	}

	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if ui.Subject != idt.Subject || ui.Email != "alice@example.com" {
		t.Errorf("userinfo sub %q email %q; want the ID token's sub %q (Core §5.3.2)", ui.Subject, ui.Email, idt.Subject)
	}

	// Core §12.2: refreshing returns a new ID token, same sub and auth_time.
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	fresh, err := conf.TokenSource(ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	rawID2, _ := fresh.Extra("id_token").(string)
	idt2, err := idv.Verify(ctx, rawID2)
	if err != nil {
		t.Fatalf("refreshed ID token: %v", err)
	}
	var claims2 struct {
		AuthTime int64 `json:"auth_time"`
	}
	_ = idt2.Claims(&claims2)
	if idt2.Subject != idt.Subject || claims2.AuthTime != claims.AuthTime || idt2.Nonce != "" {
		t.Errorf("refreshed ID token sub %q auth_time %d nonce %q; want %q, %d, none", idt2.Subject, claims2.AuthTime, idt2.Nonce, idt.Subject, claims.AuthTime)
	}

	// An ID token is no access token: refused at the API, where the access
	// token gets past oauth_scope.
	if status, h, _ := g.do(http.MethodGet, "/api/notes", rawID, nil); status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("ID token as bearer token at /api/notes: %d %q, want 401 invalid_token", status, h.Get("WWW-Authenticate"))
	}
	if status, _, _ := g.do(http.MethodGet, "/api/notes", tok.AccessToken, nil); status == http.StatusUnauthorized || status == http.StatusForbidden {
		t.Errorf("the access token at /api/notes: %d", status)
	}

	// RP-Initiated Logout 1.0: the end_session_endpoint of the discovery
	// document signs the person out and sends them back with state.
	var md struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := provider.Claims(&md); err != nil || md.EndSession == "" {
		t.Fatalf("no end_session_endpoint in discovery: %v", err)
	}
	out, _ := url.Parse(md.EndSession)
	out.RawQuery = url.Values{"id_token_hint": {rawID}, "post_logout_redirect_uri": {g.url("/demo/callback")}, "state": {"bye"}}.Encode()
	resp, _ := alice.get(g, out.RequestURI())
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != g.url("/demo/callback")+"?state=bye" {
		t.Fatalf("end_session: %d → %q", resp.StatusCode, loc)
	}
	if _, page := alice.get(g, "/oauth2/authorize?"+url.Values{"response_type": {"code"}, "client_id": {notesWeb.id}, "scope": {"openid"}}.Encode()); !strings.Contains(page, `name="password"`) {
		t.Error("still signed in after end_session")
	}
}

// rpResult is rp.js's final line.
type rpResult struct {
	Lib             string         `json:"lib"`
	Claims          map[string]any `json:"claims"`
	Userinfo        map[string]any `json:"userinfo"`
	RefreshedClaims map[string]any `json:"refreshed_claims"`
	Error           string         `json:"error"`
	Cause           string         `json:"cause"`
}

// TestOpenIDClientRelyingParty: panva's openid-client, v6 and v5 (pinned in
// oidc-rp/package-lock.json), each with its default discovery from the
// issuer URL, completes a code flow with PKCE, state and nonce against the
// gateway and validates the ID token; userinfo and a refresh follow.
func TestOpenIDClientRelyingParty(t *testing.T) {
	npmInstallIn(t, oidcRPDir, "openid-client")
	p := newPorts(t)
	g := startGateway(t, p, exampleCaddyfile(t, p), "")
	for _, lib := range []string{"v6", "v5"} {
		t.Run("openid-client "+lib, func(t *testing.T) {
			rp := startNodeRP(t, g, "rp.js", "--lib", lib, "--issuer", g.url(""),
				"--client-id", notesWeb.id, "--client-secret", notesWeb.secret, "--redirect-uri", g.url("/demo/callback"))
			var start struct {
				AuthorizationURL string `json:"authorization_url"`
				Issuer           string `json:"issuer"`
				Error            string `json:"error"`
			}
			rp.next(&start)
			if start.Error != "" || start.Issuer != g.url("") {
				t.Fatalf("discovery: issuer %q, error %s", start.Issuer, start.Error)
			}
			if u, _ := url.Parse(start.AuthorizationURL); u.Query().Get("code_challenge_method") != "S256" || u.Query().Get("nonce") == "" {
				t.Errorf("authorization request without PKCE S256 or nonce: %s", start.AuthorizationURL)
			}
			back := newPerson(t).signInAt(g, start.AuthorizationURL)
			rp.send(back.String())
			var res rpResult
			rp.next(&res)
			if res.Error != "" {
				t.Fatalf("%s refused the flow: %s (cause %s)\n%s", lib, res.Error, res.Cause, rp.stderr.String())
			}
			c := res.Claims
			if c["sub"] != demoUser || c["aud"] != notesWeb.id || c["iss"] != g.url("") || c["email"] != "alice@example.com" {
				t.Errorf("ID token claims %v", c)
			}
			if res.Userinfo["sub"] != c["sub"] {
				t.Errorf("userinfo %v: sub differs from the ID token's", res.Userinfo)
			}
			if r := res.RefreshedClaims; r["sub"] != c["sub"] || r["auth_time"] != c["auth_time"] {
				t.Errorf("refreshed ID token %v: sub and auth_time must stay (Core §12.2)", r)
			}
			t.Logf("%s: ID token for %v validated, userinfo %v", res.Lib, c["sub"], res.Userinfo)
		})
	}
}

// TestOIDCSigninExample: the go-oidc program of docs/oidc.md is
// oidc-signin/main.go, word for word, and it works as written against
// Caddyfile.example: built, run with the test's issuer and CA, it prints
// the authorization URL, takes the callback address and names the person.
func TestOIDCSigninExample(t *testing.T) {
	src, err := os.ReadFile("oidc-signin/main.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/oidc.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- snippet: e2e/oidc-signin/main.go -->\n```go\n"
	_, block, ok := strings.Cut(string(doc), marker)
	if !ok {
		t.Fatalf("docs/oidc.md has no %q", marker)
	}
	block, _, _ = strings.Cut(block, "```\n")
	if block != string(src) {
		t.Fatal("the program in docs/oidc.md differs from e2e/oidc-signin/main.go: copy the file into the page")
	}

	bin := t.TempDir() + "/oidc-signin"
	if out, err := exec.Command("go", "build", "-o", bin, "./oidc-signin").CombinedOutput(); err != nil {
		t.Fatalf("go build ./oidc-signin: %v\n%s", err, out)
	}
	p := newPorts(t)
	g := startGateway(t, p, exampleCaddyfile(t, p), "")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-issuer", g.url(""), "-ca", g.rootCertPath())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	var authURL string
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "https://") {
			authURL = lines.Text()
			break
		}
	}
	if authURL == "" {
		t.Fatalf("no authorization URL printed: %s", stderr.String())
	}
	back := newPerson(t).signInAt(g, authURL)
	_, _ = io.WriteString(stdin, back.String()+"\n")
	var last string
	for lines.Scan() {
		last = lines.Text()
	}
	if want := "Signed in: alice (Alice Example, alice@example.com)"; last != want {
		t.Fatalf("last line %q, want %q\n%s", last, want, stderr.String())
	}
}
