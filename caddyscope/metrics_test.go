package caddyscope

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/caddyapigw/gateway/internal/bearer"
)

func decisions(route, outcome, reason string) float64 {
	return testutil.ToFloat64(scopeMetrics.decisions.WithLabelValues(route, outcome, reason))
}

func responses(route, client, class string) float64 {
	return testutil.ToFloat64(scopeMetrics.responses.WithLabelValues(route, client, class))
}

// TestMetricsDecisions: each refusal is counted under its reason, each
// accepted request under accepted, each check in the validation histogram,
// and the answers of the rest of the route per client and status class
// (a 429 that rate_limit returns as a handler error included).
func TestMetricsDecisions(t *testing.T) {
	f := newFixture(t)
	const route = "metrics-test-route"
	h := newHandler(t, f, &Scope{Name: route, Rules: []Rule{{Methods: []string{"GET", "POST"}, Scopes: []string{"user:read"}}}})
	good := "Bearer " + f.token(t, claims("user:read", nil))
	before := map[string]float64{}
	for _, r := range []string{"missing", "malformed", "insufficient_scope", "method_not_allowed", "wrong_audience"} {
		before[r] = decisions(route, "refused", r)
	}
	acc, ok2xx, ok429 := decisions(route, "accepted", ""), responses(route, testClientID, "2xx"), responses(route, testClientID, "429")
	hist := testutil.CollectAndCount(scopeMetrics.validation)
	cache := func(result string) float64 {
		return testutil.ToFloat64(scopeMetrics.cache.WithLabelValues(route, result))
	}
	hits, misses := cache("hit"), cache("miss")

	steps := []struct {
		method, authz string
		next          func(w http.ResponseWriter) error
	}{
		{"GET", "", nil},
		{"GET", "Bearer a.b.c", nil},
		{"GET", "Bearer " + f.token(t, claims("notes:read", nil)), nil},
		{"DELETE", good, nil},
		{"GET", "Bearer " + f.token(t, claims("user:read", map[string]any{"aud": "https://elsewhere"})), nil},
		{"GET", good, func(w http.ResponseWriter) error { w.WriteHeader(http.StatusCreated); return nil }},
		{"POST", good, func(w http.ResponseWriter) error {
			return caddyhttp.Error(http.StatusTooManyRequests, nil)
		}},
	}
	for _, st := range steps {
		var authz []string
		if st.authz != "" {
			authz = append(authz, st.authz)
		}
		r, _ := newRequest(st.method, "/", authz...)
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
			if st.next != nil {
				return st.next(w)
			}
			return nil
		})
		_ = h.ServeHTTP(httptest.NewRecorder(), r, next)
	}
	for r, b := range before {
		if got := decisions(route, "refused", r); got != b+1 {
			t.Errorf("refused/%s: %v, want %v", r, got, b+1)
		}
	}
	if got := decisions(route, "accepted", ""); got != acc+2 {
		t.Errorf("accepted: %v, want %v", got, acc+2)
	}
	if got := responses(route, testClientID, "2xx"); got != ok2xx+1 {
		t.Errorf("2xx for the client: %v, want %v", got, ok2xx+1)
	}
	if got := responses(route, testClientID, "429"); got != ok429+1 {
		t.Errorf("429 for the client: %v, want %v", got, ok429+1)
	}
	// Checked tokens: a.b.c, notes:read, elsewhere and the first use of
	// good missed the cache; its second use hit it (the missing token and
	// the refused method were refused before any check).
	if h, m := cache("hit")-hits, cache("miss")-misses; h != 1 || m != 4 {
		t.Errorf("cache: %v hits and %v misses, want 1 and 4", h, m)
	}
	if testutil.CollectAndCount(scopeMetrics.validation) < hist {
		t.Error("validation histogram lost series")
	}
}

// TestMetricsReasonsKnown: every description a refusal can carry has its
// own reason label, so no refusal lands in "other".
func TestMetricsReasonsKnown(t *testing.T) {
	for desc, reason := range reasons {
		if got := refusalReason(&bearer.Error{Status: http.StatusUnauthorized, Desc: desc}); got != reason || got == "other" {
			t.Errorf("%q: reason %q", desc, got)
		}
	}
	for _, err := range []error{errIssuerNotTrusted, errNoIssuerClaim, errNotIntrospected, errTokenInactive,
		&unavailableError{issuer: "x", err: errIssuerNotTrusted}} {
		if _, ok := reasons[describe(err)]; !ok {
			t.Errorf("describe(%v) = %q has no reason label", err, describe(err))
		}
	}
}

// TestMetricsSurviveReload: a new configuration's registry gets the same
// collectors (no error for registering them again), with their counts.
func TestMetricsSurviveReload(t *testing.T) {
	first, second := prometheus.NewPedanticRegistry(), prometheus.NewPedanticRegistry()
	if err := registerScopeMetrics(first); err != nil {
		t.Fatal(err)
	}
	if err := registerScopeMetrics(first); err != nil {
		t.Fatalf("registering twice in one registry: %v", err)
	}
	scopeMetrics.decisions.WithLabelValues("reload-route", "accepted", "").Inc()
	if err := registerScopeMetrics(second); err != nil {
		t.Fatal(err)
	}
	n, err := testutil.GatherAndCount(second, "oauth_scope_decisions_total")
	if err != nil || n == 0 {
		t.Fatalf("the new registry has %d decision series: %v", n, err)
	}
	if got := decisions("reload-route", "accepted", ""); got < 1 {
		t.Errorf("count lost: %v", got)
	}
}

// BenchmarkRouteMetrics measures what the metrics add to one accepted
// request (BenchmarkScopeServeHTTP): the validation observation, the cache
// count, the accepted count and the per-client answer count.
func BenchmarkRouteMetrics(b *testing.B) {
	m := newRouteMetrics("bench-route")
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.observe(start, true)
		m.accepted.Inc()
		m.response(testClientID, http.StatusOK, nil)
	}
}

// TestMetricsCacheIntrospected: on a route with other issuers, an opaque
// token's first use is a cache miss and one introspection call, counted
// under its issuer; its second use is a hit without a call.
func TestMetricsCacheIntrospected(t *testing.T) {
	as := newTestAS(t, "", "none")
	s := introspectingScope(as, nil)
	s.Name = "metrics-introspected-route"
	h, _ := issuerHandler(t, nil, s)
	as.answer("opaque-metrics", activeAnswer(as, "user:read", time.Now().Add(time.Hour), nil))
	cache := func(result string) float64 {
		return testutil.ToFloat64(scopeMetrics.cache.WithLabelValues(s.Name, result))
	}
	calls := func() float64 {
		return testutil.ToFloat64(scopeMetrics.issuer.WithLabelValues(as.issuer, "introspection", "ok"))
	}
	hits, misses, calls0 := cache("hit"), cache("miss"), calls()
	mustAccept(t, get(t, h, "opaque-metrics"))
	mustAccept(t, get(t, h, "opaque-metrics"))
	if h, m := cache("hit")-hits, cache("miss")-misses; h != 1 || m != 1 {
		t.Errorf("cache: %v hits and %v misses, want 1 and 1", h, m)
	}
	if got := calls() - calls0; got != 1 {
		t.Errorf("introspection calls counted: %v, want 1", got)
	}
}
