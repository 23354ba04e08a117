package oauthjwt

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/golang-jwt/jwt/v5"
)

// Claims is the payload of a JWT access token (RFC 9068 §2.2). It embeds the
// registered claims so golang-jwt validates exp, nbf, iat and iss itself.
type Claims struct {
	jwt.RegisteredClaims

	// ClientID is the OAuth client the token was issued to (RFC 9068 §2.2,
	// RFC 8693 §4.3).
	ClientID string `json:"client_id,omitempty"`

	// Scope is the space-delimited scope string (RFC 9068 §2.2.3). On input a
	// JSON array of strings is accepted too, as some issuers emit one.
	Scope ScopeClaim `json:"scope,omitempty"`

	// Cnf names the key the token is bound to (RFC 7800 §3.1): a DPoP
	// key's thumbprint (RFC 9449 §6.1) or a client certificate's (RFC 8705
	// §3.1). nil for a bearer token.
	Cnf *Confirmation `json:"cnf,omitempty"`

	// Scp is the array form some issuers (Azure AD, Okta) use instead of scope.
	Scp ScopeClaim `json:"scp,omitempty"`

	// payload is the decoded payload while the claims are made; once
	// finish has run, only the members the fields above do not hold
	// exactly (fields says which they hold), as a JSON object, or "" when
	// they hold every member: Claim serves both. A token of this gateway
	// then costs no payload text in the cache at all.
	payload   string
	fields    fieldSet
	rest      atomic.Pointer[map[string]json.RawMessage] // payload's members, read at the first Claim
	scopes    []string
	scopeText string
	roles     *roleList // from a ClaimMapping's roles claim; nil without one
	boxed     [2]any    // ClientID and Subject as interface values (Boxed)
}

// Confirmation is a cnf claim (RFC 7800 §3.1).
type Confirmation struct {
	JKT     string `json:"jkt,omitempty"`      // RFC 9449 §6.1
	X5TS256 string `json:"x5t#S256,omitempty"` // RFC 8705 §3.1
}

// BoundKey is the DPoP key thumbprint the token is bound to, or "".
func (c *Claims) BoundKey() string {
	if c.Cnf == nil {
		return ""
	}
	return c.Cnf.JKT
}

// BoundCert is the x5t#S256 of the TLS client certificate the token is
// bound to (RFC 8705 §3.1), or "".
func (c *Claims) BoundCert() string {
	if c.Cnf == nil {
		return ""
	}
	return c.Cnf.X5TS256
}

// Boxed returns ClientID and Subject as interface values, made once when
// the verifier finished the claims (and shared by the tokens of one client
// or person): a caller that hands them to an API taking any (Caddy's
// replacer) on every request does not allocate each time. Claims made
// another way box them on each call.
func (c *Claims) Boxed() (clientID, subject any) {
	if c.boxed[0] == nil {
		return c.ClientID, c.Subject
	}
	return c.boxed[0], c.boxed[1]
}

// roleList is the roles a ClaimMapping read, apart from Claims so that
// the claims of tokens without a mapping do not carry its fields.
type roleList struct {
	list []string
	text string
}

// Scopes returns the granted scopes: the union of scope and scp, or,
// for a token verified with a ClaimMapping, the scopes of the claim it
// names.
func (c *Claims) Scopes() []string {
	if c.scopes != nil {
		return c.scopes
	}
	return c.mergeScopes()
}

func (c *Claims) mergeScopes() []string {
	if len(c.Scp) == 0 && c.Scope != nil && !hasDuplicate(c.Scope) {
		return c.Scope // the usual case: share the list
	}
	out := make([]string, 0, len(c.Scope)+len(c.Scp))
	for _, s := range c.Scope {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range c.Scp {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func hasDuplicate(list []string) bool {
	for i, s := range list {
		if slices.Contains(list[:i], s) {
			return true
		}
	}
	return false
}

// ScopeText returns the granted scopes, space-delimited.
func (c *Claims) ScopeText() string {
	if c.scopes != nil {
		return c.scopeText
	}
	return JoinScope(c.mergeScopes())
}

// Roles returns the subject's roles, read by the verifier's ClaimMapping
// from the claim it names. Tokens verified without a mapping (RFC 9068
// tokens, the local app's, introspected ones) have none.
func (c *Claims) Roles() []string {
	if c.roles == nil {
		return nil
	}
	return c.roles.list
}

// RolesText returns the roles, space-delimited.
func (c *Claims) RolesText() string {
	if c.roles == nil {
		return ""
	}
	return c.roles.text
}

// HasAudience reports whether aud is among the token's audiences.
func (c *Claims) HasAudience(aud string) bool {
	return slices.Contains(c.Audience, aud)
}

// Claim returns the named claim as text: strings as they are, anything else
// as its JSON encoding. It reads the verified payload, so it also serves
// claims that Claims has no field for.
func (c *Claims) Claim(name string) (string, bool) {
	if raw, ok := c.restMembers()[name]; ok {
		var s string
		if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
			return s, true
		}
		return string(raw), true
	}
	return c.fieldClaim(name)
}

// restMembers decodes payload once, at the first Claim.
func (c *Claims) restMembers() map[string]json.RawMessage {
	if c.payload == "" {
		return nil
	}
	if m := c.rest.Load(); m != nil {
		return *m
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(c.payload), &m); err != nil {
		m = map[string]json.RawMessage{}
	}
	c.rest.Store(&m) // racing first calls store equal maps
	return m
}

// setPayload records the payload segment of the verified token.
func (c *Claims) setPayload(token string) {
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	if first < 0 || last <= first {
		return
	}
	if b, err := base64.RawURLEncoding.DecodeString(token[first+1 : last]); err == nil {
		c.payload = string(b)
	}
}

// finish makes the claims ready to be shared and cached, once they are
// final: the payload shrinks to the members the fields do not hold
// (splitPayload); the strings and lists many tokens repeat become the
// interner's, iss the verifier's issuer when equal (one string for every
// token); ClientID and Subject are boxed for Boxed (once per interned
// string). in may be nil. A cached token of this gateway then costs its
// Claims, its jti, its NumericDates and its cache entry: about 500 bytes
// (BenchmarkVerifierCacheMemory).
func (c *Claims) finish(issuer string, in *interner) {
	c.splitPayload()
	if issuer != "" && c.Issuer == issuer {
		c.Issuer = issuer
	} else {
		c.Issuer = in.str(c.Issuer)
	}
	var boxedClient, boxedSub any
	c.ClientID, boxedClient = in.boxed(c.ClientID)
	c.Subject, boxedSub = in.subject(c.Subject)
	c.Audience = in.list(c.Audience)
	sameScopes := sameList(c.scopes, c.Scope)
	c.Scope = in.list(c.Scope)
	if sameScopes {
		c.scopes = c.Scope
	} else {
		c.scopes = in.list(c.scopes)
	}
	c.scopeText = in.str(c.scopeText)
	c.boxed = [2]any{boxedClient, boxedSub}
}

// sameList reports whether a and b are the same slice (not only equal).
func sameList(a, b []string) bool {
	return len(a) > 0 && len(a) == len(b) && &a[0] == &b[0]
}

// ScopeClaim is a list of scopes that reads from a space-delimited string or
// a JSON array and is written as a space-delimited string (RFC 9068 §2.2.3).
type ScopeClaim []string

// errScopeClaimType reports a scope claim that is neither a string nor an array.
var errScopeClaimType = errors.New("scope claim must be a string or an array of strings")

// UnmarshalJSON implements json.Unmarshaler.
func (s *ScopeClaim) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*s = strings.Fields(str)
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		var arr []string
		if err := json.Unmarshal(b, &arr); err != nil {
			return errScopeClaimType
		}
		out := arr[:0]
		for _, v := range arr {
			if v != "" {
				out = append(out, v)
			}
		}
		*s = out
		return nil
	}
	return errScopeClaimType
}

// MarshalJSON implements json.Marshaler.
func (s ScopeClaim) MarshalJSON() ([]byte, error) {
	return json.Marshal(strings.Join(s, " "))
}
