package oauthjwt

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// CheckIssuerURL applies RFC 8414 §2 to an issuer identifier: an absolute
// https URL without query, fragment or user info. Plain http is allowed
// for loopback hosts only, for local development and tests.
func CheckIssuerURL(iss string) error {
	if err := CheckEndpointURL(iss); err != nil {
		return err
	}
	if strings.Contains(iss, "?") {
		return fmt.Errorf("%q must not have a query (RFC 8414 §2)", iss)
	}
	return nil
}

// CheckEndpointURL applies the rules of CheckIssuerURL except the one on
// the query, to a URL the gateway fetches keys from or sends tokens to.
func CheckEndpointURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Host == "" || !u.IsAbs() {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("%q must not have a fragment", s)
	}
	if u.User != nil {
		return fmt.Errorf("%q must not carry user info", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopbackHost(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("%q must use https (http is allowed for localhost only)", s)
}

// IsLoopbackHost reports whether host is localhost, a name under
// .localhost, or a loopback address.
func IsLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
