package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// series is one sample of a Prometheus text exposition.
type series struct {
	name   string
	labels map[string]string
	value  float64
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// scrape reads the gateway's /metrics from its admin endpoint.
func (g *gateway) scrape(t *testing.T) []series {
	t.Helper()
	resp, err := http.Get(g.adminURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	var out []series
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := sampleLine.FindStringSubmatch(sc.Text())
		if m == nil || strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		s := series{name: m[1], labels: map[string]string{}, value: v}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			s.labels[p[1]] = p[2]
		}
		out = append(out, s)
	}
	return out
}

// sum adds the samples of name whose labels include want.
func sum(all []series, name string, want map[string]string) float64 {
	var total float64
next:
	for _, s := range all {
		if s.name != name {
			continue
		}
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		total += s.value
	}
	return total
}

// TestMetricsE2E: after a scripted run against the example, Caddy's
// /metrics holds oauth_scope's counts: each refusal under its reason, the
// accepted requests, and the answers per client, 429s from rate_limit
// included; the token endpoint's issued tokens per client and grant; no
// token appears in the exposition.
func TestMetricsE2E(t *testing.T) {
	g := startExample(t)
	users := g.url("/api/users")
	tok := g.token(reportsClient)
	notesOnly, status, body := g.resourceToken(reportsClient, g.url("/api/notes"))
	if status != http.StatusOK {
		t.Fatalf("token: %d %s", status, body)
	}

	if _, status, _ := g.resourceToken(reportsClient, g.url("/api/admin")); status != http.StatusBadRequest {
		t.Fatalf("a resource the client may not have: %d", status)
	}
	g.do("GET", "/api/users", "", nil)            // missing
	g.do("GET", "/api/users", "not.a.token", nil) // malformed
	g.do("POST", "/api/users", tok, nil)          // insufficient_scope
	g.do("GET", "/api/users", notesOnly, nil)     // wrong_audience
	g.do("TRACE", "/api/users", tok, nil)         // method_not_allowed
	const calls = 105                             // the standard tier allows 100 a minute
	for range calls {
		g.do("GET", "/api/users/1", tok, nil)
	}
	before := g.scrape(t) // the counters that start from zero at startup are read as deltas
	people := scriptPeople(t, g)
	resp, err := http.Post(g.adminURL("/oauth/keys/rotate"), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("key rotation: %d", resp.StatusCode)
	}

	all := g.scrape(t)
	moved := func(name string, labels map[string]string) float64 {
		return sum(all, name, labels) - sum(before, name, labels)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"oauth_signins_total", map[string]string{"result": "wrong_password"}, 1},
		{"oauth_signins_total", map[string]string{"result": "success"}, 1},
		{"oauth_signins_total", map[string]string{"result": "locked"}, 0},
		{"oauth_consents_total", map[string]string{"decision": "granted"}, 1},
		{"oauth_sessions_total", map[string]string{"event": "started"}, 1},
		{"oauth_refresh_tokens_total", map[string]string{"result": "rotated"}, 2},
		{"oauth_refresh_tokens_total", map[string]string{"result": "reuse_detected"}, 1},
		{"oauth_security_events_total", map[string]string{"event": "refresh_reuse_detected"}, 1},
		{"oauth_security_events_total", map[string]string{"event": "login_failed"}, 1},
		{"oauth_token_issued_total", map[string]string{"client": spaClient, "grant": "authorization_code"}, 1},
		{"oauth_token_issued_total", map[string]string{"client": spaClient, "grant": "refresh_token"}, 2},
		{"oauth_token_refused_total", map[string]string{"grant": "refresh_token", "error": "invalid_grant"}, 1},
		{"oauth_signing_key_rotations_total", map[string]string{"key": "access_token", "trigger": "admin"}, 1},
	} {
		if got := moved(c.name, c.labels); got != c.want {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The password checks took slow-hash slots, free on an idle gateway.
	if got := moved("oauth_slow_hash_slots_total", map[string]string{"result": "free"}); got < people.passwordChecks {
		t.Errorf("slow-hash slots taken: %v, want at least %v", got, people.passwordChecks)
	}
	if age := sum(all, "oauth_signing_key_age_seconds", nil); age < 0 || age > 60 || !has(all, "oauth_signing_key_age_seconds") {
		t.Errorf("the active key, rotated just now, is %v s old", age)
	}
	// oauth_scope's cache: tok and notesOnly were issued by this gateway,
	// which remembered them at issuance (docs/performance.md, a token seen
	// once), so even their first use (the refused POST, the wrong-audience
	// GET) is a hit, and so is every GET; only not.a.token was checked.
	if hit, miss := sum(all, "oauth_scope_cache_total", map[string]string{"route": users, "result": "hit"}),
		sum(all, "oauth_scope_cache_total", map[string]string{"route": users, "result": "miss"}); hit != calls+2 || miss != 1 {
		t.Errorf("cache of route %s: %v hits and %v misses, want %d and 1", users, hit, miss, calls+2)
	}
	route := map[string]string{"route": users}
	for reason, want := range map[string]float64{"missing": 1, "malformed": 1, "insufficient_scope": 1, "wrong_audience": 1, "method_not_allowed": 1} {
		got := sum(all, "oauth_scope_decisions_total", map[string]string{"route": users, "outcome": "refused", "reason": reason})
		if got != want {
			t.Errorf("refused/%s: %v, want %v", reason, got, want)
		}
	}
	if got := sum(all, "oauth_scope_decisions_total", map[string]string{"route": users, "outcome": "accepted"}); got != calls {
		t.Errorf("accepted: %v, want %d", got, calls)
	}
	ok := sum(all, "oauth_scope_responses_total", map[string]string{"route": users, "client": reportsClient.id, "class": "2xx"})
	limited := sum(all, "oauth_scope_responses_total", map[string]string{"route": users, "client": reportsClient.id, "class": "429"})
	if ok != 100 || limited != calls-100 {
		t.Errorf("answers to %s: %v 2xx and %v 429, want 100 and %d", reportsClient.id, ok, limited, calls-100)
	}
	if n := sum(all, "oauth_scope_validation_seconds_count", route); n < calls {
		t.Errorf("validation observations: %v, want at least %d", n, calls)
	}
	cc := map[string]string{"client": reportsClient.id, "grant": "client_credentials"}
	if got := sum(all, "oauth_token_issued_total", cc); got != 2 {
		t.Errorf("tokens issued to %s: %v, want 2", reportsClient.id, got)
	}
	if got := sum(all, "oauth_token_refused_total", map[string]string{"grant": "client_credentials", "error": "invalid_target"}); got != 1 {
		t.Errorf("invalid_target refusals: %v, want 1", got)
	}
	// Two client-credentials tokens, a code exchange and two refreshes.
	if got := sum(all, "oauth_security_events_total", map[string]string{"event": "token_issued"}); got != 5 {
		t.Errorf("token_issued events: %v, want 5", got)
	}
	if got := sum(all, "oauth_store_operation_seconds_count", map[string]string{"backend": "caddy"}); got == 0 {
		t.Error("no store operation timed")
	}
	for _, s := range all {
		for _, v := range s.labels {
			if strings.Contains(v, tok[:30]) || strings.Contains(v, "not.a.token") {
				t.Fatalf("a token in the metrics: %s %v", s.name, s.labels)
			}
		}
	}
}

// has reports whether a sample of name is in all.
func has(all []series, name string) bool {
	for _, s := range all {
		if s.name == name {
			return true
		}
	}
	return false
}

// peopleRun is what scriptPeople did.
type peopleRun struct{ passwordChecks float64 }

// scriptPeople runs a person through the example's pages and the token
// endpoint: a wrong password, a sign-in with consent, a code exchange,
// two refresh rotations and a reuse of the first refresh token.
func scriptPeople(t *testing.T, g *gateway) peopleRun {
	t.Helper()
	p := newPerson(t)
	verifier, challenge := pkcePair()
	q := url.Values{
		"response_type": {"code"}, "client_id": {spaClient}, "redirect_uri": {g.url("/demo/callback")},
		"scope": {"notes:read notes:write"}, "state": {"s1"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	_, page := p.get(g, "/oauth2/authorize?"+q.Encode())
	if !strings.Contains(page, `name="password"`) {
		t.Fatalf("no login page: %s", page)
	}
	if resp := p.submit(g, "/oauth2/login", page, url.Values{"username": {demoUser}, "password": {"not-the-password"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	first := exchange(t, g, p.code(g, challenge), verifier)
	rt1 := first.str("refresh_token")
	if first.status != http.StatusOK || rt1 == "" {
		t.Fatalf("code exchange: %d %v", first.status, first.body)
	}
	rememberSecret(rt1)
	second := refresh(t, g, rt1)
	if second.status != http.StatusOK {
		t.Fatalf("refresh: %d %v", second.status, second.body)
	}
	rememberSecret(second.str("refresh_token"))
	if third := refresh(t, g, second.str("refresh_token")); third.status != http.StatusOK {
		t.Fatalf("second refresh: %d %v", third.status, third.body)
	}
	if r := refresh(t, g, rt1); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
		t.Fatalf("reuse of the first refresh token: %d %v", r.status, r.body)
	}
	return peopleRun{passwordChecks: 2}
}

// TestReadinessE2E: the admin API's readiness endpoint answers 200 for the
// example (store, keys), and 503 naming the issuer while an issuer that a
// route trusts cannot be reached.
func TestReadinessE2E(t *testing.T) {
	needBinary(t)
	p := newPorts(t)
	down := "http://127.0.0.1:" + strconv.Itoa(freePorts(t, 1)[0]) // nothing listens there
	cfg := insertRoute(t, exampleCaddyfile(t, p), partnerRoute(p, down, "\t\t\t\taudience https://api.example\n\t\t\t\ttimeout 1s"))
	g := startGateway(t, p, cfg, "")
	var ans struct {
		Ready  bool
		Checks []struct {
			Name  string
			Ready bool
			Error string
		}
	}
	resp, err := http.Get(g.adminURL("/oauth/ready"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(body, &ans); err != nil {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || ans.Ready {
		t.Fatalf("issuer down: %d %s", resp.StatusCode, body)
	}
	var store, issuer bool
	for _, c := range ans.Checks {
		store = store || (c.Name == "store" && c.Ready)
		issuer = issuer || (c.Name == "issuer "+down && !c.Ready && c.Error != "")
	}
	if !store || !issuer {
		t.Errorf("checks %s: want the store ready and the issuer not, with a reason", body)
	}

	ok := startExample(t)
	resp, err = http.Get(ok.adminURL("/oauth/ready"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"ready":true`) {
		t.Fatalf("example: %d %s", resp.StatusCode, body)
	}
}
