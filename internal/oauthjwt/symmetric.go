package oauthjwt

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// HS256 is HMAC with SHA-256 (RFC 7518 §3.2), for a client that asked for
// access tokens under its own shared key. Such a key is never in a
// Keyring (so never in a JWKS) and a Verifier accepts HS256 only with
// AllowHS256 set and only for a kid that resolves to an HS256 key: the alg
// is pinned to the key, so a token cannot be checked with HS256 keyed by a
// public key.
const HS256 = "HS256"

// minHMACKeyBytes is RFC 7518 §3.2's minimum: a key as long as the hash.
const minHMACKeyBytes = 32

// ErrHMACClaims reports an HS256 token whose claims go beyond what its key's
// owner may assert.
var ErrHMACClaims = errors.New("HS256 token claims exceed its key's client")

// checkHMACClaims bounds what an HS256 token may say. Its client holds the
// key and could sign anything, so the token must be the client's own
// (client_id and sub both the key's owner: no person's identity) and
// expire within the longest access-token lifetime.
func checkHMACClaims(k *Key, c *Claims, now time.Time) error {
	if c.ClientID != k.owner || c.Subject != k.owner {
		return ErrHMACClaims
	}
	if c.ExpiresAt == nil || c.ExpiresAt.Sub(now) > maxHMACTokenLifetime {
		return ErrHMACClaims
	}
	return nil
}

// maxHMACTokenLifetime bounds exp of an HS256 token (24h, the longest
// access-token lifetime, plus the largest leeway).
const maxHMACTokenLifetime = 24*time.Hour + 5*time.Minute

// NewHMACKey makes an HS256 key under kid from secret (32 bytes at least)
// for the client owner: tokens verified with it must be that client's own.
func NewHMACKey(kid, owner string, secret []byte) (*Key, error) {
	if len(secret) < minHMACKeyBytes {
		return nil, errors.New("an HS256 key needs at least 32 bytes (RFC 7518 §3.2)")
	}
	if kid == "" {
		return nil, errors.New("an HS256 key needs a kid")
	}
	k := &Key{ID: kid, Alg: HS256, Public: append([]byte(nil), secret...), method: jwt.SigningMethodHS256}
	k.hmac, k.owner = k.Public.([]byte), owner
	hdr, _ := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{HS256, kid, AccessTokenType})
	k.header = base64.RawURLEncoding.EncodeToString(hdr)
	return k, nil
}

// SignAccessToken signs claims as an RFC 9068 access token with k.
func (k *Key) SignAccessToken(claims any) (string, error) { return k.sign(claims) }

// SignAccessTokenJSON is SignAccessToken for claims the caller has already
// encoded as a JSON object (payload is not checked, nor kept).
func (k *Key) SignAccessTokenJSON(payload []byte) (string, error) {
	return k.signJSON(k.header, payload)
}
