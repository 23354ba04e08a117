package caddyscope

import (
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

const (
	claimsPrefix   = "oauth.claims."
	metadataPrefix = "oauth.client.metadata."
)

// setPlaceholders publishes the caller's identity for later handlers, the
// access log and rate-limit keys. The values read on most requests
// ({oauth.client_id}, {oauth.sub}, {http.auth.user.id}: forwarded headers,
// rate-limit keys, the access log) go in the replacer's static map, which
// Caddy consults before the providers added with Map, boxed once per token
// (Claims.Boxed): no allocation, and no walk through every provider. The
// other oauth.* values come from one provider that reads the (shared,
// immutable) claims when a placeholder is used.
func (s *Scope) setPlaceholders(repl *caddy.Replacer, c *oauthjwt.Claims, info oauthjwt.ClientInfo) {
	clientID, sub := c.Boxed()
	repl.Set("http.auth.user.id", sub)
	repl.Set("oauth.client_id", clientID)
	repl.Set("oauth.sub", sub)
	repl.Map(func(key string) (any, bool) {
		if !strings.HasPrefix(key, "oauth.") {
			return nil, false
		}
		switch key {
		case "oauth.client_id":
			return clientID, true
		case "oauth.client_name":
			return info.Name, true
		case "oauth.sub":
			return sub, true
		case "oauth.scope":
			return c.ScopeText(), true
		case "oauth.roles":
			return c.RolesText(), true
		case "oauth.jti":
			return c.ID, true
		}
		if name, ok := strings.CutPrefix(key, claimsPrefix); ok {
			v, _ := c.Claim(name)
			return v, true
		}
		if k, ok := strings.CutPrefix(key, metadataPrefix); ok {
			return info.Metadata[k], true
		}
		return nil, false
	})
}
