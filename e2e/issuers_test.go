package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// insertRoute adds site-block lines to a Caddyfile derived from the
// example, ahead of its catch-all routes.
func insertRoute(t *testing.T, cfg, route string) string {
	t.Helper()
	const anchor = "\t# The upstream's internal routes are never reachable through the gateway.\n"
	if !strings.Contains(cfg, anchor) {
		t.Fatal("Caddyfile.example no longer has the anchor for an extra route")
	}
	return strings.Replace(cfg, anchor, route+"\n"+anchor, 1)
}

// partnerRoute is a route of the gateway under test that trusts its own
// oauth app and one other issuer, given by the issuer block's body.
func partnerRoute(p ports, issuer, issuerBody string) string {
	return partnerRouteWith(p, "", issuer, issuerBody)
}

// partnerRouteWith is partnerRoute with more oauth_scope lines (tabbed).
func partnerRouteWith(p ports, lines, issuer, issuerBody string) string {
	return fmt.Sprintf(`	@partner path /api/partner /api/partner/*
	handle @partner {
		oauth_scope {
			GET user:read
			POST user:write
			realm partner%s
			issuer local
			issuer %s {
%s
			}
			import identity_headers
		}
		uri strip_prefix /api
		reverse_proxy 127.0.0.1:%d {
			header_up -Authorization
		}
	}
`, lines, issuer, issuerBody, p.upstream)
}

// rootCertPath is where a gateway's internal CA keeps its root.
func (g *gateway) rootCertPath() string {
	return filepath.Join(g.home, "data", "caddy", "pki", "authorities", "local", "root.crt")
}

// expectBearerError checks a refusal's status and RFC 6750 error code.
func expectBearerError(t *testing.T, what string, status int, h http.Header, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("%s: status %d, want %d: %s", what, status, wantStatus, body)
	}
	if ch := h.Get("WWW-Authenticate"); !strings.Contains(ch, `error="`+wantCode+`"`) {
		t.Fatalf("%s: WWW-Authenticate %q lacks error=%q", what, ch, wantCode)
	}
}

// TestExternalIssuerInterop: a second real Caddy of this project, with its
// own oauth app and issuer URL, is the external issuer. The gateway under
// test trusts it through its RFC 8414 metadata URL over HTTPS, with the
// second one's internal CA as trust anchor (tls_trusted_ca_certs). Its
// tokens are accepted with the right scope and refused with the wrong one;
// with the second process stopped, cached keys keep working and a token
// with an unknown kid gets 503 with Retry-After, the log saying why; with
// the issuer back, the same token is accepted without a reload.
func TestExternalIssuerInterop(t *testing.T) {
	needBinary(t)
	p2 := newPorts(t)
	other := startGateway(t, p2, exampleCaddyfile(t, p2), "")
	otherIssuer := fmt.Sprintf("https://localhost:%d", p2.https)

	p1 := newPorts(t)
	// The local example's tokens name its APIs (RFC 8707), not the issuer.
	localAud := fmt.Sprintf("\n\t\t\taudience https://localhost:%d/api/users", p1.https)
	cfg := insertRoute(t, exampleCaddyfile(t, p1), partnerRouteWith(p1, localAud, otherIssuer, fmt.Sprintf(
		"\t\t\t\taudience %s\n\t\t\t\ttls_trusted_ca_certs %s\n\t\t\t\tjwks_refetch_floor 1s\n\t\t\t\ttimeout 2s",
		otherIssuer+"/api/users", other.rootCertPath()))) // the other example's tokens name its APIs (RFC 8707)
	g := startGateway(t, p1, cfg, "")

	// The other issuer's token, with user:read but not user:write.
	tok := other.token(reportsClient)
	status, _, body := g.do("GET", "/api/partner/42", tok, nil)
	if status != http.StatusOK {
		t.Fatalf("external token refused: %d %s", status, body)
	}
	echo := decodeEcho(t, body)
	if len(echo.ClientID) != 1 || echo.ClientID[0] != reportsClient.id || echo.UserID != reportsClient.id || echo.Path != "/partner/42" {
		t.Fatalf("upstream got %+v", echo)
	}
	status, h, body := g.do("POST", "/api/partner", tok, nil)
	expectBearerError(t, "wrong scope", status, h, body, http.StatusForbidden, "insufficient_scope")

	// The route also trusts the local app (issuer local); the example's
	// routes without issuers still trust the local app only.
	if status, _, body := g.do("GET", "/api/partner", g.token(reportsClient), nil); status != http.StatusOK {
		t.Fatalf("local token refused on the partner route: %d %s", status, body)
	}
	status, h, body = g.do("GET", "/api/users", tok, nil)
	expectBearerError(t, "external token on a local-only route", status, h, body, http.StatusUnauthorized, "invalid_token")

	// A token signed with the key the gateway has cached but never seen,
	// and, after a rotation at the other issuer, one with a kid it has
	// never fetched.
	unseen := other.token(provisioningClient)
	resp, err := http.Post(other.adminURL("/oauth/keys/rotate"), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("rotate at the other issuer: %d", resp.StatusCode)
	}
	newKid := other.token(reportsClient)
	if jwtKid(t, newKid) == jwtKid(t, tok) {
		t.Fatal("rotation did not change the kid")
	}

	other.stop()
	time.Sleep(1100 * time.Millisecond) // past jwks_refetch_floor, so the unknown kid makes a refetch try

	if status, _, body := g.do("GET", "/api/partner", tok, nil); status != http.StatusOK {
		t.Fatalf("issuer down: token seen before refused: %d %s", status, body)
	}
	if status, _, body := g.do("GET", "/api/partner", unseen, nil); status != http.StatusOK {
		t.Fatalf("issuer down: new token with a cached key refused: %d %s", status, body)
	}
	// The unknown kid may be a key the issuer has just published: 503 with
	// Retry-After, so the client keeps its token and retries.
	status, h, body = g.do("GET", "/api/partner", newKid, nil)
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || h.Get("WWW-Authenticate") != "" {
		t.Fatalf("issuer down, unknown kid: %d Retry-After %q WWW-Authenticate %q: %s", status, h.Get("Retry-After"), h.Get("WWW-Authenticate"), body)
	}
	if !strings.Contains(string(body), "temporarily_unavailable") {
		t.Errorf("503 body: %s", body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !g.logContains("JWKS refresh failed") {
		if time.Now().After(deadline) {
			g.dumpLog()
			t.Fatal("the log does not say why the unknown kid was refused")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The issuer comes back (same storage, so the same keys): the token
	// is accepted once the refetch floor has passed, with no reload.
	startGateway(t, p2, exampleCaddyfile(t, p2), other.home)
	deadline = time.Now().Add(10 * time.Second)
	for {
		status, _, body = g.do("GET", "/api/partner", newKid, nil)
		if status == http.StatusOK {
			break
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			g.dumpLog()
			t.Fatalf("issuer back: %d %s", status, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// introspectionServer is a small RFC 7662 authorization server in the
// test process, on loopback: opaque tokens it knows are active.
type introspectionServer struct {
	srv    *httptest.Server
	mu     sync.Mutex
	active map[string]string // token → scope
	calls  atomic.Int64
	basic  atomic.Bool // every call authenticated with the right Basic credentials
}

func newIntrospectionServer(t *testing.T, clientID, secret string) *introspectionServer {
	t.Helper()
	is := &introspectionServer{active: map[string]string{}}
	is.basic.Store(true)
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.calls.Add(1)
		id, sec, ok := r.BasicAuth()
		id, _ = url.QueryUnescape(id)
		sec, _ = url.QueryUnescape(sec)
		if !ok || id != clientID || sec != secret || r.Method != http.MethodPost {
			is.basic.Store(false)
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		_ = r.ParseForm()
		is.mu.Lock()
		scope, known := is.active[r.PostForm.Get("token")]
		is.mu.Unlock()
		ans := map[string]any{"active": false}
		if known {
			ans = map[string]any{"active": true, "scope": scope, "client_id": "opaque-client", "sub": "person-9",
				"exp": time.Now().Add(time.Hour).Unix(), "token_type": "Bearer"}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ans)
	}))
	t.Cleanup(is.srv.Close)
	return is
}

// TestExternalIntrospectionE2E: the gateway process introspects opaque
// tokens at an RFC 7662 endpoint with client credentials (secret from the
// environment); active tokens pass with their scope, inactive ones get
// 401 and are not asked about twice; with the endpoint gone, a cached
// answer still serves and a new token gets 503 with Retry-After and the reason logged.
func TestExternalIntrospectionE2E(t *testing.T) {
	needBinary(t)
	const clientID, secret = "gateway", "e2e-introspection-secret/+:"
	is := newIntrospectionServer(t, clientID, secret)
	is.active["opaque-read"] = "user:read"
	is.active["opaque-read-2"] = "user:read"
	t.Setenv("E2E_INTROSPECTION_SECRET", secret)

	p := newPorts(t)
	cfg := insertRoute(t, exampleCaddyfile(t, p), partnerRoute(p, is.srv.URL, fmt.Sprintf(
		"\t\t\t\tintrospection_url %s/introspect\n\t\t\t\tclient_id %s\n\t\t\t\tclient_secret {env.E2E_INTROSPECTION_SECRET}\n\t\t\t\ttimeout 2s",
		is.srv.URL, clientID)))
	g := startGateway(t, p, cfg, "")

	status, _, body := g.do("GET", "/api/partner/7", "opaque-read", nil)
	if status != http.StatusOK {
		t.Fatalf("active opaque token refused: %d %s", status, body)
	}
	if echo := decodeEcho(t, body); len(echo.ClientID) != 1 || echo.ClientID[0] != "opaque-client" || echo.UserID != "person-9" {
		t.Fatalf("upstream got %+v", echo)
	}
	status, h, body := g.do("POST", "/api/partner", "opaque-read", nil)
	expectBearerError(t, "wrong scope", status, h, body, http.StatusForbidden, "insufficient_scope")
	for range 3 {
		status, h, body = g.do("GET", "/api/partner", "opaque-unknown", nil)
		expectBearerError(t, "inactive token", status, h, body, http.StatusUnauthorized, "invalid_token")
	}
	if n := is.calls.Load(); n != 2 {
		t.Errorf("introspection calls = %d, want 2 (one per token, answers cached)", n)
	}
	if !is.basic.Load() {
		t.Error("the gateway did not authenticate with its client credentials")
	}

	is.srv.Close()
	if status, _, body := g.do("GET", "/api/partner", "opaque-read", nil); status != http.StatusOK {
		t.Fatalf("endpoint down: cached answer not used: %d %s", status, body)
	}
	status, h, body = g.do("GET", "/api/partner", "opaque-read-2", nil)
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("endpoint down, new token: %d Retry-After %q: %s", status, h.Get("Retry-After"), body)
	}
	if !g.logContains("its issuer could not check it") || !g.logContains("connection refused") {
		g.dumpLog()
		t.Fatal("the log does not say why the token was refused")
	}
}
