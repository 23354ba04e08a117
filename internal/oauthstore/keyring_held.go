package oauthstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// A keyring lost with its store. Signing keys live in the store so that
// restarts and every instance of a cluster agree on them; a store that
// loses its data (a Redis restarted without persistence, a flushed
// database, a wiped storage directory) would otherwise make the next
// instance that loads mint a new keyring, which every other instance then
// follows, and every token issued before is refused everywhere.
//
// So this process remembers the last keyring it read or wrote for each
// issuer in each store, and can write it back into the SAME store when
// that store comes back without it. "The same store" is the store's
// identity (StoreIdentity: backend, address, database, prefix or storage
// path; never a secret) plus its marker: a random id kept in the store
// under "store-id", written the first time this process keeps a keyring
// there. A store at the same address whose marker is missing lost its
// data; one whose marker is ours lost only the keyring; one with another
// marker is another store that happens to sit at the same address, and
// gets nothing from us. A store with no identity (a third-party backend
// that does not implement Identifier) never gets a keyring written back.

// Identifier is a Store that can name the data it holds: two stores with
// the same identity read and write the same entries. The identity must
// not hold a secret.
type Identifier interface {
	StoreIdentity() string
}

// StoreIdentity is s's identity, or "" when s has none.
func StoreIdentity(s Store) string {
	if i, ok := s.(Identifier); ok {
		return i.StoreIdentity()
	}
	return ""
}

// markerKey holds the store's marker (see above).
const markerKey = "store-id"

// heldKeyring is what this process last saw of one issuer's keyring in
// one store, and that store's marker.
type heldKeyring struct {
	ring   *StoredKeyring
	marker string
}

// held is process-wide on purpose: a Caddy reload provisions a new app,
// and it is that new app that finds the store empty.
var held = struct {
	mu sync.Mutex
	m  map[string]heldKeyring
}{m: make(map[string]heldKeyring)}

func heldName(identity, issuer string) string { return identity + "\x00" + issuer }

// remember records sk as issuer's keyring in this store, and makes sure
// the store carries a marker this process knows. A store without an
// identity is not remembered.
func (o Keyrings) remember(ctx context.Context, issuer string, sk *StoredKeyring) {
	id := StoreIdentity(o.kv)
	if id == "" {
		return
	}
	name := heldName(id, issuer)
	held.mu.Lock()
	h := held.m[name]
	held.mu.Unlock()
	if h.marker == "" {
		m, err := o.marker(ctx)
		if err != nil {
			o.log.Warn("reading the store marker: " + err.Error())
		}
		h.marker = m
	}
	h.ring = cloneKeyring(sk)
	held.mu.Lock()
	held.m[name] = h
	held.mu.Unlock()
}

// marker returns the store's marker, writing a new one if it has none.
func (o Keyrings) marker(ctx context.Context) (string, error) {
	b, err := o.kv.Get(ctx, markerKey)
	if err == nil {
		return string(b), nil
	}
	if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	id, err := NewID()
	if err != nil {
		return "", err
	}
	if _, err := o.kv.PutIfAbsent(ctx, markerKey, []byte(id), 0); err != nil {
		return "", err
	}
	b, err = o.kv.Get(ctx, markerKey)
	return string(b), err
}

// Loss says why a held keyring may be written back.
type Loss string

const (
	// LossStoreEmpty: the store's marker is gone too; the store lost its
	// data (restarted empty, flushed, wiped).
	LossStoreEmpty Loss = "the store came back empty"
	// LossKeyringOnly: the store still carries our marker; only the
	// keyring is gone (deleted by hand, or evicted).
	LossKeyringOnly Loss = "the keyring is missing from the store"
)

// Lost is called when the store holds no keyring for issuer. It returns
// the keyring this process last saw there and why it may be written back,
// or nil when there is none to write back: this process never kept one in
// this store, the store has no identity, or the store is another one at
// the same address (its marker is not ours).
func (o Keyrings) Lost(ctx context.Context, issuer string) (*StoredKeyring, Loss, error) {
	id := StoreIdentity(o.kv)
	if id == "" {
		return nil, "", nil
	}
	held.mu.Lock()
	h, ok := held.m[heldName(id, issuer)]
	held.mu.Unlock()
	if !ok || h.ring == nil || h.marker == "" {
		return nil, "", nil
	}
	b, err := o.kv.Get(ctx, markerKey)
	switch {
	case errors.Is(err, ErrNotFound):
		return cloneKeyring(h.ring), LossStoreEmpty, nil
	case err != nil:
		return nil, "", fmt.Errorf("reading the store marker: %v", err)
	case string(b) == h.marker:
		return cloneKeyring(h.ring), LossKeyringOnly, nil
	}
	return nil, "", nil
}

// Restore writes back a keyring Lost returned, and the store marker this
// process knew, so the store is again the one it was.
func (o Keyrings) Restore(ctx context.Context, issuer string, sk *StoredKeyring) error {
	id := StoreIdentity(o.kv)
	held.mu.Lock()
	h := held.m[heldName(id, issuer)]
	held.mu.Unlock()
	if id == "" || h.marker == "" {
		return errors.New("no keyring of this store to restore")
	}
	if _, err := o.kv.PutIfAbsent(ctx, markerKey, []byte(h.marker), 0); err != nil {
		return fmt.Errorf("restoring the store marker: %v", err)
	}
	return o.Put(ctx, issuer, sk)
}

func cloneKeyring(sk *StoredKeyring) *StoredKeyring {
	c := *sk
	c.Keys = append([]StoredKey(nil), sk.Keys...)
	return &c
}
