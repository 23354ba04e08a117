package caddyoauth

import (
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddyapigw/gateway/internal/oauthmetrics"
)

// Prometheus series of the token endpoint, in Caddy's registry: made once
// per process, registered into each configuration's registry, so a reload
// keeps the counts. Labels are bounded: clients are authenticated ones
// (capped by oauthmetrics), grants and error codes come from fixed lists.
var tokenMetrics = struct {
	once     sync.Once
	issued   *prometheus.CounterVec
	refused  *prometheus.CounterVec
	duration *prometheus.HistogramVec
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

// grantLabel bounds the grant label: a grant type this server knows, or
// "other" (grant_type is the caller's input).
func grantLabel(grantType string) string {
	if _, ok := findGrant(grantType); ok {
		return grantType
	}
	if grantType == "" {
		return "none"
	}
	return "other"
}

// observeToken counts one token request: issued to client (non-nil) or
// refused with oerr.
func observeToken(start time.Time, grantType string, client *Client, oerr *oauthError) {
	initTokenMetrics()
	grant := grantLabel(grantType)
	tokenMetrics.duration.WithLabelValues(grant).Observe(time.Since(start).Seconds())
	if oerr == nil && client != nil {
		tokenMetrics.issued.WithLabelValues(oauthmetrics.ClientLabels.Label(client.ID), grant).Inc()
		return
	}
	code := "other"
	if oerr != nil && slices.Contains(errorCodes, oerr.Code) {
		code = oerr.Code
	}
	tokenMetrics.refused.WithLabelValues(grant, code).Inc()
}
