package caddyoauth

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// unmarshalRegistration reads the `registration` block of the oauth
// option:
//
//	registration {
//		open
//		grant_types          <grant...>
//		scopes               <scope...>
//		redirect_uri_schemes <scheme...>
//		redirect_uri_hosts   <host|*.domain...>
//		allow_public_clients
//		max_per_address      <n> [<window>]
//	}
//
// The policy is checked (provision) right away, so a mistake names its
// line.
func unmarshalRegistration(d *caddyfile.Dispenser) (*RegistrationConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	rc := new(RegistrationConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		var list *[]string
		switch opt {
		case "open", "allow_public_clients":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			if opt == "open" {
				rc.Open = true
			} else {
				rc.AllowPublicClients = true
			}
		case "grant_types":
			list = &rc.GrantTypes
		case "scopes":
			list = &rc.Scopes
		case "redirect_uri_schemes":
			list = &rc.RedirectURISchemes
		case "redirect_uri_hosts":
			list = &rc.RedirectURIHosts
		case "max_per_address":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return nil, d.ArgErr()
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return nil, d.Errf("max_per_address: %q is not a positive number", args[0])
			}
			rc.MaxPerAddress = n
			if len(args) == 2 {
				w, err := caddy.ParseDuration(args[1])
				if err != nil {
					return nil, d.Errf("max_per_address: window: %v", err)
				}
				rc.Window = caddy.Duration(w)
			}
		default:
			return nil, d.Errf("unrecognized registration option %s", opt)
		}
		if list != nil {
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			*list = append(*list, args...)
		}
	}
	check := *rc
	if err := check.provision(); err != nil {
		return nil, d.Errf("registration: %v", err)
	}
	return rc, nil
}
