package caddyoauth

import "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

// unmarshalDPoP reads the dpop block of the oauth global option:
//
//	dpop {
//		nonce
//		nonce_lifetime 5m
//		proof_window   60s
//	}
func (a *App) unmarshalDPoP(d *caddyfile.Dispenser) error {
	if a.DPoP != nil {
		return d.Err("dpop already specified")
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	a.DPoP = new(DPoPConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "nonce":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.DPoP.Nonce = true
		case "nonce_lifetime":
			if err := durationArg(d, &a.DPoP.NonceLifetime); err != nil {
				return err
			}
		case "proof_window":
			if err := durationArg(d, &a.DPoP.ProofWindow); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized dpop option %s", d.Val())
		}
	}
	return nil
}
