package oauthjwt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// ErrClaimType reports a claim that a ClaimMapping reads but that has the
// wrong JSON type: a client id that is not a string, scopes or roles that
// are neither a string nor an array of strings, or a member on the way to
// the roles that is not an object. The token is refused (Describe says
// "token malformed"): its issuer writes something other than what the
// configuration says it does.
var ErrClaimType = errors.New("token claim has the wrong type")

// ClaimMapping says where a JWT access token that does not follow RFC
// 9068 keeps what the resource server needs: the client it was issued to,
// the scopes granted and the roles of its subject. Many authorization
// servers issue such tokens by default (azp or cid instead of client_id,
// scp instead of scope, roles in a claim of their own). A Verifier with a
// mapping applies it once per token, before its cache, and relaxes the
// RFC 9068 header and claim requirements (see VerifierConfig.Mapping).
//
// A ClaimMapping is made by NewClaimMapping and never changes.
type ClaimMapping struct {
	clientID  []string
	scope     string
	roles     string
	rolesPath []string

	// names are the top-level members read from the payload: the client
	// id claims, then the scope claim unless Claims decodes it already
	// (scope, scp), then the first member of the roles path.
	names             []string
	scopeAt, rolesAt  int // index in names, or -1
	scopeFromField    bool
	scopeFromScpField bool
}

// NewClaimMapping checks and builds a mapping.
//
// clientID lists the claims that may name the client, in order: the first
// one present with a non-empty string wins (Entra ID v2 tokens carry azp,
// v1 tokens appid). At least one is required: a token without a client
// would put every caller in one rate-limit bucket.
//
// scope names the claim holding the granted scopes, a space-delimited
// string (RFC 9068 §2.2.3, RFC 6749 §3.3) or an array of strings. Empty:
// the issuer's tokens carry no scopes (a Google ID token).
//
// roles is the path of the claim holding the subject's roles, an array of
// strings or one space-delimited string (RFC 9068 §2.2.3.1 takes the
// roles and groups attributes of SCIM, RFC 7643 §4.1.2). Empty: no
// roles. See SplitClaimPath for how the path is read.
func NewClaimMapping(clientID []string, scope, roles string) (*ClaimMapping, error) {
	if len(clientID) == 0 {
		return nil, errors.New("client id claim: at least one claim name is required")
	}
	for _, n := range clientID {
		if n == "" {
			return nil, errors.New("client id claim: empty claim name")
		}
	}
	m := &ClaimMapping{clientID: slices.Clone(clientID), scope: scope, roles: roles, scopeAt: -1, rolesAt: -1}
	m.names = slices.Clone(clientID)
	switch scope {
	case "":
	case "scope":
		m.scopeFromField = true
	case "scp":
		m.scopeFromScpField = true
	default:
		m.scopeAt = len(m.names)
		m.names = append(m.names, scope)
	}
	if roles != "" {
		path, err := SplitClaimPath(roles)
		if err != nil {
			return nil, fmt.Errorf("roles claim: %v", err)
		}
		m.rolesPath = path
		m.rolesAt = len(m.names)
		m.names = append(m.names, path[0])
	}
	return m, nil
}

// SplitClaimPath reads the path of a possibly nested claim. Dots separate
// the member names of nested objects: "realm_access.roles" is the roles
// member of the realm_access object (Keycloak), and
// "resource_access.my-api.roles" goes one level deeper. A name containing
// "://" is one claim name, dots included, never a path: a namespaced
// claim such as "https://example.com/roles" (RFC 7519 §4.2's
// collision-resistant names, as Auth0 requires for custom claims). A
// member whose own name contains a dot cannot be reached inside a path.
func SplitClaimPath(path string) ([]string, error) {
	if path == "" {
		return nil, errors.New("empty claim path")
	}
	if strings.Contains(path, "://") {
		return []string{path}, nil
	}
	parts := strings.Split(path, ".")
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("%q has an empty member name (dots separate nested members)", path)
		}
	}
	return parts, nil
}

// ClientIDClaims returns the claims that may name the client, in order.
func (m *ClaimMapping) ClientIDClaims() []string { return slices.Clone(m.clientID) }

// ScopeClaim returns the claim holding the scopes; "" for none.
func (m *ClaimMapping) ScopeClaim() string { return m.scope }

// RolesClaim returns the path of the claim holding the roles; "" for none.
func (m *ClaimMapping) RolesClaim() string { return m.roles }

// apply fills in the client id, scopes and roles of verified claims
// whose payload is set.
func (m *ClaimMapping) apply(c *Claims) error {
	var buf [8][]byte
	var found [][]byte
	if n := len(m.names); n <= len(buf) {
		found = buf[:n]
	} else {
		found = make([][]byte, n)
	}
	if err := findMembers([]byte(c.payload), m.names, found); err != nil {
		return fmt.Errorf("%w: payload: %v", jwt.ErrTokenMalformed, err)
	}

	c.ClientID = ""
	for i, name := range m.clientID {
		s, err := stringValue(found[i])
		if err != nil {
			return fmt.Errorf("%w: %s is not a string", ErrClaimType, name)
		}
		if s != "" {
			c.ClientID = s
			break
		}
	}
	if c.ClientID == "" {
		return fmt.Errorf("%w: %s", jwt.ErrTokenRequiredClaimMissing, strings.Join(m.clientID, " or "))
	}

	switch {
	case m.scopeFromField:
		c.scopes = uniqueList(c.Scope)
	case m.scopeFromScpField:
		c.scopes = uniqueList(c.Scp)
	case m.scopeAt >= 0:
		list, err := listValue(found[m.scopeAt])
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrClaimType, m.scope, err)
		}
		c.scopes = compactList(list)
	default:
		c.scopes = []string{}
	}
	c.scopeText = JoinScope(c.scopes)

	if m.rolesAt >= 0 {
		raw := found[m.rolesAt]
		for k := 1; k < len(m.rolesPath) && raw != nil; k++ {
			if isNull(raw) {
				raw = nil
				break
			}
			if raw[0] != '{' {
				return fmt.Errorf("%w: %s: %s is not an object", ErrClaimType, m.roles, strings.Join(m.rolesPath[:k], "."))
			}
			var next [1][]byte
			if err := findMembers(raw, m.rolesPath[k:k+1], next[:]); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrClaimType, m.roles, err)
			}
			raw = next[0]
		}
		list, err := listValue(raw)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrClaimType, m.roles, err)
		}
		roles := compactList(list)
		c.roles = &roleList{list: roles, text: strings.Join(roles, " ")}
	}
	return nil
}

func isNull(raw []byte) bool { return string(raw) == "null" }

// stringValue reads a JSON string; absent or null is "".
func stringValue(raw []byte) (string, error) {
	if raw == nil || isNull(raw) {
		return "", nil
	}
	if len(raw) < 2 || raw[0] != '"' {
		return "", errors.New("not a string")
	}
	if body := raw[1 : len(raw)-1]; plainASCII(body) {
		return string(body), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// listValue reads a space-delimited string or an array of strings;
// absent or null is an empty list.
func listValue(raw []byte) ([]string, error) {
	if raw == nil || isNull(raw) {
		return nil, nil
	}
	if list, ok := plainStringArray(raw); ok {
		return list, nil
	}
	var list ScopeClaim
	if err := list.UnmarshalJSON(raw); err != nil {
		return nil, errors.New("not a string or an array of strings")
	}
	return list, nil
}

// plainASCII reports whether the body of a JSON string is printable ASCII
// without escapes: its bytes are its value. Anything else is decoded by
// encoding/json, which also turns invalid UTF-8 into U+FFFD.
func plainASCII(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// plainStringArray reads a JSON array of plain ASCII strings, the
// usual roles or scp claim, without reflection; anything else (escapes,
// null or other elements, not an array) is left to encoding/json (ok
// false).
func plainStringArray(raw []byte) ([]string, bool) {
	if len(raw) < 2 || raw[0] != '[' {
		return nil, false
	}
	list := make([]string, 0, bytes.Count(raw, []byte{','})+1)
	i := skipSpace(raw, 1)
	if i < len(raw) && raw[i] == ']' {
		return list, skipSpace(raw, i+1) == len(raw)
	}
	for i < len(raw) && raw[i] == '"' {
		k := bytes.IndexByte(raw[i+1:], '"')
		if k < 0 {
			return nil, false
		}
		s := raw[i+1 : i+1+k]
		if !plainASCII(s) {
			return nil, false
		}
		list = append(list, string(s))
		i = skipSpace(raw, i+2+k)
		if i >= len(raw) {
			return nil, false
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case ']':
			return list, skipSpace(raw, i+1) == len(raw)
		default:
			return nil, false
		}
	}
	return nil, false
}

// compactList is uniqueList for a list the caller owns: done in place.
func compactList(list []string) []string {
	out := list[:0]
	for _, s := range list {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if out == nil {
		return []string{}
	}
	return out
}

// uniqueList drops empty and repeated entries, keeping the order; the
// result is never nil.
func uniqueList(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
