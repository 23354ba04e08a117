package caddyoauth

import "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

// The client and user blocks of the `oauth` global option.

// unmarshalCaddyfile reads a client block, noting its lines in b.
func (c *Client) unmarshalCaddyfile(d *caddyfile.Dispenser, b *blockLines) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	c.ID = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		b.note(d)
		opt := d.Val()
		switch opt {
		case "name":
			if err := oneArg(d, &c.Name); err != nil {
				return err
			}
		case "secret_hash":
			if err := oneArg(d, &c.SecretHash); err != nil {
				return err
			}
		case "secret":
			if err := oneArg(d, &c.Secret); err != nil {
				return err
			}
		case "public":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.Public = true
		case "grant_types":
			c.GrantTypes = append(c.GrantTypes, d.RemainingArgs()...)
			if len(c.GrantTypes) == 0 {
				return d.ArgErr()
			}
		case "scopes":
			c.Scopes = append(c.Scopes, d.RemainingArgs()...)
			if len(c.Scopes) == 0 {
				return d.ArgErr()
			}
		case "resources":
			c.Resources = append(c.Resources, d.RemainingArgs()...)
			if len(c.Resources) == 0 {
				return d.ArgErr()
			}
		case "redirect_uris":
			c.RedirectURIs = append(c.RedirectURIs, d.RemainingArgs()...)
			if len(c.RedirectURIs) == 0 {
				return d.ArgErr()
			}
		case "access_token_key":
			if err := oneArg(d, &c.AccessTokenKey); err != nil {
				return err
			}
		case "assertion_issuer":
			if err := oneArg(d, &c.AssertionIssuer); err != nil {
				return err
			}
		case "assertion_subjects":
			c.AssertionSubjects = append(c.AssertionSubjects, d.RemainingArgs()...)
			if len(c.AssertionSubjects) == 0 {
				return d.ArgErr()
			}
		case "token_endpoint_auth_method":
			if err := oneArg(d, &c.AuthMethod); err != nil {
				return err
			}
		case "tls_client_auth_subject_dn":
			if err := oneArg(d, &c.TLSClientAuthSubjectDN); err != nil {
				return err
			}
		case "tls_client_auth_san_dns":
			if err := oneArg(d, &c.TLSClientAuthSANDNS); err != nil {
				return err
			}
		case "tls_client_auth_san_uri":
			if err := oneArg(d, &c.TLSClientAuthSANURI); err != nil {
				return err
			}
		case "tls_client_auth_san_ip":
			if err := oneArg(d, &c.TLSClientAuthSANIP); err != nil {
				return err
			}
		case "tls_client_auth_san_email":
			if err := oneArg(d, &c.TLSClientAuthSANEmail); err != nil {
				return err
			}
		case "tls_client_certificate_bound_access_tokens":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.TLSClientCertificateBoundAccessTokens = true
		case "jwks_uri":
			if err := oneArg(d, &c.JWKSURI); err != nil {
				return err
			}
		case "jwks_file":
			if err := oneArg(d, &c.JWKSFile); err != nil {
				return err
			}
		case "post_logout_redirect_uris":
			c.PostLogoutRedirectURIs = append(c.PostLogoutRedirectURIs, d.RemainingArgs()...)
			if len(c.PostLogoutRedirectURIs) == 0 {
				return d.ArgErr()
			}
		case "id_token_signed_response_alg":
			if err := oneArg(d, &c.IDTokenSignedResponseAlg); err != nil {
				return err
			}
		case "require_pushed_authorization_requests":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.RequirePushedAuthorizationRequests = true
		case "require_dpop":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.DPoPBoundAccessTokens = true
		case "require_pkce":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.RequirePKCE = true
		case "access_token_ttl":
			if err := durationArg(d, &c.AccessTokenTTL); err != nil {
				return err
			}
		case "metadata":
			if c.Metadata == nil {
				c.Metadata = make(map[string]string)
			}
			if err := keyValueArg(d, c.Metadata); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized client option %s", d.Val())
		}
		if err := c.checkCaddyfileOption(d, opt); err != nil {
			return err
		}
	}
	return c.checkCaddyfileBlock(b)
}

// unmarshalCaddyfile reads a user block, noting its lines in b; the
// user is checked with the whole option (checkCaddyfileBlock).
func (u *User) unmarshalCaddyfile(d *caddyfile.Dispenser, b *blockLines) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	u.Username = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		b.note(d)
		switch d.Val() {
		case "password_hash":
			if err := oneArg(d, &u.PasswordHash); err != nil {
				return err
			}
		case "name":
			if err := oneArg(d, &u.Name); err != nil {
				return err
			}
		case "email":
			if err := oneArg(d, &u.Email); err != nil {
				return err
			}
		case "claim":
			if u.Claims == nil {
				u.Claims = make(map[string]string)
			}
			if err := keyValueArg(d, u.Claims); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized user option %s", d.Val())
		}
	}
	return nil
}
