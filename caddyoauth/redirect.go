package caddyoauth

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// checkGrants sets the default grant types and checks that the client's
// registration fits them: the authorization code grant needs redirect
// URIs; a public client may not use client credentials (RFC 6749 §4.4:
// confidential clients only); refresh tokens come only with a grant that
// issues them.
func (c *Client) checkGrants() error {
	if len(c.GrantTypes) == 0 {
		switch {
		case c.Public || len(c.RedirectURIs) > 0:
			c.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
		default:
			c.GrantTypes = []string{GrantClientCredentials}
		}
	}
	for i, g := range c.GrantTypes {
		if !slices.Contains(supportedGrants, g) {
			hint := ""
			if g == "implicit" || g == "password" {
				hint = "; RFC 9700 §2.1.2 and §2.4 say not to use the implicit and password grants: use authorization_code with PKCE"
			}
			return fmt.Errorf("grant_types: unknown or unsupported grant type %q (supported: %s)%s", g, strings.Join(supportedGrants, ", "), hint)
		}
		if slices.Contains(c.GrantTypes[:i], g) {
			return fmt.Errorf("grant_types: %q listed twice", g)
		}
	}
	code := c.allowsGrant(GrantAuthorizationCode)
	switch {
	case c.Public && c.allowsGrant(GrantClientCredentials):
		return errors.New("grant_types: a public client cannot use client_credentials (RFC 6749 §4.4)")
	case c.Public && !code:
		return errors.New("grant_types: a public client needs authorization_code")
	case code && len(c.RedirectURIs) == 0:
		return errors.New("redirect_uris: the authorization_code grant needs at least one redirect URI")
	case !code && len(c.RedirectURIs) > 0:
		return errors.New("redirect_uris: only used with the authorization_code grant; add it to grant_types")
	case c.allowsGrant(GrantRefreshToken) && !code:
		return errors.New("grant_types: refresh_token is issued with authorization_code; add it or remove refresh_token")
	case c.RequirePKCE && !code:
		return errors.New("require_pkce: only applies to the authorization_code grant")
	}
	for i, u := range c.RedirectURIs {
		if err := validateRedirectURI(u); err != nil {
			return fmt.Errorf("redirect_uris: %v", err)
		}
		if slices.Contains(c.RedirectURIs[:i], u) {
			return fmt.Errorf("redirect_uris: %q listed twice", u)
		}
	}
	return nil
}

// validateRedirectURI applies RFC 6749 §3.1.2 (absolute, no fragment) and
// RFC 9700 §2.6/RFC 8252 §7: https, or http on a loopback host, or a
// private-use scheme with a dot (reverse domain name) for native apps.
func validateRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q: %v", raw, err)
	}
	if !u.IsAbs() {
		return fmt.Errorf("%q is not an absolute URI (RFC 6749 §3.1.2)", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%q must not have a fragment (RFC 6749 §3.1.2)", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q must not carry user info", raw)
	}
	for _, p := range []string{"code", "state", "iss", "error", "error_description", "error_uri"} {
		if u.Query().Has(p) {
			return fmt.Errorf("%q: its query has %s, which the authorization response adds (RFC 6749 §4.1.2)", raw, p)
		}
	}
	if strings.ContainsAny(raw, "*{} \t\r\n") {
		return fmt.Errorf("%q: wildcards and spaces are not allowed; redirect URIs match exactly (RFC 9700 §4.1.3)", raw)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("%q has no host", raw)
		}
	case "http":
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("%q: http is allowed for loopback hosts only (RFC 9700 §2.6); use https", raw)
		}
	default:
		if !strings.Contains(u.Scheme, ".") {
			return fmt.Errorf("%q: a native app's private-use scheme must be a reverse domain name such as com.example.app (RFC 8252 §7.1)", raw)
		}
	}
	return nil
}

// matchRedirectURI finds the redirect URI of an authorization request
// (RFC 6749 §3.1.2.3): the one given, if it is registered exactly as
// written (RFC 9700 §4.1.3: no pattern, no prefix), or the only one
// registered when none is given. The one exception RFC 9700 §2.1 and RFC
// 8252 §7.3 make: a native app's http redirect to a loopback IP literal
// may use any port, since the app takes whatever port is free.
func (c *Client) matchRedirectURI(given string) (string, bool) {
	if given == "" {
		if len(c.RedirectURIs) == 1 {
			return c.RedirectURIs[0], true
		}
		return "", false
	}
	if slices.Contains(c.RedirectURIs, given) {
		return given, true
	}
	if g, ok := loopbackIPWithoutPort(given); ok {
		for _, r := range c.RedirectURIs {
			if rr, ok := loopbackIPWithoutPort(r); ok && rr == g {
				return given, true
			}
		}
	}
	return "", false
}

// loopbackIPWithoutPort returns an http URI to 127.0.0.1 or [::1] with its
// port removed, for the comparison RFC 8252 §7.3 asks for. Only IP
// literals: RFC 8252 §8.3 advises against "localhost".
func loopbackIPWithoutPort(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" {
		return "", false
	}
	host := u.Hostname()
	if host != "127.0.0.1" && host != "::1" {
		return "", false
	}
	if p := u.Port(); p != "" {
		for _, ch := range p {
			if ch < '0' || ch > '9' {
				return "", false
			}
		}
	}
	u.Host = host
	if strings.Contains(host, ":") {
		u.Host = "[" + host + "]"
	}
	return u.String(), true
}
