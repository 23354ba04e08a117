package oauthstore

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// Clients registered at run time (through the admin API) live in the store,
// so every instance sharing it knows them. A client revocation mark,
// "every token of this client issued at or before t is revoked", is kept
// apart from the registration: Caddyfile clients have marks too.

// Clients keeps clients registered at run time as the caller's record type
// R, and every client's revocation mark.
type Clients[R any] struct {
	owner
	id func(*R) string // the client_id a record names
}

// NewClients makes the owner of R records in kv; id tells the client_id a
// record names, which must be the one it is kept under.
func NewClients[R any](kv Store, now func() time.Time, log *zap.Logger, id func(*R) string) Clients[R] {
	return Clients[R]{owner: owner{kv: kv, now: now, log: log}, id: id}
}

// Get returns client id's record, or ErrNotFound.
func (o Clients[R]) Get(ctx context.Context, id string) (*R, error) {
	r := new(R)
	if err := o.getJSON(ctx, clientKey(id), "client", r, func() bool { return o.id(r) == id }); err != nil {
		return nil, err
	}
	return r, nil
}

// Create stores a new client's record and reports whether it did (false:
// the id is taken).
func (o Clients[R]) Create(ctx context.Context, r *R) (bool, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	return o.kv.PutIfAbsent(ctx, clientKey(o.id(r)), b, 0)
}

// Put stores a client's record, replacing what was there.
func (o Clients[R]) Put(ctx context.Context, r *R) error {
	return o.putJSON(ctx, clientKey(o.id(r)), r, 0)
}

// Delete removes client id's record (not its revocation mark).
func (o Clients[R]) Delete(ctx context.Context, id string) error {
	return o.kv.Delete(ctx, clientKey(id))
}

// List returns every readable record; corrupt ones are logged and left out.
func (o Clients[R]) List(ctx context.Context) ([]*R, error) {
	keys, err := o.kv.List(ctx, clientsPrefix)
	if err != nil {
		return nil, err
	}
	var out []*R
	for _, k := range keys {
		r := new(R)
		if o.getJSON(ctx, k, "client", r, nil) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// RevokedBefore returns client id's revocation mark: zero if it has none
// (or a corrupt one, logged).
func (o Clients[R]) RevokedBefore(ctx context.Context, id string) (time.Time, error) {
	v, err := o.kv.Get(ctx, clientRevocationKey(id))
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return time.Time{}, nil
		}
		return time.Time{}, err
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		o.log.Error("corrupt client revocation mark treated as absent", zap.String("client_id", id))
		return time.Time{}, nil
	}
	return time.Unix(n, 0), nil
}

// Revoke marks every token of client id issued until now as revoked; the
// mark is kept for ttl, the longest any such token or grant can live.
func (o Clients[R]) Revoke(ctx context.Context, id string, ttl time.Duration) error {
	return o.kv.Put(ctx, clientRevocationKey(id), []byte(strconv.FormatInt(o.now().Unix(), 10)), ttl)
}
