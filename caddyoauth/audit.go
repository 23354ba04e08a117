package caddyoauth

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthmetrics"
	"github.com/caddyapigw/gateway/internal/reqinfo"
)

// Security events. Each is emitted as a Caddy event named "oauth.<name>"
// (so `events` handlers and plugins can subscribe) and written as one JSON
// line to the logger "oauth.audit" (so `log { include oauth.audit }` sends
// them to their own file). Their data: the client, the user, the remote
// address and the reason, never a secret, token, code or password.
const (
	eventTokenIssued          = "token_issued"
	eventTokenRefused         = "token_refused"
	eventRefreshReuseDetected = "refresh_reuse_detected"
	eventLoginSucceeded       = "login_succeeded"
	eventLoginFailed          = "login_failed"
	eventAccountLocked        = "account_locked"
	eventConsentWithdrawn     = "consent_withdrawn"
	eventClientRevoked        = "client_revoked"
	eventClientRegistered     = "client_registered" // RFC 7591
	eventKeyRotated           = "key_rotated"
	eventKeyRestored          = "key_restored"
)

// securityEvents counts the events, by name (oauth_security_events_total).
var securityEvents = oauthmetrics.NewFixed(prometheus.CounterOpts{
	Namespace: "oauth", Name: "security_events_total",
	Help: "Security events (the oauth.audit log and Caddy events), by event.",
}, "event", eventTokenIssued, eventTokenRefused, eventRefreshReuseDetected, eventLoginSucceeded,
	eventLoginFailed, eventAccountLocked, eventConsentWithdrawn, eventClientRevoked, eventKeyRotated, eventClientRegistered)

// maxEventValue bounds a value that came from a request (a client_id or a
// username someone typed), so an event cannot carry a megabyte of input.
const maxEventValue = 128

// auditor sends security events to Caddy's events app and the audit log.
type auditor struct {
	ctx    caddy.Context    // the app's; nil in tests without Caddy
	events *caddyevents.App // nil without ctx
	log    *zap.Logger      // "oauth.audit"
}

// attach finds Caddy's events app (loading it if the configuration has
// none, as caddytls does), so events reach its subscribers.
func (au *auditor) attach(ctx caddy.Context) error {
	ev, err := ctx.App("events")
	if err != nil {
		return fmt.Errorf("events: %v", err)
	}
	au.ctx, au.events = ctx, ev.(*caddyevents.App)
	return nil
}

// emit records event name with data; r, when there is one, gives the
// remote address. Values of data are strings.
func (au *auditor) emit(r *http.Request, name string, data map[string]any) {
	if au == nil {
		return
	}
	securityEvents.Inc(name)
	if r != nil {
		data["remote_ip"] = reqinfo.ClientIP(r)
	}
	for k, v := range data {
		if s, ok := v.(string); ok && len(s) > maxEventValue {
			data[k] = s[:maxEventValue] + "…"
		}
	}
	if ce := au.log.Check(zap.InfoLevel, name); ce != nil {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fields := make([]zap.Field, 0, len(keys)+1)
		fields = append(fields, zap.String("event", "oauth."+name))
		for _, k := range keys {
			fields = append(fields, zap.Any(k, data[k]))
		}
		ce.Write(fields...)
	}
	if au.events != nil && au.events.ShouldEmit("oauth."+name) {
		au.events.Emit(au.ctx, "oauth."+name, data)
	}
}
