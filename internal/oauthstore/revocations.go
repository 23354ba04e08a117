package oauthstore

import (
	"context"
	"errors"
	"time"
)

// Revoked access tokens (RFC 7009). A JWT access token cannot be recalled,
// so its jti goes on a revocation list until the token expires. The list is
// one entry per token with the expiry in the key, so a listing alone
// rebuilds it; every revocation also writes a new random stamp, so an
// instance can read one key to learn whether the list changed, and list
// (which scans) only then.

// Revocations keeps the revoked access tokens.
type Revocations struct{ owner }

// Add puts jti on the list until until.
func (o Revocations) Add(ctx context.Context, jti string, until time.Time) error {
	ttl := until.Sub(o.now())
	if ttl <= 0 {
		return nil
	}
	return o.kv.Put(ctx, tokenRevocationKey(jti, until.Unix()), nil, ttl+time.Second)
}

// Announce writes a new stamp, telling the other instances to list again.
func (o Revocations) Announce(ctx context.Context) error {
	stamp, err := NewID()
	if err != nil {
		return err
	}
	return o.kv.Put(ctx, revocationStampKey, []byte(stamp), 0)
}

// Stamp returns the current stamp ("" when none was ever written).
func (o Revocations) Stamp(ctx context.Context) (string, error) {
	b, err := o.kv.Get(ctx, revocationStampKey)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return "", err
	}
	return string(b), nil
}

// List returns the revoked jtis (in their SafeID form) that have not
// expired, with their expiry in unix seconds.
func (o Revocations) List(ctx context.Context) (map[string]int64, error) {
	keys, err := o.kv.List(ctx, tokenRevocationsPrefix)
	if err != nil {
		return nil, err
	}
	now := o.now().Unix()
	m := make(map[string]int64, len(keys))
	for _, k := range keys {
		if jti, exp, ok := parseTokenRevocationKey(k); ok && now <= exp {
			m[jti] = exp
		}
	}
	return m, nil
}
