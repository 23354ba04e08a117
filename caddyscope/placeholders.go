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
// access log and rate-limit keys. The oauth.* values come from one provider
// that reads the (shared, immutable) claims when a placeholder is used, so
// an accepted request costs two allocations here, not one per value.
func (s *Scope) setPlaceholders(repl *caddy.Replacer, c *oauthjwt.Claims, info oauthjwt.ClientInfo) {
	repl.Set("http.auth.user.id", c.Subject)
	repl.Map(func(key string) (any, bool) {
		if !strings.HasPrefix(key, "oauth.") {
			return nil, false
		}
		switch key {
		case "oauth.client_id":
			return c.ClientID, true
		case "oauth.client_name":
			return info.Name, true
		case "oauth.sub":
			return c.Subject, true
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
