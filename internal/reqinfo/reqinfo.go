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

// URL is the absolute URL the client sent the request to, without query:
// the scheme of the connection, the Host header and the path as the
// client wrote it (before any rewrite by Caddy handlers), which is what a
// DPoP proof's htu names (RFC 9449 §4.3 item 9).
func URL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	path := r.URL.EscapedPath()
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		path = orig.URL.EscapedPath()
	}
	return scheme + "://" + r.Host + path
}
