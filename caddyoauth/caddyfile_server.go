package caddyoauth

import (
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// parseServerDirective sets up the oauth_server handler. Syntax:
//
//	oauth_server [<matcher>] {
//		prefix    <path>
//		templates <dir>
//	}
//
// The endpoints are {prefix}/token and {prefix}/jwks (prefix /oauth2 by
// default) and /.well-known/oauth-authorization-server. A first argument
// starting with / is a path matcher in Caddyfile syntax, so the prefix is
// set in the block; such an argument is refused rather than silently
// turned into a path matcher. Named matchers (@name) and * are accepted.
//
// This is RegisterHandlerDirective's wrapper with one check added: that
// wrapper removes the matcher token before the handler sees its tokens.
func parseServerDirective(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	if h.NextArg() && strings.HasPrefix(h.Val(), "/") {
		return nil, h.Errf("oauth_server %s: a first argument starting with / is a path matcher, not where the endpoints live; set the path with `prefix` in the block, e.g. oauth_server { prefix /auth }", h.Val())
	}
	h.Reset()
	h.Next()
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	s := new(Server)
	if err := s.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return h.NewRoute(matcherSet, s), nil
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler.
func (s *Server) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.Errf("oauth_server takes no arguments; set the path with `prefix` in its block (got %q)", d.Val())
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "prefix":
			if err := oneArg(d, &s.Prefix); err != nil {
				return err
			}
			if !strings.HasPrefix(s.Prefix, "/") {
				return d.Errf("prefix %q must start with /", s.Prefix)
			}
		case "templates":
			if err := oneArg(d, &s.Templates); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized oauth_server option %s", d.Val())
		}
	}
	return nil
}
