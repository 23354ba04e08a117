package caddyscope

import (
	"slices"
	"strconv"

	"github.com/caddyserver/caddy/v2"
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
//	oauth_scope [<matcher>] [<scope...>] [roles <role...>] {
//		<METHOD...> [<scope...>] [roles <role...>]
//		*           [<scope...>] [roles <role...>]
//		audience    <aud...>
//		resource    <uri>
//		name        <name>
//		realm       <realm>
//		dpop        allowed|required
//		allow_preflight
//		pass_credentials
//		forward_header <field> <value>
//		issuer local
//		issuer <url> {
//			audience                   <aud...>
//			jwks_url                   <url>
//			introspection_url          <url>
//			client_id                  <id>
//			client_secret              <secret>
//			tls_trusted_ca_certs       <pem_file...>
//			algorithms                 <alg...>
//			timeout                    <duration>
//			jwks_refresh_interval      <duration>
//			jwks_refetch_floor         <duration>
//			introspection_cache_ttl    <duration>
//			introspection_cache_size   <n>
//			introspection_negative_ttl <duration>
//			profile                    rfc9068|jwt|keycloak|auth0|entra|okta|google
//			client_id_claim            <claim...>
//			scope_claim                <claim>
//			roles_claim                <path>
//		}
//	}
//
// A rule line lists upper-case methods, then the scopes they all require,
// then, after the keyword `roles`, the roles they all require (which ends
// the scopes: a scope named "roles" cannot be written on a rule line; use
// JSON). `*` covers every method without a line of its own; HEAD uses
// GET's line unless it has its own; any other method is refused. Scopes
// and roles given on the directive line itself apply to every method, as
// `*` would. A bare `oauth_scope` requires a valid token and no
// particular scope.
//
// Without `issuer` lines the route accepts the local `oauth` app's tokens.
// With them it accepts exactly the issuers listed; `issuer local` is the
// local app. See Issuer for what each option does, and the Profile*
// constants for the profiles.
func (s *Scope) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if args := d.RemainingArgs(); len(args) > 0 {
		for _, a := range args {
			if isRuleMethod(a) {
				return d.Errf("oauth_scope %s: the one-line form takes scopes only (and roles after the keyword roles); put per-method rules in a block: oauth_scope { %s <scope...> }", a, a)
			}
		}
		r := Rule{Methods: []string{AnyMethod}}
		if err := ruleArgs(d, &r, args); err != nil {
			return err
		}
		s.Rules = append(s.Rules, r)
	}
	for d.NextBlock(0) {
		tok := d.Val()
		switch {
		case isRuleMethod(tok):
			r := Rule{Methods: []string{tok}}
			if err := ruleArgs(d, &r, d.RemainingArgs()); err != nil {
				return err
			}
			s.Rules = append(s.Rules, r)
		case tok == "audience":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			s.Audience = append(s.Audience, args...)
		case tok == "resource":
			if s.Resource != "" {
				return d.Err("resource already specified")
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			s.Resource = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			if err := checkResource(s.Resource); err != nil {
				return d.Errf("resource: %v", err)
			}
		case tok == "name":
			if s.Name != "" {
				return d.Err("name already specified")
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			s.Name = d.Val()
			if s.Name == "" || d.NextArg() {
				return d.Err("name takes one non-empty value")
			}
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
		case tok == "dpop":
			if s.DPoP != "" {
				return d.Err("dpop already specified")
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			s.DPoP = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			if s.DPoP != DPoPAllowed && s.DPoP != DPoPRequired {
				return d.Errf("dpop: %q is neither %s nor %s", s.DPoP, DPoPAllowed, DPoPRequired)
			}
		case tok == "allow_preflight":
			if d.NextArg() {
				return d.ArgErr()
			}
			s.AllowPreflight = true
		case tok == "pass_credentials":
			if d.NextArg() {
				return d.ArgErr()
			}
			s.PassCredentials = true
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
		case tok == "issuer":
			is, err := parseIssuer(d)
			if err != nil {
				return err
			}
			s.Issuers = append(s.Issuers, is)
		default:
			return d.Errf("unrecognized oauth_scope option or method %q (methods are upper case: GET, POST, …)", tok)
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Scope)(nil)

// rolesKeyword on a rule line ends the scopes: the arguments after it are
// roles.
const rolesKeyword = "roles"

func isRuleMethod(v string) bool { return v == AnyMethod || slices.Contains(standardMethods, v) }

// ruleArgs reads the arguments of a rule line after its first method into
// r: more methods, then scopes, then the keyword roles and roles.
func ruleArgs(d *caddyfile.Dispenser, r *Rule, args []string) error {
	inRoles := false
	for _, v := range args {
		switch {
		case isRuleMethod(v) && (inRoles || len(r.Scopes) > 0):
			return d.Errf("%s after a scope or a role: list the methods first, then the scopes they require, then roles and the roles", v)
		case isRuleMethod(v):
			r.Methods = append(r.Methods, v)
		case v == rolesKeyword && inRoles:
			return d.Err("roles: given twice on one line; list every role after one roles keyword")
		case v == rolesKeyword:
			inRoles = true
		case inRoles:
			r.Roles = append(r.Roles, v)
		default:
			r.Scopes = append(r.Scopes, v)
		}
	}
	if inRoles && len(r.Roles) == 0 {
		return d.Err("roles: at least one role is required after the keyword roles")
	}
	return nil
}

// parseIssuer reads `issuer <url> { … }` or `issuer local`.
func parseIssuer(d *caddyfile.Dispenser) (Issuer, error) {
	var is Issuer
	if !d.NextArg() {
		return is, d.ArgErr()
	}
	is.Issuer = d.Val()
	if d.NextArg() {
		return is, d.ArgErr()
	}
	// Each option is given once: name is the option being read.
	var name string
	seen := map[string]bool{}
	arg := func() (string, error) {
		if seen[name] {
			return "", d.Errf("%s already specified", name)
		}
		seen[name] = true
		if !d.NextArg() {
			return "", d.ArgErr()
		}
		v := d.Val()
		if d.NextArg() {
			return "", d.ArgErr()
		}
		return v, nil
	}
	one := func(dst *string) (err error) {
		*dst, err = arg()
		return err
	}
	duration := func(dst *caddy.Duration) error {
		v, err := arg()
		if err != nil {
			return err
		}
		dur, err := caddy.ParseDuration(v)
		if err != nil || dur <= 0 {
			return d.Errf("%s: %q is not a positive duration", name, v)
		}
		*dst = caddy.Duration(dur)
		return nil
	}
	many := func(dst *[]string) error {
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		*dst = append(*dst, args...)
		return nil
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if is.Issuer == LocalIssuer {
			return is, d.Errf("issuer local takes no options (%s): the local app's settings are its own", d.Val())
		}
		name = d.Val()
		var err error
		switch name {
		case "audience":
			err = many(&is.Audience)
		case "jwks_url":
			err = one(&is.JWKSURL)
		case "introspection_url":
			err = one(&is.IntrospectionURL)
		case "client_id":
			err = one(&is.ClientID)
		case "client_secret":
			err = one(&is.ClientSecret)
		case "tls_trusted_ca_certs":
			err = many(&is.TLSTrustedCACerts)
		case "algorithms":
			err = many(&is.Algorithms)
		case "timeout":
			err = duration(&is.Timeout)
		case "jwks_refresh_interval":
			err = duration(&is.JWKSRefreshInterval)
		case "jwks_refetch_floor":
			err = duration(&is.JWKSRefetchFloor)
		case "introspection_cache_ttl":
			err = duration(&is.IntrospectionCacheTTL)
		case "introspection_negative_ttl":
			err = duration(&is.IntrospectionNegativeTTL)
		case "profile":
			err = one(&is.Profile)
		case "client_id_claim":
			err = many(&is.ClientIDClaim)
		case "scope_claim":
			err = one(&is.ScopeClaim)
		case "roles_claim":
			err = one(&is.RolesClaim)
		case "introspection_cache_size":
			var v string
			if v, err = arg(); err == nil {
				n, convErr := strconv.Atoi(v)
				if convErr != nil || n <= 0 {
					return is, d.Errf("introspection_cache_size: %q is not a positive number", v)
				}
				is.IntrospectionCacheSize = n
			}
		default:
			return is, d.Errf("unrecognized issuer option %q", d.Val())
		}
		if err != nil {
			return is, err
		}
	}
	if _, err := is.claimMapping(); err != nil {
		return is, d.Errf("issuer %s: %v", is.Issuer, err)
	}
	return is, nil
}
