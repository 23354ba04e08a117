package oauthstore

import (
	"crypto/rand"
	"encoding/base64"
)

// NewSecret returns 256 random bits, base64url-encoded (43 characters): a
// code, a refresh token, a session id.
func NewSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// NewID returns 128 random bits, base64url-encoded (22 characters): a jti,
// a family id, a lock token.
func NewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// secretLen is the length of NewSecret's output; anything else presented
// as a code, refresh token or session id is not one, and is not looked up.
const secretLen = 43
