package oauthjwt

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
)

// IDTokenType is the JWS typ header of an ID token. OpenID Connect Core
// §2 defines none; "JWT" (RFC 7519 §5.1) is what relying parties expect,
// and it differs from an access token's "at+jwt", so a verifier that
// requires RFC 9068's type never takes an ID token for an access token
// (RFC 9068 §4, RFC 8725 §3.11).
const IDTokenType = "JWT"

// SignIDToken signs claims as an OpenID Connect ID token with the active
// key: header {"alg", "kid", "typ": "JWT"}.
func (kr *Keyring) SignIDToken(claims any) (string, error) {
	k := kr.active
	if k.hmac != nil {
		return "", ErrNoSigningKey // a keyring holds public-key keys only
	}
	return k.signWith(k.idHdr, claims)
}

// HalfHash is the at_hash (or c_hash) of value for an ID token signed with
// alg (OpenID Connect Core §3.1.3.6): the base64url of the left half of
// the hash that alg's signature uses. EdDSA with Ed25519 uses SHA-512, as
// the OpenID Connect Core errata and the relying-party libraries do.
func HalfHash(alg, value string) string {
	var h hash.Hash
	switch alg {
	case ES384:
		h = sha512.New384()
	case EdDSA:
		h = sha512.New()
	default: // RS256, PS256, ES256, HS256
		h = sha256.New()
	}
	h.Write([]byte(value))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}
