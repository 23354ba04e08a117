package caddyscope

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// introspectingScope is a route that introspects opaque tokens at as
// (RFC 7662) and requires user:read for GET.
func introspectingScope(as *testAS, opts func(*Issuer)) *Scope {
	return &Scope{
		Rules: []Rule{{Methods: []string{"GET"}, Scopes: []string{"user:read"}}},
		Issuers: []Issuer{{
			Issuer:           as.issuer,
			IntrospectionURL: as.srv.URL + as.introspectionPath(),
			ClientID:         asClientID,
			ClientSecret:     asSecret,
		}},
		ForwardHeaders: map[string]string{"X-Client-Id": "{oauth.client_id}", "X-Sub": "{oauth.sub}"},
	}
}

func withIssuer(s *Scope, opts func(*Issuer)) *Scope {
	if opts != nil {
		opts(&s.Issuers[0])
	}
	return s
}

// activeAnswer is an RFC 7662 §2.2 answer for an active token.
func activeAnswer(as *testAS, scope string, exp time.Time, extra map[string]any) map[string]any {
	a := map[string]any{
		"active":     true,
		"scope":      scope,
		"client_id":  "partner-app",
		"sub":        "user-7",
		"iss":        as.issuer,
		"exp":        exp.Unix(),
		"token_type": "Bearer",
		"tenant":     "acme",
	}
	return applyChanges(a, extra)
}

// TestIntrospectionActive: an opaque token the issuer says is active
// (RFC 7662 §2.2) is accepted with its scopes; its client_id, sub and
// other members become placeholders; the gateway authenticated with its
// client credentials by HTTP Basic (RFC 7662 §2.1, RFC 6749 §2.3.1), and
// the answer is cached.
func TestIntrospectionActive(t *testing.T) {
	as := newTestAS(t, "", "none")
	as.answer("opaque-1", activeAnswer(as, "user:read notes:read", time.Now().Add(time.Hour), nil))
	h, _ := issuerHandler(t, nil, introspectingScope(as, nil))

	r, repl := newRequest(http.MethodGet, "/", "Bearer opaque-1")
	res := serve(t, h, r)
	mustAccept(t, res)
	for name, want := range map[string]string{
		"oauth.client_id":     "partner-app",
		"oauth.sub":           "user-7",
		"oauth.scope":         "user:read notes:read",
		"oauth.claims.tenant": "acme",
		"oauth.client_name":   "",
		"http.auth.user.id":   "user-7",
	} {
		if got, _ := repl.GetString(name); got != want {
			t.Errorf("{%s} = %q, want %q", name, got, want)
		}
	}
	if got := res.nextHeader.Get("X-Sub"); got != "user-7" {
		t.Errorf("X-Sub = %q", got)
	}
	mustAccept(t, get(t, h, "opaque-1"))
	if n := as.count(as.introspectionPath()); n != 1 {
		t.Errorf("introspected %d times, want 1 (cached)", n)
	}

	as.answer("opaque-2", activeAnswer(as, "notes:read", time.Now().Add(time.Hour), nil))
	checkRefused(t, get(t, h, "opaque-2"), http.StatusForbidden, errInsufficientScope)
}

// TestIntrospectionClientAuth: wrong gateway credentials make the issuer
// answer 401 (RFC 7662 §2.3); the client gets 503 with Retry-After (its
// token is not known to be bad), and the log names the status.
func TestIntrospectionClientAuth(t *testing.T) {
	as := newTestAS(t, "", "none")
	as.answer("opaque-1", activeAnswer(as, "user:read", time.Now().Add(time.Hour), nil))
	h, logs := issuerHandler(t, nil, withIssuer(introspectingScope(as, nil), func(is *Issuer) { is.ClientSecret = "wrong-secret" }))
	body := checkUnavailable(t, get(t, h, "opaque-1"))
	if body.Description != "token could not be checked with its issuer" {
		t.Errorf("error_description = %q", body.Description)
	}
	if !logged(logs, "its issuer could not check it", "status 401") {
		t.Errorf("log does not say why: %v", logs.All())
	}
}

// TestIntrospectionInactive: an inactive answer is 401 invalid_token and
// is cached (negative cache) for the negative TTL, then asked again.
func TestIntrospectionInactive(t *testing.T) {
	as := newTestAS(t, "", "none")
	h, _ := issuerHandler(t, nil, withIssuer(introspectingScope(as, nil), func(is *Issuer) {
		is.IntrospectionNegativeTTL = caddy.Duration(10 * time.Second)
	}))
	clock := newFakeClock()
	useClock(h, clock)
	for range 3 {
		body := checkRefused(t, get(t, h, "revoked-token"), http.StatusUnauthorized, errInvalidToken)
		if body.Description != "token not active" {
			t.Errorf("error_description = %q", body.Description)
		}
	}
	if n := as.count(as.introspectionPath()); n != 1 {
		t.Fatalf("introspected %d times, want 1 (negative cache)", n)
	}
	clock.Advance(11 * time.Second)
	checkRefused(t, get(t, h, "revoked-token"), http.StatusUnauthorized, errInvalidToken)
	if n := as.count(as.introspectionPath()); n != 2 {
		t.Fatalf("introspected %d times after the negative TTL, want 2", n)
	}
}

// TestIntrospectionCacheDeadline: an active answer is reused until the
// token's exp or the configured cache TTL, whichever comes first, never
// after; then the issuer is asked again (here: the token was revoked).
func TestIntrospectionCacheDeadline(t *testing.T) {
	tests := []struct {
		name     string
		exp      time.Duration // token lifetime from now
		ttl      time.Duration // introspection_cache_ttl
		deadline time.Duration // when the cached answer must stop being used
	}{
		{"exp first", 10 * time.Second, time.Minute, 10 * time.Second},
		{"TTL first", time.Hour, 30 * time.Second, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newTestAS(t, "", "none")
			h, _ := issuerHandler(t, nil, withIssuer(introspectingScope(as, nil), func(is *Issuer) {
				is.IntrospectionCacheTTL = caddy.Duration(tt.ttl)
			}))
			clock := newFakeClock()
			useClock(h, clock)
			as.answer("tok", activeAnswer(as, "user:read", clock.Now().Add(tt.exp), nil))
			mustAccept(t, get(t, h, "tok"))
			clock.Advance(tt.deadline - time.Second)
			mustAccept(t, get(t, h, "tok"))
			if n := as.count(as.introspectionPath()); n != 1 {
				t.Fatalf("introspected %d times before the deadline, want 1", n)
			}
			as.answer("tok", map[string]any{"active": false})
			clock.Advance(time.Second)
			checkRefused(t, get(t, h, "tok"), http.StatusUnauthorized, errInvalidToken)
			if n := as.count(as.introspectionPath()); n != 2 {
				t.Fatalf("introspected %d times at the deadline, want 2", n)
			}
		})
	}
}

// TestIntrospectionCacheBounded: the caches hold at most about the
// configured size, however many tokens come.
func TestIntrospectionCacheBounded(t *testing.T) {
	as := newTestAS(t, "", "none")
	exp := time.Now().Add(time.Hour)
	for i := range 200 {
		as.answer(fmt.Sprintf("tok-%d", i), activeAnswer(as, "user:read", exp, nil))
	}
	h, _ := issuerHandler(t, nil, withIssuer(introspectingScope(as, nil), func(is *Issuer) { is.IntrospectionCacheSize = 32 }))
	for i := range 200 {
		mustAccept(t, get(t, h, fmt.Sprintf("tok-%d", i)))
		checkRefused(t, get(t, h, fmt.Sprintf("unknown-%d", i)), http.StatusUnauthorized, errInvalidToken)
	}
	ri := h.trust.all[0].remote
	for name, c := range map[string]interface{ Len() int }{"positive": ri.positive, "negative": ri.negative} {
		if c.Len() > 32+16 {
			t.Errorf("%s cache holds %d entries for a size of 32", name, c.Len())
		}
	}
	if ri.positive.Cap() > 32+16 {
		t.Errorf("cap %d for a size of 32", ri.positive.Cap())
	}
}

// TestIntrospectionDown: with the introspection endpoint unreachable, or
// answering 5xx or nonsense, the client gets 503 with Retry-After rather
// than a 401 that would make it discard a good token, nothing is cached,
// and the log says why.
func TestIntrospectionDown(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(*testAS, *Scope)
		reason string
	}{
		{"connection refused", func(as *testAS, s *Scope) {
			s.Issuers[0].IntrospectionURL = closedURL(t) + "/introspect"
		}, "connection refused"},
		{"503", func(as *testAS, s *Scope) { as.status = http.StatusServiceUnavailable }, "status 503"},
		{"not JSON", func(as *testAS, s *Scope) { as.answers["tok"] = "<html>" }, "introspection response"},
		{"active as a string", func(as *testAS, s *Scope) { as.answers["tok"] = `{"active":"true","scope":"user:read"}` }, "active is not a boolean"},
		{"no active member", func(as *testAS, s *Scope) { as.answers["tok"] = `{"scope":"user:read"}` }, "no active member"},
		{"exp not a number", func(as *testAS, s *Scope) { as.answers["tok"] = `{"active":true,"exp":"soon"}` }, "introspection response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newTestAS(t, "", "none")
			s := introspectingScope(as, nil)
			tt.setup(as, s)
			h, logs := issuerHandler(t, nil, s)
			body := checkUnavailable(t, get(t, h, "tok"))
			if body.Description != "token could not be checked with its issuer" {
				t.Errorf("error_description = %q", body.Description)
			}
			if !logged(logs, "its issuer could not check it", tt.reason) {
				t.Errorf("log does not say why (%s): %v", tt.reason, logs.All())
			}
			ri := h.trust.all[0].remote
			if ri.positive.Len()+ri.negative.Len() != 0 {
				t.Error("an answer was cached for a failed introspection")
			}
		})
	}
}

// TestIntrospectionBoundedInFlight: however many uncached tokens arrive at
// once, at most maxIntrospections calls are in flight at the issuer; the
// rest wait at most the timeout, then get 401 with a reason logged (the
// warning is rate-limited to one a second: the first one is logged).
func TestIntrospectionBoundedInFlight(t *testing.T) {
	as := newTestAS(t, "", "none")
	as.gate = make(chan struct{})
	const timeout = 2 * time.Second
	h, logs := issuerHandler(t, nil, withIssuer(introspectingScope(as, nil), func(is *Issuer) {
		is.Timeout = caddy.Duration(timeout)
	}))
	const n = maxIntrospections + 8
	codes := make(chan int, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() { codes <- get(t, h, fmt.Sprintf("flood-%d", i)).rec.Code })
	}
	// Until the held calls time out nothing frees a slot, so what the
	// issuer sees in flight then is the gateway's concurrency. (After the
	// timeouts the issuer notices abandoned calls a little late, so its
	// count then says nothing about the bound.)
	for as.inFlight.Load() < maxIntrospections && time.Since(start) < timeout/2 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // room for any call over the bound to arrive
	if elapsed := time.Since(start); elapsed >= timeout {
		t.Fatalf("the flood took %v to start; the bound cannot be observed", elapsed)
	}
	if m := as.maxFlight.Load(); m != maxIntrospections {
		t.Errorf("%d introspections in flight, want the bound, %d", m, maxIntrospections)
	}
	wg.Wait() // the held calls time out at the client
	close(as.gate)
	close(codes)
	for c := range codes {
		if c != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", c)
		}
	}
	if !logged(logs, "its issuer could not check it") {
		t.Errorf("log does not say why: %v", logs.All())
	}
}

// TestIntrospectionAnswerChecks: what an active answer must also satisfy.
func TestIntrospectionAnswerChecks(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name  string
		extra map[string]any
		opts  func(*Issuer)
		desc  string
	}{
		{"another issuer", map[string]any{"iss": "https://evil.example"}, nil, "token issuer not accepted"},
		{"expired although active", map[string]any{"exp": now.Add(-time.Minute).Unix()}, nil, "token not active"},
		{"not yet valid", map[string]any{"nbf": now.Add(time.Hour).Unix()}, nil, "token not active"},
		{"audience configured, answer has none", nil, func(is *Issuer) { is.Audience = []string{testAudience} }, "token audience not accepted"},
		{"audience configured, answer has another", map[string]any{"aud": "https://other.example"}, func(is *Issuer) { is.Audience = []string{testAudience} }, "token audience not accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newTestAS(t, "", "none")
			as.answer("tok", activeAnswer(as, "user:read", now.Add(time.Hour), tt.extra))
			h, _ := issuerHandler(t, nil, withIssuer(introspectingScope(as, nil), tt.opts))
			body := checkRefused(t, get(t, h, "tok"), http.StatusUnauthorized, errInvalidToken)
			if body.Description != tt.desc {
				t.Errorf("error_description = %q, want %q", body.Description, tt.desc)
			}
		})
	}
	t.Run("audience configured and matching", func(t *testing.T) {
		as := newTestAS(t, "", "none")
		as.answer("tok", activeAnswer(as, "user:read", now.Add(time.Hour), map[string]any{"aud": []string{"x", testAudience}}))
		h, _ := issuerHandler(t, nil, withIssuer(introspectingScope(as, nil), func(is *Issuer) { is.Audience = []string{testAudience} }))
		mustAccept(t, get(t, h, "tok"))
	})
}

// TestIntrospectionJWT: an issuer with introspection_url and no jwks_url
// has every token introspected, JWTs routed to it by iss included; opaque
// tokens go to it as the route's one introspecting issuer, next to a JWT
// issuer and the local app.
func TestIntrospectionJWT(t *testing.T) {
	f := newFixture(t)
	as := newTestAS(t, "", "none")
	jwtAS := newTestAS(t, "/jwt", "oauth")
	s := introspectingScope(as, nil)
	s.Issuers = append(s.Issuers, Issuer{Issuer: jwtAS.issuer, Audience: []string{testAudience}}, Issuer{Issuer: LocalIssuer})
	h, _ := issuerHandler(t, f, s)

	jwtTok := as.token(t, "user:read", nil)
	as.answer(jwtTok, activeAnswer(as, "user:read", time.Now().Add(time.Hour), nil))
	as.answer("opaque", activeAnswer(as, "user:read", time.Now().Add(time.Hour), nil))
	mustAccept(t, get(t, h, jwtTok))
	mustAccept(t, get(t, h, "opaque"))
	if n := as.count(as.introspectionPath()); n != 2 {
		t.Errorf("introspected %d times, want 2", n)
	}
	mustAccept(t, get(t, h, jwtAS.token(t, "user:read", nil)))
	mustAccept(t, get(t, h, f.token(t, claims("user:read", nil))))
	if n := as.count(as.introspectionPath()); n != 2 {
		t.Errorf("a token of another issuer was introspected (%d calls)", n)
	}
}

// TestParseIntrospection: RFC 7662 §2.2 answers.
func TestParseIntrospection(t *testing.T) {
	tests := []struct {
		body    string
		active  bool
		scope   string
		wantErr string
	}{
		{`{"active":true,"scope":"a b","exp":1900000000,"aud":["x"]}`, true, "a b", ""},
		{`{"active":true,"scope":["a","b"]}`, true, "a b", ""},
		{` {"active":true} `, true, "", ""},
		{`{"active":false}`, false, "", ""},
		{`{"active":false,"scope":42}`, false, "", ""}, // nothing else is read
		{`{"active":"true"}`, false, "", "not a boolean"},
		{`{"active":1}`, false, "", "not a boolean"},
		{`{"active":null}`, false, "", "not a boolean"},
		{`{}`, false, "", "no active member"},
		{`null`, false, "", "not a JSON object"},
		{`[{"active":true}]`, false, "", "not a JSON object"},
		{`{"active":true,"exp":"x"}`, false, "", "*"}, // a member of the wrong type
		{`{"active":true,"aud":5}`, false, "", "*"},
		{`{"active":true,"scope":42}`, false, "", "*"},
		{``, false, "", "not a JSON object"},
	}
	for _, tt := range tests {
		active, c, err := parseIntrospection([]byte(tt.body))
		switch {
		case tt.wantErr != "":
			if err == nil || tt.wantErr != "*" && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want %q", tt.body, err, tt.wantErr)
			}
			if active {
				t.Errorf("%s: active with an error", tt.body)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.body, err)
		case active != tt.active:
			t.Errorf("%s: active = %v", tt.body, active)
		case active && c.ScopeText() != tt.scope:
			t.Errorf("%s: scope = %q", tt.body, c.ScopeText())
		}
	}
}

// FuzzParseIntrospection: the parser of the introspection endpoint's
// answers never panics and reports active only for a JSON object whose
// active member is the boolean true, with claims.
func FuzzParseIntrospection(f *testing.F) {
	for _, s := range []string{
		`{"active":true,"scope":"a b","client_id":"c","sub":"s","exp":1900000000,"aud":["x"],"iss":"https://a"}`,
		`{"active":false}`, `{"active":"true"}`, `{}`, `null`, `[]`, `{"active":true,"scope":["a"]}`,
		`{"active":true,"exp":1.5e9,"nbf":0}`, `{"active":true,"active":false}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		active, c, err := parseIntrospection(body)
		if err != nil && active {
			t.Fatal("active with an error")
		}
		if active && c == nil {
			t.Fatal("active without claims")
		}
		if active {
			_ = c.ScopeText()
			_, _ = c.Claim("active")
			_ = checkIntrospected(c, "https://a", time.Now())
		}
	})
}
