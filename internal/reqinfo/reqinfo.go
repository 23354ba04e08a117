// Package reqinfo reads facts about a request that Caddy's HTTP server
// records, for both modules.
package reqinfo

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// ClientIP is the client's address as Caddy's access log names it (the
// trusted-proxy-aware client_ip), or the peer's address outside Caddy.
func ClientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return r.RemoteAddr
}
