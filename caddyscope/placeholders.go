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
// access log and rate-limit keys.
func (s *Scope) setPlaceholders(repl *caddy.Replacer, c *oauthjwt.Claims) {
	info, _ := s.authority.Client(c.ClientID)
	repl.Set("oauth.client_id", c.ClientID)
	repl.Set("oauth.client_name", info.Name)
	repl.Set("oauth.sub", c.Subject)
	repl.Set("oauth.scope", c.ScopeText())
	repl.Set("oauth.jti", c.ID)
	repl.Set("http.auth.user.id", c.Subject)
	repl.Map(func(key string) (any, bool) {
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
