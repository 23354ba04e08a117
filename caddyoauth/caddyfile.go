package caddyoauth

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/dustin/go-humanize"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("oauth", parseOAuthOption)
	httpcaddyfile.RegisterDirective("oauth_server", parseServerDirective)
	// After rewrites, before anything that could refuse or answer the
	// request: the token endpoint must be reachable even in a site whose
	// other routes are protected by oauth_scope (ordered after try_files).
	httpcaddyfile.RegisterDirectiveOrder("oauth_server", httpcaddyfile.Before, "try_files")
}

// configSourceCaddyfile marks a config the Caddyfile adapter made.
const configSourceCaddyfile = "caddyfile"

// parseOAuthOption sets up the `oauth` app from the global option. Syntax:
//
//	oauth {
//		issuer           <url>
//		signing_key      <ES256|ES384|RS256|PS256|EdDSA> [<pem_file>] {
//			rotate_every <duration>
//			key_encryption_key <base64 of 32 bytes, e.g. {env.OAUTH_KEK}>
//		}
//		access_token_ttl <duration>
//		audience         <uri>
//		leeway           <duration>
//		store            caddy | redis <url> {
//			key_prefix <prefix>
//		}
//		refresh_token_ttl     <duration>
//		refresh_token_max_ttl <duration>
//		refresh_token_reuse_grace <duration>
//		session_ttl           <duration>
//		session_max_ttl       <duration>
//		scope_description     <scope> <text>
//		userinfo_scope        <scope>
//		rate_limit_memory_budget <size>
//		rate_limit_keys       <n>
//		token_cache_size      <n>
//		signup {
//			min_password_length <n>
//		}
//		profile          fapi2
//		require_pushed_authorization_requests
//		mtls_endpoint_base <url>
//		dpop {
//			nonce
//			nonce_lifetime <duration>
//			proof_window   <duration>
//		}
//		registration {
//			open
//			grant_types          <grant...>
//			scopes               <scope...>
//			redirect_uri_schemes <scheme...>
//			redirect_uri_hosts   <host|*.domain...>
//			allow_public_clients
//			max_per_address      <n> [<window>]
//		}
//		client <client_id> {
//			name             <text>
//			secret_hash      <sha256:hex|bcrypt|argon2id>
//			secret           <value>
//			public
//			grant_types      <grant...>
//			redirect_uris    <uri...>
//			require_pkce
//			require_dpop
//			require_pushed_authorization_requests
//			id_token_signed_response_alg <RS256|alg>
//			post_logout_redirect_uris <uri...>
//			token_endpoint_auth_method <method>
//			tls_client_auth_subject_dn <rfc4514 dn>
//			tls_client_auth_san_dns    <name>
//			tls_client_auth_san_uri    <uri>
//			tls_client_auth_san_ip     <ip>
//			tls_client_auth_san_email  <address>
//			tls_client_certificate_bound_access_tokens
//			assertion_issuer   <iss>
//			access_token_key   <hs256 key>
//			assertion_subjects <sub...|*>
//			jwks_uri         <url>
//			jwks_file        <path>
//			scopes           <scope...>
//			resources        <uri...>
//			access_token_ttl <duration>
//			metadata         <key> <value>
//		}
//		user <username> {
//			password_hash <bcrypt|argon2id>
//			name          <text>
//			email         <address>
//			claim         <name> <value>
//		}
//	}
func parseOAuthOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		d.Next() // so the error names the line
		return nil, d.Err("oauth option already specified")
	}
	app := &App{ConfigSource: configSourceCaddyfile}
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "oauth", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler for the option block.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	lines := newOptionLines(d)
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		lines.top.note(d)
		opt := d.Val()
		switch opt {
		case "issuer":
			if err := oneArg(d, &a.Issuer); err != nil {
				return err
			}
		case "audience":
			if err := oneArg(d, &a.Audience); err != nil {
				return err
			}
		case "signing_key":
			if a.SigningKey != nil {
				return d.Err("signing_key already specified")
			}
			a.SigningKey = new(SigningKeyConfig)
			if !d.NextArg() {
				return d.ArgErr()
			}
			a.SigningKey.Algorithm = d.Val()
			if d.NextArg() {
				a.SigningKey.File = d.Val()
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			if err := a.SigningKey.checkCaddyfile(d); err != nil {
				return err
			}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				switch d.Val() {
				case "rotate_every":
					if err := durationArg(d, &a.SigningKey.RotateEvery); err != nil {
						return err
					}
					if err := a.SigningKey.checkCaddyfile(d); err != nil {
						return err
					}
				case "key_encryption_key":
					if err := oneArg(d, &a.SigningKey.KeyEncryptionKey); err != nil {
						return err
					}
				default:
					return d.Errf("unrecognized signing_key option %s", d.Val())
				}
			}
		case "access_token_ttl":
			if err := durationArg(d, &a.AccessTokenTTL); err != nil {
				return err
			}
		case "leeway":
			if err := durationArg(d, &a.Leeway); err != nil {
				return err
			}
		case "store":
			if a.StoreRaw != nil {
				return d.Err("store already specified")
			}
			raw, err := unmarshalStore(d)
			if err != nil {
				return err
			}
			a.StoreRaw = raw
		case "refresh_token_ttl":
			if err := durationArg(d, &a.RefreshTokenTTL); err != nil {
				return err
			}
		case "refresh_token_max_ttl":
			if err := durationArg(d, &a.RefreshTokenMaxTTL); err != nil {
				return err
			}
		case "refresh_token_reuse_grace":
			if a.RefreshTokenReuseGrace != nil {
				return d.Errf("%s already specified", d.Val())
			}
			var g caddy.Duration
			if err := durationArg(d, &g); err != nil {
				return err
			}
			a.RefreshTokenReuseGrace = &g
		case "session_ttl":
			if err := durationArg(d, &a.SessionTTL); err != nil {
				return err
			}
		case "session_max_ttl":
			if err := durationArg(d, &a.SessionMaxTTL); err != nil {
				return err
			}
		case "signup":
			if a.Signup != nil {
				return d.Err("signup already specified")
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			a.Signup = new(SignupConfig)
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				switch d.Val() {
				case "min_password_length":
					var v string
					if err := oneArg(d, &v); err != nil {
						return err
					}
					n, err := strconv.Atoi(v)
					if err != nil {
						return d.Errf("min_password_length: %v", err)
					}
					a.Signup.MinPasswordLength = n
				default:
					return d.Errf("unrecognized signup option %s", d.Val())
				}
			}
		case "profile":
			if err := oneArg(d, &a.Profile); err != nil {
				return err
			}
		case "require_pushed_authorization_requests":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.RequirePushedAuthorizationRequests = true
		case "mtls_endpoint_base":
			if err := oneArg(d, &a.MTLSEndpointBase); err != nil {
				return err
			}
			if err := checkMTLSEndpointBase(a.MTLSEndpointBase); err != nil {
				return d.Err(err.Error())
			}
		case "dpop":
			if err := a.unmarshalDPoP(d); err != nil {
				return err
			}
		case "userinfo_scope":
			if err := oneArg(d, &a.UserinfoScope); err != nil {
				return err
			}
		case "rate_limit_memory_budget":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			n, err := humanize.ParseBytes(s)
			if err != nil || n == 0 || n > math.MaxInt64 {
				return d.Errf("rate_limit_memory_budget: %q is not a size such as 256MiB", s)
			}
			a.RateLimitMemoryBudget = int64(n)
		case "token_cache_size":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < -1 || n == 0 {
				return d.Errf("token_cache_size: %q is neither a positive number nor -1 (off)", s)
			}
			a.TokenCacheSize = n
		case "rate_limit_keys":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return d.Errf("rate_limit_keys: %q is not a positive number", s)
			}
			a.RateLimitKeys = n
		case "scope_description":
			if a.ScopeDescriptions == nil {
				a.ScopeDescriptions = make(map[string]string)
			}
			if err := keyValueArg(d, a.ScopeDescriptions); err != nil {
				return err
			}
		case "client":
			c, b := new(Client), newBlockLines(d)
			if err := c.unmarshalCaddyfile(d, b); err != nil {
				return err
			}
			if err := lines.addClient(c, b); err != nil {
				return err
			}
			a.Clients = append(a.Clients, c)
		case "registration":
			if a.Registration != nil {
				return d.Err("registration already specified")
			}
			rc, err := unmarshalRegistration(d)
			if err != nil {
				return err
			}
			a.Registration = rc
		case "user":
			u, b := new(User), newBlockLines(d)
			if err := u.unmarshalCaddyfile(d, b); err != nil {
				return err
			}
			lines.addUser(u, b)
			a.Users = append(a.Users, u)
		default:
			return d.Errf("unrecognized oauth option %s", d.Val())
		}
		if err := a.checkCaddyfileOption(d, opt); err != nil {
			return err
		}
	}
	return a.checkCaddyfileBlock(lines)
}

// unmarshalStore reads `store caddy` or `store redis <url> { key_prefix <p> }`.
func unmarshalStore(d *caddyfile.Dispenser) (json.RawMessage, error) {
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	switch kind := d.Val(); kind {
	case "caddy":
		if d.NextArg() {
			return nil, d.ArgErr()
		}
		return caddyconfig.JSONModuleObject(CaddyStoreModule{}, "module", "caddy", nil), nil
	case "redis":
		m := new(RedisStoreModule)
		if !d.NextArg() {
			return nil, d.Err("store redis needs a URL: store redis redis://127.0.0.1:6379/0")
		}
		m.URL = d.Val()
		if d.NextArg() {
			return nil, d.ArgErr()
		}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			switch d.Val() {
			case "key_prefix":
				if err := oneArg(d, &m.KeyPrefix); err != nil {
					return nil, err
				}
			default:
				return nil, d.Errf("unrecognized store redis option %s", d.Val())
			}
		}
		return caddyconfig.JSONModuleObject(m, "module", "redis", nil), nil
	default:
		return nil, d.Errf("unknown store %q (caddy or redis)", kind)
	}
}

// keyValueArg reads `<name> <key> <value>` into m, refusing a repeated key.
func keyValueArg(d *caddyfile.Dispenser, m map[string]string) error {
	name := d.Val()
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.Errf("%s takes a key and a value", name)
	}
	if _, dup := m[args[0]]; dup {
		return d.Errf("%s %s already specified", name, args[0])
	}
	m[args[0]] = args[1]
	return nil
}

// oneArg reads exactly one argument into *dst, refusing a repeat.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	if *dst != "" {
		return d.Errf("%s already specified", name)
	}
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	if *dst != 0 {
		return d.Errf("%s already specified", name)
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: %v", name, err)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Server)(nil)
)
