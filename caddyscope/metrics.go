package caddyscope

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddyapigw/gateway/internal/bearer"
	"github.com/caddyapigw/gateway/internal/mtls"
	"github.com/caddyapigw/gateway/internal/oauthmetrics"
)

// Prometheus series of oauth_scope, in Caddy's metrics registry (its
// /metrics, on the admin endpoint or a `metrics` handler). The collectors
// are made once per process and registered into each configuration's
// registry, so a reload keeps the counts (the pattern of reverse_proxy's
// metrics). Label values are bounded: route names come from the
// configuration, outcomes and reasons from fixed lists, clients from
// accepted tokens only, capped (oauthmetrics.MaxClientLabels).
var scopeMetrics = struct {
	once       sync.Once
	decisions  *prometheus.CounterVec
	validation *prometheus.HistogramVec
	responses  *prometheus.CounterVec
	issuer     *prometheus.CounterVec
	cache      *prometheus.CounterVec
}{}

func initScopeMetrics() {
	scopeMetrics.once.Do(func() {
		scopeMetrics.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "oauth", Subsystem: "scope", Name: "decisions_total",
			Help: "Requests oauth_scope let through (outcome accepted) or refused (refused, unavailable), by route and reason.",
		}, []string{"route", "outcome", "reason"})
		scopeMetrics.validation = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "oauth", Subsystem: "scope", Name: "validation_seconds",
			Help:    "Time oauth_scope took to check a token (cached, verified, or introspected).",
			Buckets: []float64{1e-6, 5e-6, 2e-5, 1e-4, 5e-4, 2e-3, 1e-2, 5e-2, 0.25, 1, 5},
		}, []string{"route"})
		scopeMetrics.responses = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "oauth", Subsystem: "scope", Name: "responses_total",
			Help: "Answers to requests oauth_scope let through, after the rest of the route ran (rate_limit, reverse_proxy), by route, client and status class (2xx, 3xx, 429, 4xx, 5xx).",
		}, []string{"route", "client", "class"})
		scopeMetrics.cache = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "oauth", Subsystem: "scope", Name: "cache_total",
			Help: "Token checks answered from oauth_scope's cache of checked tokens (hit) or by a signature check or an issuer (miss), by route.",
		}, []string{"route", "result"})
		scopeMetrics.issuer = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "oauth", Subsystem: "issuer", Name: "requests_total",
			Help: "Calls to other issuers: metadata discovery, JWKS fetches and introspections, by issuer, kind and result (ok, error).",
		}, []string{"issuer", "kind", "result"})
	})
}

// errJWKSFetch marks a failed JWKS fetch for countIssuerCall.
var errJWKSFetch = errors.New("JWKS fetch failed")

// countIssuerCall counts one call to a configured issuer (the issuer label
// comes from the configuration).
func countIssuerCall(issuer, kind string, err error) {
	initScopeMetrics()
	result := "ok"
	if err != nil {
		result = "error"
	}
	scopeMetrics.issuer.WithLabelValues(issuer, kind, result).Inc()
}

// registerScopeMetrics adds the collectors to a configuration's registry.
func registerScopeMetrics(reg prometheus.Registerer) error {
	initScopeMetrics()
	return oauthmetrics.Register(reg, scopeMetrics.decisions, scopeMetrics.validation, scopeMetrics.responses, scopeMetrics.issuer, scopeMetrics.cache)
}

// routeMetrics is one route's curried collectors, resolved at provision so
// that an accepted request costs an increment and an observation.
type routeMetrics struct {
	route      string
	accepted   prometheus.Counter
	validation prometheus.Observer
	hits       prometheus.Counter
	misses     prometheus.Counter
	byClient   sync.Map // client label (its id, or "other") → *[len(statusClasses)]prometheus.Counter
}

// statusClasses are the class label values of oauth_scope_responses_total.
var statusClasses = [...]string{"2xx", "3xx", "429", "4xx", "5xx"}

func newRouteMetrics(route string) *routeMetrics {
	initScopeMetrics()
	return &routeMetrics{
		route:      route,
		accepted:   scopeMetrics.decisions.WithLabelValues(route, "accepted", ""),
		validation: scopeMetrics.validation.WithLabelValues(route),
		hits:       scopeMetrics.cache.WithLabelValues(route, "hit"),
		misses:     scopeMetrics.cache.WithLabelValues(route, "miss"),
	}
}

// refused counts a refusal.
func (m *routeMetrics) refused(e *bearer.Error) {
	outcome := "refused"
	if e.Status == http.StatusServiceUnavailable {
		outcome = "unavailable"
	}
	scopeMetrics.decisions.WithLabelValues(m.route, outcome, refusalReason(e)).Inc()
}

// observe records how long a token check took and whether the cache of
// checked tokens answered it.
func (m *routeMetrics) observe(start time.Time, hit bool) {
	m.validation.Observe(time.Since(start).Seconds())
	if hit {
		m.hits.Inc()
	} else {
		m.misses.Inc()
	}
}

// response counts the answer to an accepted request: status is what the
// rest of the route wrote, err what it returned (a handler error's status
// is what handle_errors will answer).
func (m *routeMetrics) response(client string, status int, err error) {
	if err != nil {
		status = http.StatusInternalServerError
		var he caddyhttp.HandlerError
		if errors.As(err, &he) {
			status = he.StatusCode
		}
	}
	// A client with a label of its own is found by its id in one map
	// read; the rest share the counters of "other" and are not kept.
	v, ok := m.byClient.Load(client)
	if !ok {
		label := oauthmetrics.ClientLabels.Label(client)
		if v, ok = m.byClient.Load(label); !ok {
			var cs [len(statusClasses)]prometheus.Counter
			for i, class := range statusClasses {
				cs[i] = scopeMetrics.responses.WithLabelValues(m.route, label, class)
			}
			v, _ = m.byClient.LoadOrStore(label, &cs)
		}
	}
	v.(*[len(statusClasses)]prometheus.Counter)[statusClassIndex(status)].Inc()
}

// statusClassIndex is the index in statusClasses of status's class.
func statusClassIndex(status int) int {
	switch {
	case status == http.StatusTooManyRequests:
		return 2
	case status >= 500:
		return 4
	case status >= 400:
		return 3
	case status >= 300:
		return 1
	}
	return 0
}

// reasons maps the refusal descriptions to the reason label.
var reasons = map[string]string{
	"bearer token required":                      "missing",
	"token malformed":                            "malformed",
	"token too large":                            "malformed",
	"token expired":                              "expired",
	"token not yet valid":                        "not_yet_valid",
	"token signature invalid":                    "bad_signature",
	"token signed by an unknown key":             "unknown_key",
	"token audience not accepted":                "wrong_audience",
	"token issuer not accepted":                  "wrong_issuer",
	"token is not an access token":               "not_access_token",
	"token lacks a required claim":               "missing_claim",
	"token not active":                           "inactive",
	"token revoked":                              "revoked",
	"token client is not registered":             "unknown_client",
	"token lacks a required scope":               "insufficient_scope",
	"token lacks a required role":                "missing_role",
	"token could not be checked with its issuer": "issuer_unavailable",
	"this method is not allowed on this route":   "method_not_allowed",
	"more than one Authorization header":         "invalid_request",
	mtls.NoCertificate:                           "cert_binding",
	mtls.OtherCertificate:                        "cert_binding",
}

// refusalReason is the reason label of a refusal.
func refusalReason(e *bearer.Error) string {
	if r, ok := reasons[e.Desc]; ok {
		return r
	}
	switch e.Code {
	case bearer.InvalidDPoPProof:
		return "invalid_dpop_proof" // RFC 9449 §7.1: the proof, not the token
	case bearer.UseDPoPNonce:
		return "use_dpop_nonce"
	}
	if e.DPoP != nil && e.Code == bearer.InvalidToken {
		return "dpop_binding" // a bound token as bearer, or the DPoP scheme without one
	}
	switch e.Status {
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusServiceUnavailable:
		return "issuer_unavailable"
	}
	return "other"
}

// statusRecorder notes the status the rest of the route writes.
type statusRecorder struct {
	caddyhttp.ResponseWriterWrapper
	status int
}

func (w *statusRecorder) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.status = status
	}
	w.ResponseWriterWrapper.WriteHeader(status)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriterWrapper.Write(b)
}
