package oauthjwt

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"unsafe"
)

// AccessTokenType is the JWS typ header of an access token (RFC 9068 §2.1).
const AccessTokenType = "at+jwt"

// ErrNoSigningKey reports a keyring without a private key to sign with.
var ErrNoSigningKey = errors.New("keyring has no signing key")

// Keyring is an immutable set of keys: one active signing key and any number
// of keys kept only to verify tokens they signed earlier. Replace the whole
// keyring to rotate.
type Keyring struct {
	active *Key
	byID   map[string]*Key
	order  []*Key
}

// NewKeyring builds a keyring that signs with active and verifies with active
// and every key in verifyOnly. Keys with the same kid must be the same key.
func NewKeyring(active *Key, verifyOnly ...*Key) (*Keyring, error) {
	if active == nil || active.Signer == nil {
		return nil, ErrNoSigningKey
	}
	for _, k := range verifyOnly {
		if k == nil || k.hmac != nil {
			return nil, errors.New("a keyring holds public-key keys only; HS256 keys stay with their client")
		}
	}
	kr := &Keyring{active: active, byID: make(map[string]*Key, 1+len(verifyOnly))}
	for _, k := range append([]*Key{active}, verifyOnly...) {
		if prev, ok := kr.byID[k.ID]; ok {
			if prev.Alg != k.Alg {
				// One kid, two algorithms: the confusion RFC 8725 §3.1 warns of.
				return nil, errors.New("kid " + k.ID + " is used with two algorithms")
			}
			continue
		}
		kr.byID[k.ID] = k
		kr.order = append(kr.order, k)
	}
	return kr, nil
}

// Active returns the key new tokens are signed with.
func (kr *Keyring) Active() *Key { return kr.active }

// Lookup finds a key by kid.
func (kr *Keyring) Lookup(kid string) (*Key, bool) {
	k, ok := kr.byID[kid]
	return k, ok
}

// Keys returns every key, the active one first.
func (kr *Keyring) Keys() []*Key { return kr.order }

// JWKS is a JSON Web Key Set document (RFC 7517 §5).
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns the public keys as a key set.
func (kr *Keyring) JWKS() JWKS {
	set := JWKS{Keys: make([]JWK, 0, len(kr.order))}
	for _, k := range kr.order {
		set.Keys = append(set.Keys, k.PublicJWK())
	}
	return set
}

// SignAccessToken signs claims as an RFC 9068 access token with the active
// key: header {"alg", "kid", "typ": "at+jwt"}.
func (kr *Keyring) SignAccessToken(claims any) (string, error) {
	return kr.active.sign(claims)
}

// SignAccessTokenJSON is SignAccessToken for claims the caller has
// already encoded as a JSON object (payload is not checked, nor kept).
func (kr *Keyring) SignAccessTokenJSON(payload []byte) (string, error) {
	return kr.active.signJSON(kr.active.header, payload)
}

func (k *Key) sign(claims any) (string, error) { return k.signWith(k.header, claims) }

func (k *Key) signWith(header string, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return k.signJSON(header, payload)
}

// signPool recycles signJSON's buffers.
var signPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// signJSON signs payload under header (its base64url form, precomputed
// per key), assembling the JWS compact serialization (RFC 7515 §7.1) in a
// pooled buffer: the token's text is the one allocation of its own.
func (k *Key) signJSON(header string, payload []byte) (string, error) {
	var signKey any = k.Signer
	switch {
	case k.hmac != nil:
		signKey = k.hmac
	case k.Signer == nil:
		return "", ErrNoSigningKey
	}
	enc := base64.RawURLEncoding
	bp := signPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 16<<10 {
			*bp = (*bp)[:0]
			signPool.Put(bp)
		}
	}()
	b := append((*bp)[:0], header...)
	b = append(b, '.')
	b = enc.AppendEncode(b, payload)
	// The signing input is read, never kept, by Sign: a view of the
	// buffer, not a copy.
	sig, err := k.method.Sign(unsafe.String(unsafe.SliceData(b), len(b)), signKey)
	if err != nil {
		return "", err
	}
	b = append(b, '.')
	b = enc.AppendEncode(b, sig)
	*bp = b
	return string(b), nil
}
