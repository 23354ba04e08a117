package oauthstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"
)

// Proofs remembers the jti of each DPoP proof accepted (RFC 9449 §11.1)
// until its iat leaves the acceptance window, so a proof replayed to any
// instance sharing the store is refused. It implements dpop.Replay.
type Proofs struct{ owner }

// Claim records jti for the key with thumbprint jkt until until, and
// reports whether it was fresh (false: a replay).
func (o Proofs) Claim(ctx context.Context, jkt, jti string, until time.Time) (bool, error) {
	return o.kv.PutIfAbsent(ctx, proofKey(jkt, jti), []byte{1}, TTLUntil(o.now(), until.Add(time.Second)))
}

// Secrets keeps random keys every instance must share and nobody outside
// needs: the key of DPoP server nonces, say. A secret is made by the
// first instance that asks and never changes afterwards.
type Secrets struct{ owner }

// secretSize is the size of a shared secret: 256 bits.
const secretSize = 32

// Shared returns the secret named name, making it if the store holds
// none. Of instances racing to make it, one wins (PutIfAbsent) and all
// return the winner's.
func (o Secrets) Shared(ctx context.Context, name string) ([]byte, error) {
	key := secretKey(name)
	if b, err := o.kv.Get(ctx, key); err == nil {
		return decodeSecret(b)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	fresh := make([]byte, secretSize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	enc := []byte(base64.RawURLEncoding.EncodeToString(fresh))
	if _, err := o.kv.PutIfAbsent(ctx, key, enc, 0); err != nil {
		return nil, err
	}
	b, err := o.kv.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return decodeSecret(b)
}

func decodeSecret(b []byte) ([]byte, error) {
	s, err := base64.RawURLEncoding.DecodeString(string(b))
	if err != nil || len(s) != secretSize {
		return nil, errors.New("shared secret in the store is corrupt")
	}
	return s, nil
}
