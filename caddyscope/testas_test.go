package caddyscope

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"github.com/caddyapigw/gateway/internal/oauthtest"
)

// testAS is a small authorization server on loopback that another issuer
// would be: RFC 8414 or OpenID Connect metadata, a JWKS (RFC 7517) and an
// RFC 7662 introspection endpoint that authenticates the gateway with
// HTTP Basic.
type testAS struct {
	t      testing.TB
	srv    *httptest.Server
	issuer string // srv.URL + path
	path   string // the issuer's path, "" or "/tenant"

	mu       sync.Mutex
	kr       *oauthjwt.Keyring
	jwksBody string            // served instead of kr.JWKS() when set
	metadata map[string]any    // extra or replaced metadata members
	mode     string            // "oauth" (RFC 8414), "oidc", or "none"
	answers  map[string]string // introspection: token → JSON answer
	status   int               // introspection status, when not 200

	hits map[string]*atomic.Int64 // per request path

	gate                chan struct{} // when set, introspection waits for it to close
	inFlight, maxFlight atomic.Int64

	clientID, secret string
}

const (
	asClientID = "gateway"
	// A secret with characters that RFC 6749 §2.3.1 form-urlencodes
	// before Base64: the server checks the gateway does that.
	asSecret = "s3cret/with+odd chars:&="
)

func newTestAS(t testing.TB, path, mode string) *testAS {
	t.Helper()
	as := newTestASUnstarted(t, path, mode)
	as.srv.Start()
	as.issuer = as.srv.URL + path
	t.Cleanup(as.srv.Close)
	return as
}

// newTestASUnstarted makes the server without starting it; its listener
// is already bound, so its URL is known (srv.Listener.Addr).
func newTestASUnstarted(t testing.TB, path, mode string) *testAS {
	t.Helper()
	as := &testAS{t: t, path: path, kr: newTestKeyring(t), mode: mode, answers: map[string]string{},
		hits: map[string]*atomic.Int64{}, clientID: asClientID, secret: asSecret}
	as.srv = httptest.NewUnstartedServer(http.HandlerFunc(as.serve))
	as.issuer = "http://" + as.srv.Listener.Addr().String() + path
	return as
}

func (as *testAS) hit(path string) *atomic.Int64 {
	as.mu.Lock()
	defer as.mu.Unlock()
	c, ok := as.hits[path]
	if !ok {
		c = new(atomic.Int64)
		as.hits[path] = c
	}
	return c
}

func (as *testAS) count(path string) int64 { return as.hit(path).Load() }

func (as *testAS) jwksPath() string          { return as.path + "/jwks" }
func (as *testAS) introspectionPath() string { return as.path + "/introspect" }
func (as *testAS) oauthMetadataPath() string {
	return "/.well-known/oauth-authorization-server" + as.path
}
func (as *testAS) oidcMetadataPath() string { return as.path + "/.well-known/openid-configuration" }

func (as *testAS) serve(w http.ResponseWriter, r *http.Request) {
	as.hit(r.URL.Path).Add(1)
	as.mu.Lock()
	mode, kr, jwks := as.mode, as.kr, as.jwksBody
	as.mu.Unlock()
	switch {
	case r.URL.Path == as.oauthMetadataPath() && mode == "oauth",
		r.URL.Path == as.oidcMetadataPath() && mode == "oidc":
		md := map[string]any{
			"issuer":                 as.issuer,
			"jwks_uri":               as.srv.URL + as.jwksPath(),
			"introspection_endpoint": as.srv.URL + as.introspectionPath(),
		}
		as.mu.Lock()
		for k, v := range as.metadata {
			md[k] = v
		}
		as.mu.Unlock()
		writeJSONTest(w, http.StatusOK, md)
	case r.URL.Path == as.jwksPath():
		if jwks != "" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(jwks))
			return
		}
		writeJSONTest(w, http.StatusOK, kr.JWKS())
	case r.URL.Path == as.introspectionPath():
		as.serveIntrospection(w, r)
	default:
		http.NotFound(w, r)
	}
}

// serveIntrospection answers RFC 7662 §2: POST, form body with token,
// client authenticated with Basic (RFC 6749 §2.3.1).
func (as *testAS) serveIntrospection(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	if !ok || id != as.clientID || secret != as.secret {
		w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if as.gate != nil {
		n := as.inFlight.Add(1)
		for m := as.maxFlight.Load(); n > m && !as.maxFlight.CompareAndSwap(m, n); m = as.maxFlight.Load() {
		}
		select {
		case <-as.gate:
		case <-r.Context().Done():
		}
		as.inFlight.Add(-1)
	}
	as.mu.Lock()
	answer, known := as.answers[r.PostForm.Get("token")]
	status := as.status
	as.mu.Unlock()
	if status != 0 {
		http.Error(w, "down for maintenance", status)
		return
	}
	if !known {
		answer = `{"active":false}`
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(answer))
}

func writeJSONTest(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// answer sets the introspection answer for token.
func (as *testAS) answer(token string, v map[string]any) {
	b, _ := json.Marshal(v)
	as.mu.Lock()
	as.answers[token] = string(b)
	as.mu.Unlock()
}

// remoteClaims is a valid RFC 9068 payload from this issuer.
func (as *testAS) claims(scope any, override map[string]any) map[string]any {
	c := claims(scope, override)
	if _, ok := override["iss"]; !ok {
		c["iss"] = as.issuer
	}
	if _, ok := override["client_id"]; !ok {
		c["client_id"] = "partner-app"
	}
	return c
}

// token signs an RFC 9068 token with the issuer's active key.
func (as *testAS) token(t testing.TB, scope any, override map[string]any) string {
	t.Helper()
	as.mu.Lock()
	kr := as.kr
	as.mu.Unlock()
	tok, err := kr.SignAccessToken(as.claims(scope, override))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// rotate replaces the signing key, keeping the old ones published.
func (as *testAS) rotate(t testing.TB) {
	t.Helper()
	as.mu.Lock()
	defer as.mu.Unlock()
	as.kr = newTestKeyring(t, as.kr.Keys()...)
}

// newTestKeyring signs with a new ES256 key and verifies with it and old.
func newTestKeyring(t testing.TB, old ...*oauthjwt.Key) *oauthjwt.Keyring {
	t.Helper()
	k, err := oauthjwt.GenerateKey(oauthjwt.ES256)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := oauthjwt.NewKeyring(k, old...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// applyChanges sets each member of change in m, deleting those that are
// nil, and returns m.
func applyChanges(m, change map[string]any) map[string]any {
	for k, v := range change {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// fakeClock is a settable clock for cache deadlines.
type fakeClock = oauthtest.Clock

func newFakeClock() *fakeClock { return oauthtest.NewClock(time.Now()) }

// issuerHandler provisions s (with issuers) against the fixture's local
// authority, logging to an observer, and releases its issuers at the end.
func issuerHandler(t testing.TB, f *fixture, s *Scope) (*Scope, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	s.issuerLogger = zap.New(core)
	var auth oauthjwt.Authority
	if f != nil {
		auth = f.auth
	}
	if err := s.provision(auth, zap.New(core)); err != nil {
		t.Fatalf("provision: %v", err)
	}
	t.Cleanup(func() { _ = s.Cleanup() })
	return s, logs
}

// useClock makes the route and its running issuers read clock.
func useClock(s *Scope, clock *fakeClock) {
	s.trust.now = clock.Now
	for _, tr := range s.trust.all {
		if tr.remote != nil {
			tr.remote.now = clock.Now
		}
	}
}

// logged reports whether a log entry's message or fields contain all of
// the parts.
func logged(logs *observer.ObservedLogs, parts ...string) bool {
	for _, e := range logs.All() {
		text := e.Message
		for k, v := range e.ContextMap() {
			text += " " + k + "=" + toString(v)
		}
		all := true
		for _, p := range parts {
			if !strings.Contains(text, p) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// closedURL is a loopback URL nothing listens on.
func closedURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

// remoteScope is a route that trusts as (by discovery unless opts set
// jwks_url) and requires user:read for GET.
func remoteScope(as *testAS, opts func(*Issuer)) *Scope {
	is := Issuer{Issuer: as.issuer, Audience: []string{testAudience}}
	if opts != nil {
		opts(&is)
	}
	return &Scope{
		Rules:          []Rule{{Methods: []string{"GET"}, Scopes: []string{"user:read"}}},
		Issuers:        []Issuer{is},
		ForwardHeaders: map[string]string{"X-Client-Id": "{oauth.client_id}"},
	}
}
