package oauthjwt

import "time"

// Authority is what a resource-side handler needs from the local
// authorization server (the caddyoauth app) to accept its tokens in-process,
// with no HTTP round trip. caddyscope finds it with ctx.AppIfConfigured and
// a type assertion, so neither module imports the other.
type Authority interface {
	// Verifier checks tokens issued by this authority.
	Verifier() *Verifier
	// TokenAudience is the aud this authority puts in its access tokens; a
	// route without its own audience list requires it (RFC 9068 §4).
	TokenAudience() string
	// Client describes a registered client. A token whose client is not
	// (or no longer) registered is refused (ok false, err nil). err
	// reports that the client's record or revocation mark could not be
	// read (a store outage): the token is neither accepted nor refused,
	// the caller answers 503 with Retry-After.
	Client(id string) (info ClientInfo, ok bool, err error)
	// Revoked reports whether the token with this jti was revoked (RFC
	// 7009) and has not expired yet. It must be cheap: it runs on every
	// request, from a local copy of the revocation list.
	Revoked(jti string) bool
	// DeclareResource records, at provision time, that a route of this
	// configuration guards the resource uri (RFC 8707 §2, RFC 9728 §2):
	// a client without a resources list of its own may ask for a token
	// whose audience is that resource.
	DeclareResource(uri string)
}

// ClientInfo is the public description of a registered client.
type ClientInfo struct {
	ID       string
	Name     string
	Metadata map[string]string
	// Scopes the client may hold now. A token keeps only the scopes its
	// client is still allowed, so narrowing a client's scopes in the
	// config applies to tokens issued before.
	Scopes []string
	// RevokedBefore, if set, refuses every token of the client issued at
	// or before it (an administrator revoked them all).
	RevokedBefore time.Time
}

// RevokedToken reports whether a token of the client falls under its
// revocation mark: issued at or before RevokedBefore (or without iat).
func (c ClientInfo) RevokedToken(claims *Claims) bool {
	return !c.RevokedBefore.IsZero() && (claims.IssuedAt == nil || !claims.IssuedAt.After(c.RevokedBefore))
}
