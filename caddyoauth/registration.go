package caddyoauth

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"github.com/caddyserver/caddy/v2"
)

// Dynamic client registration (RFC 7591) and management (RFC 7592): off
// unless the `registration` block is configured. The endpoint is
// {prefix}/register (registration_endpoint in the metadata); each
// registered client manages itself at {prefix}/register/{client_id} with
// its registration access token. Registered clients are kept in the store
// as admin API clients are, and checked by Client.provision as every
// client is; the policy here only narrows what a registrant may ask for.

// RegistrationConfig is the policy of dynamic client registration.
type RegistrationConfig struct {
	// Open lets anyone register. Without it a registration needs an
	// initial access token (RFC 7591 §3) that an operator made through the
	// admin API (POST /oauth/registration/tokens).
	Open bool `json:"open,omitempty"`

	// GrantTypes a registered client may use. Default:
	// authorization_code and refresh_token.
	GrantTypes []string `json:"grant_types,omitempty"`

	// Scopes a registered client may be granted; required. A registration
	// without `scope` gets all of them (RFC 7591 §2 lets the server pick a
	// default).
	Scopes []string `json:"scopes,omitempty"`

	// RedirectURISchemes are the schemes a registered redirect URI may
	// use. Default: https. List http to allow loopback redirect URIs
	// (RFC 8252 §7.3), or a private-use scheme for native apps (§7.1).
	RedirectURISchemes []string `json:"redirect_uri_schemes,omitempty"`

	// RedirectURIHosts, when set, are the hosts a registered redirect URI
	// may name: an exact host, or *.example.com for its subdomains.
	RedirectURIHosts []string `json:"redirect_uri_hosts,omitempty"`

	// AllowPublicClients lets a registrant register a public client
	// (token_endpoint_auth_method none), as MCP clients and native apps do.
	AllowPublicClients bool `json:"allow_public_clients,omitempty"`

	// MaxPerAddress caps the registrations from one client address per
	// Window. Default 10 per hour.
	MaxPerAddress int            `json:"max_per_address,omitempty"`
	Window        caddy.Duration `json:"window,omitempty"`
}

const (
	defaultRegistrationsPerAddress = 10
	defaultRegistrationWindow      = time.Hour
	maxRegistrationsPerAddress     = 1000
)

// provision sets the defaults and checks the policy.
func (rc *RegistrationConfig) provision() error {
	if len(rc.GrantTypes) == 0 {
		rc.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	for _, g := range rc.GrantTypes {
		if !slices.Contains(supportedGrants(), g) {
			return fmt.Errorf("grant_types: unknown or unsupported grant type %q (supported: %s)", g, strings.Join(supportedGrants(), ", "))
		}
		if g == GrantJWTBearer {
			return errors.New("grant_types: " + GrantJWTBearer + " needs assertion subjects an operator sets; it cannot be registered dynamically")
		}
	}
	if len(rc.Scopes) == 0 {
		return errors.New("scopes: at least one scope a registered client may be granted is required")
	}
	for _, s := range rc.Scopes {
		if !oauthjwt.ValidScopeToken(s) {
			return fmt.Errorf("scopes: %q is not a valid scope token (RFC 6749 §3.3)", s)
		}
	}
	if len(rc.RedirectURISchemes) == 0 {
		rc.RedirectURISchemes = []string{"https"}
	}
	for _, s := range rc.RedirectURISchemes {
		if s != strings.ToLower(s) || s == "" || strings.ContainsAny(s, ":/") {
			return fmt.Errorf("redirect_uri_schemes: %q must be a scheme name in lower case, without ://", s)
		}
		if s == "javascript" || s == "data" || s == "file" {
			return fmt.Errorf("redirect_uri_schemes: %q cannot carry a redirect", s)
		}
	}
	for _, h := range rc.RedirectURIHosts {
		if h == "" || strings.ContainsAny(h, "/:@ ") || strings.Contains(strings.TrimPrefix(h, "*."), "*") {
			return fmt.Errorf("redirect_uri_hosts: %q must be a host name or *.domain", h)
		}
	}
	switch {
	case rc.MaxPerAddress == 0:
		rc.MaxPerAddress = defaultRegistrationsPerAddress
	case rc.MaxPerAddress < 0 || rc.MaxPerAddress > maxRegistrationsPerAddress:
		return fmt.Errorf("max_per_address: %d is outside 1..%d", rc.MaxPerAddress, maxRegistrationsPerAddress)
	}
	if rc.Window == 0 {
		rc.Window = caddy.Duration(defaultRegistrationWindow)
	}
	if rc.Window < caddy.Duration(time.Second) {
		return fmt.Errorf("window: %s is shorter than a second", time.Duration(rc.Window))
	}
	return nil
}

// redirectURIAllowed checks a registered redirect URI against the policy.
func (rc *RegistrationConfig) redirectURIAllowed(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q: %v", raw, err)
	}
	if !slices.Contains(rc.RedirectURISchemes, u.Scheme) {
		return fmt.Errorf("%q: the scheme %q is not allowed here (allowed: %s)", raw, u.Scheme, strings.Join(rc.RedirectURISchemes, ", "))
	}
	if len(rc.RedirectURIHosts) == 0 {
		return nil
	}
	host := strings.ToLower(u.Hostname())
	for _, h := range rc.RedirectURIHosts {
		h = strings.ToLower(h)
		if host == h || strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:]) && len(host) > len(h)-1 {
			return nil
		}
	}
	return fmt.Errorf("%q: the host %q is not allowed here", raw, host)
}

// registrationEndpoint is the registration_endpoint of the metadata:
// empty (left out) when registration is off.
func (a *App) registrationEndpoint(base string) string {
	if a.Registration == nil {
		return ""
	}
	return base + "/register"
}
