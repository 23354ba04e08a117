package caddyoauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Resource indicators (RFC 8707). A client names the APIs where it will
// use a token with one or more `resource` parameters, at the authorization
// endpoint and at the token endpoint for every grant, and the token's aud
// is exactly those. What a client may name is its `resources` list, or,
// for a client without one, a resource an oauth_scope route of this
// configuration declared (resources.go) or the app's own audience. No
// `resource` means the client's list, or the app's audience and the
// declared resources.
//
// The authorization code keeps the resources of its request (or none: the
// default); the code exchange and every refresh may name a subset of them,
// never more (RFC 8707 §2.2: the refresh token stays bound to the full
// original grant).

// Bounds on the resource parameters of one request, so that input cannot
// make a token arbitrarily large.
const (
	maxResources   = 10
	maxResourceLen = 2048
)

// checkResourceURI applies RFC 8707 §2 to a resource value: an absolute
// URI (RFC 3986 §4.3) without a fragment. A query is allowed (§2 only
// says SHOULD NOT). The value is compared as an exact string everywhere,
// so it is checked and never normalised.
func checkResourceURI(s string) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case len(s) > maxResourceLen:
		return fmt.Errorf("is longer than %d bytes", maxResourceLen)
	case strings.Contains(s, "#"):
		return errors.New("has a fragment (RFC 8707 section 2)")
	}
	for i := 0; i < len(s); i++ {
		if !uriChar(s[i]) {
			return errors.New("has a character a URI cannot hold (RFC 3986 section 2)")
		}
		if s[i] == '%' && (i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2])) {
			return errors.New("has a malformed percent-encoding (RFC 3986 section 2.1)")
		}
	}
	if !hasScheme3986(s) {
		return errors.New("is not an absolute URI (RFC 8707 section 2, RFC 3986 section 4.3)")
	}
	if _, err := url.Parse(s); err != nil {
		return errors.New("is not a valid URI")
	}
	return nil
}

// hasScheme3986 reports whether s starts with a scheme and a colon:
// ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" (RFC 3986 §3.1).
func hasScheme3986(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return true
		default:
			return false
		}
	}
	return false
}

// uriChar reports whether c may appear in a URI: unreserved, reserved or
// '%' (RFC 3986 §2).
func uriChar(c byte) bool {
	if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("-._~:/?#[]@!$&'()*+,;=%", c) >= 0
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// checkClientResources checks a client's resources setting.
func checkClientResources(list []string) error {
	for i, r := range list {
		if err := checkResourceURI(r); err != nil {
			return fmt.Errorf("resources: %q %v", r, err)
		}
		if slices.Contains(list[:i], r) {
			return fmt.Errorf("resources: %q listed twice", r)
		}
	}
	return nil
}

// parseResources reads the resource parameters of a request (RFC 8707 §2):
// nil when there are none, else the values in order, each once. A
// malformed value, or too many, is invalid_target.
func parseResources(values []string) ([]string, *oauthError) {
	if len(values) == 0 {
		return nil, nil
	}
	if len(values) > maxResources {
		return nil, invalidTarget(fmt.Sprintf("at most %d resource parameters", maxResources))
	}
	out := make([]string, 0, len(values))
	for _, v := range values {
		if err := checkResourceURI(v); err != nil {
			return nil, invalidTarget("resource " + err.Error())
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// invalidTarget is RFC 8707 §2's error, 400 at the token endpoint.
func invalidTarget(desc string) *oauthError { return badRequest(errInvalidTarget, desc) }

// showResource is a resource value fit for an error_description: a
// checked resource holds only characters RFC 6749 §5.2 allows there, but
// may be long.
func showResource(uri string) string {
	if len(uri) > 100 {
		return uri[:100] + "..."
	}
	return uri
}

// allowsResource reports whether client c may have a token for uri: one
// of its resources, or, for a client without a list, the app's audience
// or a resource a route of this configuration declared.
func (a *App) allowsResource(c *Client, uri string) bool {
	if len(c.Resources) > 0 {
		return slices.Contains(c.Resources, uri)
	}
	return uri == a.Audience || a.declaredResource(uri)
}

// defaultAudience is the aud of a token when no resource was asked for:
// the client's resources, or, for a client without a list, the app's
// audience and every resource a route of this configuration declared (RFC
// 8707 §2 lets the server choose a default). A client that knows nothing
// of resource indicators so keeps working at every API, as before routes
// declared resources; a token for one API is a `resource=` away, and
// `resources` on the client restricts it for good.
func (a *App) defaultAudience(c *Client) []string {
	if len(c.Resources) > 0 {
		return c.Resources
	}
	return append([]string{a.Audience}, a.declaredResources()...)
}

// checkResources refuses a requested resource the client may not have.
func (a *App) checkResources(c *Client, requested []string) *oauthError {
	for _, r := range requested {
		if !a.allowsResource(c, r) {
			return invalidTarget("resource " + showResource(r) + " is not allowed for this client")
		}
	}
	return nil
}

// requestedAudience is the aud of a token of a grant without an earlier
// authorization (client credentials, JWT bearer): the requested resources
// if the client may have them, else the default.
func (a *App) requestedAudience(c *Client, requested []string) ([]string, *oauthError) {
	if len(requested) == 0 {
		return a.defaultAudience(c), nil
	}
	if oerr := a.checkResources(c, requested); oerr != nil {
		return nil, oerr
	}
	return requested, nil
}

// requestAudience reads the resource parameters of a token request of a
// grant without an earlier authorization and returns the token's aud.
func (s *Server) requestAudience(c *Client, form url.Values) ([]string, *oauthError) {
	requested, oerr := parseResources(form["resource"])
	if oerr != nil {
		return nil, oerr
	}
	return s.app.requestedAudience(c, requested)
}

// grantAudience is the aud of a token issued from a grant (a code, a
// refresh-token family) whose resources are granted (nil: the default).
// What the client is no longer allowed is dropped; requested must be among
// the rest (RFC 8707 §2.2: a subset, never more); none requested is all of
// them.
func (a *App) grantAudience(c *Client, granted, requested []string) ([]string, *oauthError) {
	if granted == nil {
		granted = a.defaultAudience(c)
	}
	live := make([]string, 0, len(granted))
	for _, r := range granted {
		if a.allowsResource(c, r) {
			live = append(live, r)
		}
	}
	if len(requested) == 0 {
		if len(live) == 0 {
			return nil, invalidTarget("the client is no longer allowed the resources of this grant")
		}
		return live, nil
	}
	for _, r := range requested {
		if !slices.Contains(live, r) {
			return nil, invalidTarget("resource " + showResource(r) + " was not granted (RFC 8707 section 2.2)")
		}
	}
	return requested, nil
}

// audience is an aud claim (RFC 7519 §4.1.3), in access tokens and in
// introspection answers (RFC 7662 §2.2): a string when there is one, an
// array when there are more.
type audience []string

// MarshalJSON implements json.Marshaler.
func (au audience) MarshalJSON() ([]byte, error) {
	if len(au) == 1 {
		return json.Marshal(au[0])
	}
	return json.Marshal([]string(au))
}
