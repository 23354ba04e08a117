package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// DefaultNonceLifetime is how long a server nonce stays current; one is
// accepted for up to twice that (the current period and the one before).
const DefaultNonceLifetime = 5 * time.Minute

// Nonces makes and checks server nonces (RFC 9449 §8, §9) without state:
// a nonce is its period number and an HMAC of it, so every instance that
// shares the key (kept in the store) accepts every other's nonces, and
// rotation is the period changing.
type Nonces struct {
	key      []byte
	lifetime time.Duration
}

// NewNonces makes a nonce source with key (32 random bytes shared by the
// cluster) and lifetime (DefaultNonceLifetime if 0).
func NewNonces(key []byte, lifetime time.Duration) *Nonces {
	if lifetime <= 0 {
		lifetime = DefaultNonceLifetime
	}
	return &Nonces{key: key, lifetime: lifetime}
}

// Current is the nonce to send in DPoP-Nonce now.
func (n *Nonces) Current(now time.Time) string {
	return n.make(n.period(now))
}

// Valid reports whether nonce is the current nonce or the one before it.
func (n *Nonces) Valid(nonce string, now time.Time) bool {
	if len(nonce) != nonceLen {
		return false
	}
	p := n.period(now)
	// hmac.Equal: the tag is a secret's output, compared in constant time.
	return hmac.Equal([]byte(nonce), []byte(n.make(p))) || hmac.Equal([]byte(nonce), []byte(n.make(p-1)))
}

func (n *Nonces) period(now time.Time) uint64 {
	return uint64(now.UnixNano() / int64(n.lifetime))
}

// nonceLen is the length of a nonce: base64url of 8 + 16 bytes.
var nonceLen = base64.RawURLEncoding.EncodedLen(8 + 16)

func (n *Nonces) make(period uint64) string {
	var buf [8 + 16]byte
	binary.BigEndian.PutUint64(buf[:8], period)
	m := hmac.New(sha256.New, n.key)
	m.Write([]byte("dpop-nonce\x00"))
	m.Write(buf[:8])
	copy(buf[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(buf[:])
}
