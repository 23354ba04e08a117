// Package oauthjwt holds what the authorization server (caddyoauth) and the
// resource-side handler (caddyscope) share: access-token claims (RFC 9068),
// scope parsing (RFC 6749 §3.3), signing keys and token verification. Neither
// Caddy module imports the other; both import this package.
package oauthjwt

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalidScope reports a scope string that does not follow RFC 6749 §3.3.
var ErrInvalidScope = errors.New("invalid scope syntax")

// MaxScopes is the most scope tokens ParseScope accepts in one string: far
// more than any client is registered for, few enough that a request
// cannot make the server work hard (RFC 6749 §3.3 sets no limit; RFC 6749
// §10 leaves resource limits to the server).
const MaxScopes = 128

// ParseScope splits a space-delimited scope parameter (RFC 6749 §3.3) into its
// scope tokens. Tokens are separated by single spaces; each is 1*NQCHAR, where
// NQCHAR is %x21 / %x23-5B / %x5D-7E. Duplicates are removed, order is kept.
// An empty string yields no scopes and no error. More than MaxScopes tokens
// (duplicates counted) is ErrInvalidScope. Linear in len(s).
func ParseScope(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	n := strings.Count(s, " ") + 1
	if n > MaxScopes {
		return nil, fmt.Errorf("%w: more than %d scopes", ErrInvalidScope, MaxScopes)
	}
	out := make([]string, 0, n)
	seen := make(map[string]struct{}, n)
	for tok := range strings.SplitSeq(s, " ") {
		if !ValidScopeToken(tok) {
			return nil, ErrInvalidScope
		}
		if _, dup := seen[tok]; !dup {
			seen[tok] = struct{}{}
			out = append(out, tok)
		}
	}
	return out, nil
}

// ValidScopeToken reports whether tok is a scope-token of RFC 6749 §3.3.
func ValidScopeToken(tok string) bool {
	if tok == "" {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

// JoinScope renders scopes as the space-delimited form of RFC 6749 §3.3.
func JoinScope(scopes []string) string { return strings.Join(scopes, " ") }

// HasAll reports whether have contains every scope in need.
func HasAll(have, need []string) bool {
	for _, n := range need {
		if !slices.Contains(have, n) {
			return false
		}
	}
	return true
}
