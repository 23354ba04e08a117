package caddyoauth

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddyapigw/gateway/internal/oauthmetrics"
)

// Prometheus series of what people do: sign-ins, consents, refresh
// rotations, sessions. Process-wide like the others (a reload keeps the
// counts); every label value is from a fixed list. They are counters, not
// gauges: sessions and refresh tokens live in the store every instance of
// a cluster shares, so a per-instance gauge of "sessions active" would be
// wrong on every instance. Summed over instances, the counters are exact.

// Results of a sign-in attempt (oauth_signins_total).
const (
	signinSuccess       = "success"
	signinWrongPassword = "wrong_password" // or an unknown user: one answer for both
	signinLocked        = "locked"         // refused: the account had too many failures
	signinThrottled     = "throttled"      // refused: the address had too many failures
	signinBusy          = "busy"           // no slow-hash slot came free: not checked
	signinError         = "error"          // the user directory did not answer
)

var signins = oauthmetrics.NewFixed(prometheus.CounterOpts{
	Namespace: "oauth", Name: "signins_total",
	Help: "Sign-in attempts at the login page, by result (success, wrong_password, locked, throttled, busy, error).",
}, "result", signinSuccess, signinWrongPassword, signinLocked, signinThrottled, signinBusy, signinError)

// Decisions on the consent page and the account page (oauth_consents_total).
const (
	consentGranted   = "granted"
	consentDenied    = "denied"
	consentWithdrawn = "withdrawn"
)

var consents = oauthmetrics.NewFixed(prometheus.CounterOpts{
	Namespace: "oauth", Name: "consents_total",
	Help: "Consent decisions: granted or denied on the consent page, withdrawn on the account page.",
}, "decision", consentGranted, consentDenied, consentWithdrawn)

// Outcomes of presenting a refresh token that was issued
// (oauth_refresh_tokens_total).
const (
	refreshRotated = "rotated"        // a new refresh token replaced it
	refreshReuse   = "reuse_detected" // it had been used: its family is revoked
)

var refreshes = oauthmetrics.NewFixed(prometheus.CounterOpts{
	Namespace: "oauth", Subsystem: "refresh", Name: "tokens_total",
	Help: "Refresh tokens presented at the token endpoint that were rotated, or found reused (their family revoked).",
}, "result", refreshRotated, refreshReuse)

// Sessions started (sign-in, sign-up) and ended by signing out
// (oauth_sessions_total). A session that lapses (session_ttl without use,
// session_max_ttl after sign-in) ends in the store without an event.
const (
	sessionStarted   = "started"
	sessionSignedOut = "signed_out"
)

var sessions = oauthmetrics.NewFixed(prometheus.CounterOpts{
	Namespace: "oauth", Name: "sessions_total",
	Help: "Login sessions started, and ended by signing out (lapsed sessions are not counted).",
}, "event", sessionStarted, sessionSignedOut)

// registerPeopleMetrics adds the collectors to a configuration's registry.
func registerPeopleMetrics(reg prometheus.Registerer) error {
	return oauthmetrics.Register(reg, signins.Vec, consents.Vec, refreshes.Vec, sessions.Vec)
}
