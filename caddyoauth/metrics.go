package caddyoauth

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddyapigw/gateway/internal/oauthmetrics"
)

// Prometheus series of the token endpoint, in Caddy's registry: made once
// per process, registered into each configuration's registry, so a reload
// keeps the counts. Labels are bounded: clients are authenticated ones
// (capped by oauthmetrics), grants and error codes come from fixed lists.
// The children of the fixed label values are resolved once, so a token
// request costs array lookups, not label hashing; a client's are resolved
// at its first token and cached.
var tokenMetrics = struct {
	once     sync.Once
	issued   *prometheus.CounterVec
	refused  *prometheus.CounterVec
	duration *prometheus.HistogramVec

	grants      []string               // grant label values: the known grants, "none", "other"
	durationBy  []prometheus.Observer  // by grant index
	refusedBy   [][]prometheus.Counter // by grant index, then errorCodes index ("other" last)
	issuedByCli sync.Map               // client label → []prometheus.Counter by grant index
}{}

func initTokenMetrics() {
	tokenMetrics.once.Do(func() {
		tokenMetrics.issued = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "oauth", Subsystem: "token", Name: "issued_total",
			Help: "Access tokens the token endpoint issued, by client and grant type.",
		}, []string{"client", "grant"})
		tokenMetrics.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "oauth", Subsystem: "token", Name: "refused_total",
			Help: "Token requests refused, by grant type and OAuth error code (RFC 6749 §5.2).",
		}, []string{"grant", "error"})
		tokenMetrics.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "oauth", Subsystem: "token", Name: "request_duration_seconds",
			Help:    "Time the token endpoint took to answer, by grant type.",
			Buckets: []float64{1e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1, 5},
		}, []string{"grant"})
		for _, g := range grants {
			tokenMetrics.grants = append(tokenMetrics.grants, g.name)
		}
		tokenMetrics.grants = append(tokenMetrics.grants, "none", "other")
		codes := append(append([]string(nil), errorCodes...), "other")
		for _, g := range tokenMetrics.grants {
			tokenMetrics.durationBy = append(tokenMetrics.durationBy, tokenMetrics.duration.WithLabelValues(g))
			row := make([]prometheus.Counter, len(codes))
			for i, c := range codes {
				row[i] = tokenMetrics.refused.WithLabelValues(g, c)
			}
			tokenMetrics.refusedBy = append(tokenMetrics.refusedBy, row)
		}
	})
}

// registerTokenMetrics adds the collectors to a configuration's registry.
func registerTokenMetrics(reg prometheus.Registerer) error {
	initTokenMetrics()
	return oauthmetrics.Register(reg, tokenMetrics.issued, tokenMetrics.refused, tokenMetrics.duration)
}

// errorCodes are the error label values; anything else is "other".
var errorCodes = []string{
	errInvalidRequest, errInvalidClient, errInvalidGrant, errUnauthorizedClient,
	errUnsupportedGrantType, errInvalidScope, errServerError, errInvalidTarget, errTemporarilyUnavailable,
	errInvalidDPoPProof, errUseDPoPNonce,
}

// grantIndex is the index in tokenMetrics.grants of grantType's label: a
// grant type this server knows, "none" or "other" (grant_type is the
// caller's input).
func grantIndex(grantType string) int {
	for i, g := range grants {
		if g.name == grantType {
			return i
		}
	}
	if grantType == "" {
		return len(grants)
	}
	return len(grants) + 1
}

// grantLabel bounds the grant label.
func grantLabel(grantType string) string {
	initTokenMetrics()
	return tokenMetrics.grants[grantIndex(grantType)]
}

// errorIndex is the index of code in errorCodes, or len(errorCodes) for
// "other".
func errorIndex(code string) int {
	for i, c := range errorCodes {
		if c == code {
			return i
		}
	}
	return len(errorCodes)
}

// observeToken counts one token request: issued to client (non-nil) or
// refused with oerr.
func observeToken(start time.Time, grantType string, client *Client, oerr *oauthError) {
	initTokenMetrics()
	g := grantIndex(grantType)
	tokenMetrics.durationBy[g].Observe(time.Since(start).Seconds())
	if oerr == nil && client != nil {
		label := oauthmetrics.ClientLabels.Label(client.ID)
		v, ok := tokenMetrics.issuedByCli.Load(label)
		if !ok {
			v, _ = tokenMetrics.issuedByCli.LoadOrStore(label, make([]atomic.Pointer[prometheus.Counter], len(tokenMetrics.grants)))
		}
		slot := &v.([]atomic.Pointer[prometheus.Counter])[g]
		c := slot.Load()
		if c == nil {
			// Resolved at the client's first token of this grant (two
			// requests racing here resolve the same child).
			child := tokenMetrics.issued.WithLabelValues(label, tokenMetrics.grants[g])
			c = &child
			slot.Store(c)
		}
		(*c).Inc()
		return
	}
	code := ""
	if oerr != nil {
		code = oerr.Code
	}
	tokenMetrics.refusedBy[g][errorIndex(code)].Inc()
}
