package caddyscope

import (
	"slices"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("oauth_scope", parseCaddyfile)
	// Right after try_files: ahead of rate_limit (which caddy-ratelimit
	// puts before basic_auth), whichever package registers first, so a
	// zone keyed on {oauth.client_id} works in a plain site block.
	httpcaddyfile.RegisterDirectiveOrder("oauth_scope", httpcaddyfile.After, "try_files")
}

// standardMethods are the method names a Caddyfile rule line may start with
// (RFC 9110 §9 and RFC 5789). Other methods can be given in JSON.
var standardMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	s := new(Scope)
	err := s.UnmarshalCaddyfile(h.Dispenser)
	return s, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler. Syntax:
//
//	oauth_scope [<matcher>] [<scope...>] {
//		<METHOD...> [<scope...>]
//		*           [<scope...>]
//		audience    <aud...>
//		realm       <realm>
//		allow_preflight
//		forward_header <field> <value>
//	}
//
// A rule line lists upper-case methods, then the scopes they all require.
// `*` covers every method without a line of its own; HEAD uses GET's line
// unless it has its own; any other method is refused. Scopes given on the
// directive line itself apply to every method, as `*` would. A bare
// `oauth_scope` requires a valid token and no particular scope.
func (s *Scope) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if args := d.RemainingArgs(); len(args) > 0 {
		for _, a := range args {
			if a == AnyMethod || slices.Contains(standardMethods, a) {
				return d.Errf("oauth_scope %s: the one-line form takes scopes only; put per-method rules in a block: oauth_scope { %s <scope...> }", a, a)
			}
		}
		s.Rules = append(s.Rules, Rule{Methods: []string{AnyMethod}, Scopes: args})
	}
	for d.NextBlock(0) {
		tok := d.Val()
		switch {
		case tok == AnyMethod || slices.Contains(standardMethods, tok):
			r := Rule{Methods: []string{tok}}
			for d.NextArg() {
				v := d.Val()
				isMethod := v == AnyMethod || slices.Contains(standardMethods, v)
				switch {
				case isMethod && len(r.Scopes) == 0:
					r.Methods = append(r.Methods, v)
				case isMethod:
					return d.Errf("%s after a scope: list the methods first, then the scopes they require", v)
				default:
					r.Scopes = append(r.Scopes, v)
				}
			}
			s.Rules = append(s.Rules, r)
		case tok == "audience":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			s.Audience = append(s.Audience, args...)
		case tok == "realm":
			if s.Realm != "" {
				return d.Err("realm already specified")
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			s.Realm = d.Val()
			if s.Realm == "" {
				return d.Err("realm must not be empty")
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		case tok == "allow_preflight":
			if d.NextArg() {
				return d.ArgErr()
			}
			s.AllowPreflight = true
		case tok == "forward_header":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Err("forward_header takes a header name and a value")
			}
			if s.ForwardHeaders == nil {
				s.ForwardHeaders = make(map[string]string)
			}
			if _, dup := s.ForwardHeaders[args[0]]; dup {
				return d.Errf("forward_header %s already specified", args[0])
			}
			s.ForwardHeaders[args[0]] = args[1]
		default:
			return d.Errf("unrecognized oauth_scope option or method %q (methods are upper case: GET, POST, …)", tok)
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Scope)(nil)
