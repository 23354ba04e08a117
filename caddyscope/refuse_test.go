package caddyscope

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// withErrorRoutes puts r in a Caddy server that has handle_errors routes,
// as the Caddy HTTP server does for the requests it serves.
func withErrorRoutes(r *http.Request) *http.Request {
	srv := &caddyhttp.Server{Errors: &caddyhttp.HTTPErrorConfig{Routes: caddyhttp.RouteList{{}}}}
	return r.WithContext(context.WithValue(r.Context(), caddyhttp.ServerCtxKey, srv))
}

// TestRefusalAsHandlerError: with handle_errors routes, each refusal is
// returned to Caddy as a handler error with the refusal's status (as
// basic_auth does), the RFC 6750 §3 challenge already on the response, no
// body written, the reason in {oauth.error}/{oauth.error_description} and
// the log line carrying Caddy's error id.
func TestRefusalAsHandlerError(t *testing.T) {
	f := newFixture(t)
	core, logs := observer.New(zapcore.InfoLevel)
	h := &Scope{Rules: []Rule{{Methods: []string{"GET"}, Scopes: []string{"admin"}}}, Realm: "notes"}
	if err := h.provision(f.auth, zap.New(core)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, authz   string
		status                int
		code, desc, challenge string
	}{
		// RFC 6750 §3.1: no error code without credentials.
		{"no token", "GET", "", http.StatusUnauthorized, "unauthorized", "bearer token required", `Bearer realm="notes", scope="admin"`},
		{"bad token (§3.1 invalid_token)", "GET", "Bearer abc.def.ghi", http.StatusUnauthorized, "invalid_token", "token malformed", `error="invalid_token"`},
		{"scope missing (§3.1 insufficient_scope)", "GET", "Bearer " + f.token(t, claims("user:read", nil)), http.StatusForbidden, "insufficient_scope", "token lacks a required scope", `error="insufficient_scope"`},
		{"method without rule (RFC 9110 §15.5.6)", "DELETE", "", http.StatusMethodNotAllowed, "method_not_allowed", "this method is not allowed on this route", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var authz []string
			if tt.authz != "" {
				authz = append(authz, tt.authz)
			}
			r, repl := newRequest(tt.method, "/notes", authz...)
			res := serve(t, h, withErrorRoutes(r))
			var he caddyhttp.HandlerError
			if !errors.As(res.err, &he) || he.StatusCode != tt.status {
				t.Fatalf("ServeHTTP = %v, want a handler error with status %d", res.err, tt.status)
			}
			if res.calls != 0 || res.rec.Body.Len() != 0 {
				t.Fatalf("next ran %d times, body %q: handle_errors writes the answer", res.calls, res.rec.Body)
			}
			ch := res.rec.Header().Get("WWW-Authenticate")
			if tt.challenge == "" && ch != "" || !strings.Contains(ch, tt.challenge) {
				t.Errorf("WWW-Authenticate = %q, want %q in it", ch, tt.challenge)
			}
			if tt.status == http.StatusMethodNotAllowed && res.rec.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", res.rec.Header().Get("Allow"))
			}
			if v, _ := repl.GetString("oauth.error"); v != tt.code {
				t.Errorf("{oauth.error} = %q, want %q", v, tt.code)
			}
			if v, _ := repl.GetString("oauth.error_description"); v != tt.desc {
				t.Errorf("{oauth.error_description} = %q, want %q", v, tt.desc)
			}
			last := logs.All()[logs.Len()-1]
			if f := last.ContextMap(); f["reason"] != tt.desc || f["err_id"] != he.ID || he.ID == "" {
				t.Errorf("log fields %v, want reason %q and err_id %q", f, tt.desc, he.ID)
			}
		})
	}
}

// TestRefusalLogOriginalPath: the log names the path the client asked for,
// not the one a `uri strip_prefix` before oauth_scope left.
func TestRefusalLogOriginalPath(t *testing.T) {
	f := newFixture(t)
	core, logs := observer.New(zapcore.InfoLevel)
	h := &Scope{}
	if err := h.provision(f.auth, zap.New(core)); err != nil {
		t.Fatal(err)
	}
	r, _ := newRequest(http.MethodGet, "/notes/7")
	orig := *httptest.NewRequest(http.MethodGet, "/api/notes/7", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.OriginalRequestCtxKey, orig))
	checkRefused(t, serve(t, h, r), http.StatusUnauthorized, "")
	if got := logs.All()[0].ContextMap()["path"]; got != "/api/notes/7" {
		t.Errorf("logged path %v, want /api/notes/7", got)
	}
}
