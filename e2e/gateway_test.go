package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// upstreamEcho is what the demo upstream of Caddyfile.example answers.
type upstreamEcho struct {
	Upstream    string   `json:"upstream"`
	Method      string   `json:"method"`
	Path        string   `json:"path"`
	Query       string   `json:"query"`
	ClientID    []string `json:"client_id"`
	ClientName  string   `json:"client_name"`
	UserID      string   `json:"user_id"`
	Scope       string   `json:"scope"`
	HeaderNames []string `json:"header_names"`
}

// ccConfig is an x/oauth2 client-credentials config for a demo client.
func (g *gateway) ccConfig(c demoClient, style oauth2.AuthStyle, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID:     c.id,
		ClientSecret: c.secret,
		TokenURL:     g.url("/oauth2/token"),
		Scopes:       scopes,
		AuthStyle:    style,
	}
}

// ctx carries the gateway-trusting HTTP client for x/oauth2.
func (g *gateway) ctx() context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, g.client)
}

// token gets an access token for c with x/oauth2.
func (g *gateway) token(c demoClient, scopes ...string) string {
	g.t.Helper()
	tok, err := g.ccConfig(c, oauth2.AuthStyleInHeader, scopes...).Token(g.ctx())
	if err != nil {
		g.t.Fatalf("token for %s: %v", c.id, err)
	}
	rememberSecret(tok.AccessToken)
	return tok.AccessToken
}

// startExample runs Caddyfile.example on fresh ports with fresh storage.
func startExample(t *testing.T) *gateway {
	t.Helper()
	needBinary(t)
	p := newPorts(t)
	return startGateway(t, p, exampleCaddyfile(t, p), "")
}

func decodeEcho(t *testing.T, body []byte) upstreamEcho {
	t.Helper()
	var e upstreamEcho
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("upstream answer is not the demo echo: %v: %s", err, body)
	}
	if e.Upstream != "demo" {
		t.Fatalf("answer did not come from the demo upstream: %s", body)
	}
	return e
}

// appOrigin is the origin of the example's browser app, which CORS allows.
func (g *gateway) appOrigin() string {
	return "https://app.localhost:" + strconv.Itoa(g.ports.https)
}

// checkAPIHeaders checks that an answer on /api/* carries the API's
// headers (the example's api_headers snippet), whoever wrote it: a browser
// app on the allowed origin can read it and its Retry-After, nothing caches
// it, and no Server header names the software.
func checkAPIHeaders(t *testing.T, g *gateway, what string, h http.Header) {
	t.Helper()
	if got := h.Get("Access-Control-Allow-Origin"); got != g.appOrigin() {
		t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", what, got, g.appOrigin())
	}
	exposed := strings.Split(h.Get("Access-Control-Expose-Headers"), ",")
	for i := range exposed {
		exposed[i] = strings.TrimSpace(exposed[i])
	}
	if !slices.Contains(exposed, "Retry-After") {
		t.Errorf("%s: Access-Control-Expose-Headers %q lacks Retry-After", what, h.Get("Access-Control-Expose-Headers"))
	}
	if got := h.Get("Cache-Control"); got != "no-store" {
		t.Errorf("%s: Cache-Control %q, want no-store", what, got)
	}
	if got := h.Values("Server"); len(got) != 0 {
		t.Errorf("%s: Server header %q, want none", what, got)
	}
}

// TestMachineClientScenario is the walkthrough (docs/walkthrough.md) with
// x/oauth2 as the client: token, call through the proxy, spoofing,
// refusals, redirect.
func TestMachineClientScenario(t *testing.T) {
	g := startExample(t)

	t.Run("token via x/oauth2 then 200 through the proxy with X-Client-Id", func(t *testing.T) {
		// cfg.Client attaches the token as x/oauth2 users do.
		hc := g.ccConfig(reportsClient, oauth2.AuthStyleInHeader).Client(g.ctx())
		resp, err := hc.Get(g.url("/api/users/42?fields=name"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e upstreamEcho
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if e.Path != "/users/42" || e.Query != "fields=name" || e.Method != "GET" {
			t.Errorf("upstream saw %s %s?%s, want GET /users/42?fields=name", e.Method, e.Path, e.Query)
		}
		if len(e.ClientID) != 1 || e.ClientID[0] != reportsClient.id {
			t.Errorf("upstream X-Client-Id = %q, want [%s]", e.ClientID, reportsClient.id)
		}
		if e.ClientName != "Reports service" || e.UserID != reportsClient.id || e.Scope != "user:read notes:read" {
			t.Errorf("identity headers = name %q user %q scope %q", e.ClientName, e.UserID, e.Scope)
		}
	})

	t.Run("client_secret_post works too", func(t *testing.T) {
		tok, err := g.ccConfig(provisioningClient, oauth2.AuthStyleInParams, "user:write").Token(g.ctx())
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Extra("scope"); got != "user:write" {
			t.Errorf("granted scope %v, want user:write", got)
		}
	})

	tok := g.token(reportsClient)

	t.Run("spoofed identity headers are replaced, not passed on", func(t *testing.T) {
		status, _, body := g.do("GET", "/api/users", tok, map[string]string{
			"X-Client-Id": "admin",
			"X-User-Id":   "root",
			"x_client_id": "admin2",
			"X-Scope":     "user:write",
		})
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, body)
		}
		e := decodeEcho(t, body)
		if len(e.ClientID) != 1 || e.ClientID[0] != reportsClient.id {
			t.Errorf("upstream X-Client-Id = %q, want only %s", e.ClientID, reportsClient.id)
		}
		if e.UserID != reportsClient.id || e.Scope != "user:read notes:read" {
			t.Errorf("spoofed values reached the upstream: user %q scope %q", e.UserID, e.Scope)
		}
		for _, h := range e.HeaderNames {
			if strings.EqualFold(strings.ReplaceAll(h, "_", "-"), "x-client-id") && h != "X-Client-Id" {
				t.Errorf("upstream received a variant of the identity header: %q", h)
			}
			if strings.EqualFold(h, "Authorization") {
				t.Error("upstream received the bearer token (header_up -Authorization)")
			}
		}
	})

	t.Run("CORS preflight is answered by the gateway, never passed on", func(t *testing.T) {
		for _, origin := range []string{g.appOrigin(), "https://evil.example"} {
			status, h, body := g.do("OPTIONS", "/api/users/42", "", map[string]string{
				"Origin":                        origin,
				"Access-Control-Request-Method": "DELETE",
				"X-HTTP-Method-Override":        "DELETE",
			})
			if status != http.StatusNoContent || len(body) != 0 {
				t.Fatalf("%s: status %d body %s", origin, status, body)
			}
			allowed := strings.HasPrefix(origin, "https://app.localhost")
			if got := h.Get("Access-Control-Allow-Origin"); (got == origin) != allowed {
				t.Errorf("%s: Access-Control-Allow-Origin %q", origin, got)
			}
			if allowed && !strings.Contains(h.Get("Access-Control-Allow-Methods"), "DELETE") {
				t.Errorf("Access-Control-Allow-Methods %q", h.Get("Access-Control-Allow-Methods"))
			}
		}
	})

	t.Run("no token: 401 with a Bearer challenge and no error code (RFC 6750 §3.1)", func(t *testing.T) {
		status, h, body := g.do("GET", "/api/users", "", nil)
		if status != http.StatusUnauthorized {
			t.Fatalf("status %d", status)
		}
		ch := h.Get("WWW-Authenticate")
		if !strings.HasPrefix(ch, "Bearer") || strings.Contains(ch, "error=") {
			t.Errorf("WWW-Authenticate = %q", ch)
		}
		if !strings.Contains(string(body), `"error"`) {
			t.Errorf("body %s", body)
		}
	})

	t.Run("garbage token: 401 invalid_token", func(t *testing.T) {
		for _, bad := range []string{"garbage", "a.b.c", tok[:len(tok)-4] + "AAAA"} {
			status, h, _ := g.do("GET", "/api/users", bad, nil)
			if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("token %.12q…: status %d, challenge %q", bad, status, h.Get("WWW-Authenticate"))
			}
		}
	})

	t.Run("read-only token on a write: 403 insufficient_scope (RFC 6750 §3.1)", func(t *testing.T) {
		status, h, body := g.do("POST", "/api/users", tok, nil)
		if status != http.StatusForbidden {
			t.Fatalf("status %d: %s", status, body)
		}
		ch := h.Get("WWW-Authenticate")
		if !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, `scope="user:write"`) {
			t.Errorf("WWW-Authenticate = %q", ch)
		}
	})

	t.Run("method without a rule is refused even with a good token", func(t *testing.T) {
		status, _, _ := g.do("TRACE", "/api/users", tok, nil)
		if status != http.StatusMethodNotAllowed {
			t.Errorf("TRACE: status %d, want 405", status)
		}
	})

	t.Run("wrong secret: 401 invalid_client", func(t *testing.T) {
		bad := reportsClient
		bad.secret = "not-the-secret-at-all"
		_, err := g.ccConfig(bad, oauth2.AuthStyleInHeader).Token(g.ctx())
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) {
			t.Fatalf("err = %v, want a RetrieveError", err)
		}
		if re.Response.StatusCode != http.StatusUnauthorized || re.ErrorCode != "invalid_client" {
			t.Errorf("status %d code %q", re.Response.StatusCode, re.ErrorCode)
		}
		if !strings.HasPrefix(re.Response.Header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("no Basic challenge: %q", re.Response.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("scope not allowed: invalid_scope", func(t *testing.T) {
		_, err := g.ccConfig(reportsClient, oauth2.AuthStyleInHeader, "user:write").Token(g.ctx())
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_scope" {
			t.Errorf("err = %v, want invalid_scope", err)
		}
	})

	t.Run("HTTP redirects to HTTPS", func(t *testing.T) {
		resp, err := g.client.Get("http://localhost:" + strconv.Itoa(g.ports.http) + "/api/users?x=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := g.url("/api/users?x=1")
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Errorf("status %d Location %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
	})

	t.Run("internal routes and path tricks never reach the upstream", func(t *testing.T) {
		for _, p := range []string{"/internal/admin", "/api/users/../../internal/admin", "/api/users/%2e%2e/%2e%2e/internal/admin", "/api/users-admin", "/nope"} {
			status, _, body := g.do("GET", p, tok, nil)
			if status != http.StatusNotFound || strings.Contains(string(body), `"upstream"`) {
				t.Errorf("%s: status %d body %s", p, status, body)
			}
		}
	})

	t.Run("a 404 on /api/* carries the API's headers", func(t *testing.T) {
		// handle_errors writes it, where the site's header directive does
		// not run: the example imports the same headers there.
		status, h, body := g.do("GET", "/api/users-admin", tok, map[string]string{"Origin": g.appOrigin()})
		var e struct{ Error string }
		if status != http.StatusNotFound || json.Unmarshal(body, &e) != nil || e.Error != "not_found" {
			t.Fatalf("status %d body %s", status, body)
		}
		checkAPIHeaders(t, g, "404", h)
	})

	t.Run("metadata issuer equals the configured issuer (RFC 8414 §3.3)", func(t *testing.T) {
		status, _, body := g.do("GET", "/.well-known/oauth-authorization-server", "", nil)
		var md struct {
			Issuer        string `json:"issuer"`
			TokenEndpoint string `json:"token_endpoint"`
		}
		if status != 200 || json.Unmarshal(body, &md) != nil {
			t.Fatalf("status %d body %s", status, body)
		}
		if md.Issuer != g.url("") || md.TokenEndpoint != g.url("/oauth2/token") {
			t.Errorf("metadata %+v", md)
		}
	})

	t.Run("access log names the caller and redacts the token", func(t *testing.T) {
		if !g.logContains(`"user_id":"reports-service"`) || !g.logContains(`"client_id":"reports-service"`) {
			t.Error("access log does not show the caller")
		}
		if g.logContains(tok) {
			t.Error("access token appears in the log")
		}
		if g.logContains(reportsClient.secret) {
			t.Error("client secret appears in the log")
		}
	})
}

// TestRateLimitPerClient: 150 requests from one client with a limit of
// 100/min: 100 pass, 50 get 429 with Retry-After; another client is not
// affected; responses advertise the caller's policy. The 429 carries the
// API's headers, so a browser app on the allowed origin can read it and
// its Retry-After.
func TestRateLimitPerClient(t *testing.T) {
	g := startExample(t)
	tok := g.token(reportsClient)
	origin := map[string]string{"Origin": g.appOrigin()}
	var ok, limited int
	for i := range 150 {
		status, h, body := g.do("GET", "/api/users", tok, origin)
		switch status {
		case http.StatusOK:
			ok++
			if got := h.Get("RateLimit-Policy"); got != `"standard";q=100;w=60` {
				t.Fatalf("request %d: RateLimit-Policy = %q", i, got)
			}
		case http.StatusTooManyRequests:
			limited++
			ra, err := strconv.Atoi(h.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 60 {
				t.Fatalf("429 with Retry-After %q", h.Get("Retry-After"))
			}
			var e struct{ Error string }
			if json.Unmarshal(body, &e) != nil || e.Error != "rate_limited" {
				t.Fatalf("429 body %s", body)
			}
			if got := h.Get("RateLimit-Policy"); got != `"standard";q=100;w=60` {
				t.Fatalf("429 with RateLimit-Policy %q", got)
			}
			if limited == 1 {
				checkAPIHeaders(t, g, "429", h)
			}
		default:
			t.Fatalf("request %d: status %d: %s", i, status, body)
		}
	}
	if ok != 100 || limited != 50 {
		t.Fatalf("ok=%d limited=%d, want 100 and 50", ok, limited)
	}

	other := g.token(provisioningClient)
	for range 20 {
		if status, _, body := g.do("GET", "/api/users", other, nil); status != http.StatusOK {
			t.Fatalf("second client: status %d: %s", status, body)
		}
	}
	// Each API keeps its own budget.
	if status, _, _ := g.do("GET", "/api/notes", tok, nil); status != http.StatusOK {
		t.Fatalf("notes API limited by the users API budget: %d", status)
	}
	gold := g.token(goldClient)
	status, h, _ := g.do("GET", "/api/users", gold, nil)
	if status != http.StatusOK || h.Get("RateLimit-Policy") != `"gold";q=1000;w=60` {
		t.Fatalf("gold client: status %d policy %q", status, h.Get("RateLimit-Policy"))
	}
}

// TestUpstreamDown: when the upstream does not answer, the client gets the
// example's JSON 502 body, not an empty page or a Go error text.
func TestUpstreamDown(t *testing.T) {
	needBinary(t)
	p := newPorts(t)
	cfg := exampleCaddyfile(t, p)
	dead := freePorts(t, 1)[0]
	live := "reverse_proxy 127.0.0.1:" + strconv.Itoa(p.upstream)
	i := strings.LastIndex(cfg, live) // the notes API's proxy
	if i < 0 {
		t.Fatal("example has no reverse_proxy to the demo upstream")
	}
	cfg = cfg[:i] + "reverse_proxy 127.0.0.1:" + strconv.Itoa(dead) + cfg[i+len(live):]
	g := startGateway(t, p, cfg, "")
	tok := g.token(goldClient)
	status, h, body := g.do("GET", "/api/notes", tok, map[string]string{"Origin": g.appOrigin()})
	var e struct{ Error string }
	if status != http.StatusBadGateway || json.Unmarshal(body, &e) != nil || e.Error != "upstream_unavailable" {
		t.Fatalf("status %d body %s", status, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	checkAPIHeaders(t, g, "502", h)
	// The other API is unaffected.
	if status, _, _ := g.do("GET", "/api/users", tok, nil); status != http.StatusOK {
		t.Errorf("users API: %d", status)
	}
}
