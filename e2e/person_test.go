package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// A person's browser without the browser: an HTTP client with a cookie jar
// that fills in the login and consent forms of Caddyfile.example's pages.
// The real-browser test is browser_test.go; these tests need many codes
// and refresh tokens, fast, against several gateways.

const (
	demoUser     = "alice"
	demoPassword = "alice-demo-password"
	spaClient    = "notes-spa"
)

// person is one browser profile: its cookies go to every gateway of the
// test (cookies do not depend on the port, as in a real browser).
type person struct {
	t   *testing.T
	jar http.CookieJar
}

func newPerson(t *testing.T) *person {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &person{t: t, jar: jar}
}

// at is g's client (which trusts g's own CA) with the person's cookies.
func (p *person) at(g *gateway) *http.Client {
	c := *g.client
	c.Jar = p.jar
	return &c
}

var formField = regexp.MustCompile(`name="([a-z_]+)" value="([^"]*)"`)

func (p *person) get(g *gateway, path string) (*http.Response, string) {
	p.t.Helper()
	u := g.url(path)
	resp, err := p.at(g).Get(u)
	if err != nil {
		p.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// submit posts the hidden fields of page plus extra to g's action path.
func (p *person) submit(g *gateway, action, page string, extra url.Values) *http.Response {
	p.t.Helper()
	form := url.Values{}
	for _, m := range formField.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	for k, v := range extra {
		form[k] = v
	}
	resp, err := p.at(g).PostForm(g.url(action), form)
	if err != nil {
		p.t.Fatalf("POST %s: %v", action, err)
	}
	resp.Body.Close()
	return resp
}

// pkcePair returns a verifier and its S256 challenge (RFC 7636 §4.1, §4.2).
func pkcePair() (string, string) {
	v := strings.Repeat("e2e-verifier-", 4)
	sum := sha256.Sum256([]byte(v))
	return v, base64.RawURLEncoding.EncodeToString(sum[:])
}

// code runs an authorization request of the SPA at g, signing in and
// approving (remembered) as needed, and returns the code.
func (p *person) code(g *gateway, challenge string) string {
	p.t.Helper()
	return p.codeFor(g, challenge, "notes:read notes:write")
}

// codeFor is code for the given scope.
func (p *person) codeFor(g *gateway, challenge, scope string) string {
	p.t.Helper()
	q := url.Values{
		"response_type": {"code"}, "client_id": {spaClient}, "redirect_uri": {g.url("/demo/callback")},
		"scope": {scope}, "state": {"s1"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	resp, page := p.get(g, "/oauth2/authorize?"+q.Encode())
	for range 6 {
		switch {
		case resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther:
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				p.t.Fatal(err)
			}
			if strings.HasPrefix(loc.Path, "/oauth2/authorize") {
				resp, page = p.get(g, loc.RequestURI())
				continue
			}
			c := loc.Query().Get("code")
			if c == "" {
				p.t.Fatalf("redirect without code: %s", loc)
			}
			return c
		case strings.Contains(page, `name="password"`):
			resp = p.submit(g, "/oauth2/login", page, url.Values{"username": {demoUser}, "password": {demoPassword}})
			page = ""
		case strings.Contains(page, `value="allow"`):
			resp = p.submit(g, "/oauth2/consent", page, url.Values{"decision": {"allow"}, "remember": {"yes"}})
			page = ""
		default:
			p.t.Fatalf("authorize at %s: %d %s", g.url(""), resp.StatusCode, page)
		}
	}
	p.t.Fatal("authorization did not finish")
	return ""
}

// tokenResult is a token endpoint answer.
type tokenResult struct {
	status int
	body   map[string]any
}

func (r tokenResult) str(k string) string { s, _ := r.body[k].(string); return s }

// postToken sends a token request for the public SPA to g.
func postToken(t *testing.T, g *gateway, form url.Values) tokenResult {
	t.Helper()
	form.Set("client_id", spaClient)
	resp, err := g.client.PostForm(g.url("/oauth2/token"), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return tokenResult{resp.StatusCode, m}
}

func exchange(t *testing.T, g *gateway, code, verifier string) tokenResult {
	return postToken(t, g, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {verifier}, "redirect_uri": {g.url("/demo/callback")}})
}

func refresh(t *testing.T, g *gateway, rt string) tokenResult {
	return postToken(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// TestClusterPeopleState: with two gateways sharing Redis, everything a
// sign-in creates is shared: a session from A signs the person in at B; a
// code issued at A and redeemed at A and B at the same instant succeeds
// exactly once (RFC 6749 §4.1.2, repeated many times); a refresh token
// from A is rotated at B and its predecessor is then refused at A (RFC
// 9700 §4.14.2); a token revoked at A (RFC 7009) is refused at B within
// a second.
func TestClusterPeopleState(t *testing.T) {
	c := startCluster(t)
	a, b := c.a, c.b
	pa := newPerson(t)
	verifier, challenge := pkcePair()

	// Sign in at A; the session (in Redis) is good at B: no login page.
	pa.code(a, challenge)
	// (A public client's consent is never remembered, so B shows the
	// consent page: signed in, not the login page.)
	resp, page := pa.get(b, "/oauth2/authorize?"+url.Values{
		"response_type": {"code"}, "client_id": {spaClient}, "redirect_uri": {b.url("/demo/callback")},
		"scope": {"notes:read notes:write"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}.Encode())
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `value="allow"`) || strings.Contains(page, `name="password"`) {
		t.Fatalf("B did not know A's session: %d", resp.StatusCode)
	}

	// The code race.
	const races = 25
	for i := range races {
		code := pa.code(a, challenge)
		var wg sync.WaitGroup
		results := make([]tokenResult, 2)
		start := make(chan struct{})
		for j, g := range []*gateway{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				// Same redirect_uri as the request (A's), whichever gateway.
				results[j] = postToken(t, g, url.Values{"grant_type": {"authorization_code"}, "code": {code},
					"code_verifier": {verifier}, "redirect_uri": {a.url("/demo/callback")}})
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, r := range results {
			switch {
			case r.status == http.StatusOK:
				ok++
			case r.status != http.StatusBadRequest || r.str("error") != "invalid_grant":
				t.Fatalf("race %d: %d %v", i, r.status, r.body)
			}
		}
		if ok != 1 {
			t.Fatalf("race %d: %d successes, want exactly 1: %v", i, ok, results)
		}
	}

	// Refresh rotation across the cluster.
	first := exchange(t, a, pa.code(a, challenge), verifier)
	if first.status != http.StatusOK || first.str("refresh_token") == "" {
		t.Fatalf("exchange at A: %d %v", first.status, first.body)
	}
	second := refresh(t, b, first.str("refresh_token"))
	if second.status != http.StatusOK || second.str("refresh_token") == "" {
		t.Fatalf("refresh at B: %d %v", second.status, second.body)
	}
	if status, _, body := a.do("GET", "/api/notes", second.str("access_token"), nil); status != http.StatusOK || !strings.Contains(string(body), `"user_id":"alice"`) {
		t.Fatalf("B's refreshed token at A: %d %s", status, body)
	}
	// A retry of the predecessor at A within the grace window (a lost
	// answer) gets B's successor; once that is used, it is reuse.
	if r := refresh(t, a, first.str("refresh_token")); r.status != http.StatusOK || r.str("refresh_token") != second.str("refresh_token") {
		t.Fatalf("retry of the predecessor at A within the grace window: %d %v, want B's successor", r.status, r.body)
	}
	third := refresh(t, a, second.str("refresh_token"))
	if third.status != http.StatusOK {
		t.Fatalf("refresh of the successor at A: %d %v", third.status, third.body)
	}
	if r := refresh(t, a, first.str("refresh_token")); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
		t.Fatalf("rotated predecessor at A: %d %v, want invalid_grant", r.status, r.body)
	}
	if r := refresh(t, b, third.str("refresh_token")); r.status != http.StatusBadRequest {
		t.Fatalf("after reuse, the family's live token at B: %d %v, want invalid_grant", r.status, r.body)
	}

	// Revocation at A, refused at B within a second.
	tok := a.token(reportsClient)
	if status, _, _ := b.do("GET", "/api/notes", tok, nil); status != http.StatusOK {
		t.Fatalf("B refused a fresh token: %d", status)
	}
	req, _ := http.NewRequest("POST", a.url("/oauth2/revoke"), strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(reportsClient.id, reportsClient.secret)
	rresp, err := a.client.Do(req)
	if err != nil || rresp.StatusCode != http.StatusOK {
		t.Fatalf("revoke at A: %v %v", err, rresp)
	}
	rresp.Body.Close()
	revokedAt := time.Now()
	if status, _, _ := a.do("GET", "/api/notes", tok, nil); status != http.StatusUnauthorized {
		t.Fatalf("A still accepts the token it revoked: %d", status)
	}
	for {
		status, _, _ := b.do("GET", "/api/notes", tok, nil)
		if status == http.StatusUnauthorized {
			t.Logf("revocation seen at B after %v", time.Since(revokedAt).Round(time.Millisecond))
			break
		}
		if time.Since(revokedAt) > time.Second {
			t.Fatalf("B still accepts the token 1 s after A revoked it (status %d)", status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPersonStateSurvivesReloadAndRestart: a session and a refresh token
// outlive a config reload and a process restart with
// the default Caddy storage.
func TestPersonStateSurvivesReloadAndRestart(t *testing.T) {
	needBinary(t)
	p := newPorts(t)
	home := t.TempDir()
	g := startGateway(t, p, exampleCaddyfile(t, p), home)
	pp := newPerson(t)
	verifier, challenge := pkcePair()
	rt := exchange(t, g, pp.code(g, challenge), verifier).str("refresh_token")
	if rt == "" {
		t.Fatal("no refresh token")
	}
	signedInAndRefresh := func(g *gateway, when string) {
		t.Helper()
		resp, _ := pp.get(g, "/oauth2/account")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: account page %d", when, resp.StatusCode)
		}
		q := url.Values{"response_type": {"code"}, "client_id": {spaClient}, "redirect_uri": {g.url("/demo/callback")},
			"scope": {"notes:read notes:write"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		resp, page := pp.get(g, "/oauth2/authorize?"+q.Encode())
		if resp.StatusCode != http.StatusOK || strings.Contains(page, `name="password"`) {
			t.Fatalf("%s: session lost (status %d)", when, resp.StatusCode)
		}
		r := refresh(t, g, rt)
		if r.status != http.StatusOK {
			t.Fatalf("%s: refresh token lost: %d %v", when, r.status, r.body)
		}
		rt = r.str("refresh_token")
	}
	g.reload(withGeneration(t, g.config))
	g.awaitGeneration("/health", "")
	signedInAndRefresh(g, "after reload")

	g.stop()
	g2 := startGateway(t, p, exampleCaddyfile(t, p), home)
	signedInAndRefresh(g2, "after restart")
}
