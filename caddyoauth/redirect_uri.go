package caddyoauth

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

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
	// RFC 3986 §3.1: schemes are case-insensitive and lower case is their
	// canonical form (§6.2.2.1). Redirect URIs match as written (RFC 9700
	// §4.1.3), so a registered scheme in another case would only match
	// requests written the same odd way; it is refused instead.
	if !strings.HasPrefix(raw, u.Scheme+":") {
		return fmt.Errorf("%q: the scheme must be written in lower case (RFC 3986 §3.1)", raw)
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
// literals: RFC 8252 §8.3 advises against "localhost". The port is cut
// from the text and nothing else is touched: everything but the port
// matches exactly, as RFC 9700 §4.1.3 asks, the scheme included (written
// "http", as registered URIs must be; "HTTP://127.0.0.1" no more matches
// than "HTTPS://app.example" matches "https://app.example").
func loopbackIPWithoutPort(raw string) (string, bool) {
	rest, ok := strings.CutPrefix(raw, "http://")
	if !ok {
		return "", false
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	var host string
	switch {
	case strings.HasPrefix(authority, "127.0.0.1"):
		host = "127.0.0.1"
	case strings.HasPrefix(authority, "[::1]"):
		host = "[::1]"
	default:
		return "", false
	}
	if port := authority[len(host):]; port != "" {
		digits, ok := strings.CutPrefix(port, ":")
		if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" {
			return "", false
		}
	}
	if strings.Contains(tail, "#") {
		return "", false
	}
	return "http://" + host + tail, true
}
