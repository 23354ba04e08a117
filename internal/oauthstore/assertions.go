package oauthstore

import (
	"context"
	"time"
)

// Assertions remembers the jti of each JWT assertion a client presented
// (RFC 7523 §3 item 7) until the assertion expires, so that a replay is
// refused on every instance sharing the store.
type Assertions struct{ owner }

// Claim records client's jti until until, and reports whether it was
// fresh (false: a replay). An until already past is kept a moment, never
// for ever.
func (o Assertions) Claim(ctx context.Context, client, jti string, until time.Time) (bool, error) {
	return o.kv.PutIfAbsent(ctx, assertionKey(client, jti), []byte{1}, TTLUntil(o.now(), until.Add(time.Second)))
}
