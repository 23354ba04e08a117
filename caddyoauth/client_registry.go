package caddyoauth

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/caddyapigw/gateway/internal/oauthstore"
	"go.uber.org/zap"
)

// The client registry: which clients exist and whether their tokens were
// revoked. Clients from the Caddyfile live in the config; clients created
// through the admin API live in the store (oauthstore.Clients), so every
// instance sharing the store knows them. A client revocation mark refuses
// every token of the client issued before it, whichever kind the client is.
//
// Each instance caches what it read for clientCacheTTL. A stale entry is
// served while one background read refreshes it, so a slow store never
// holds up a request; only the first lookup of a client reads inline.
// Changes therefore reach every instance within about clientCacheTTL.

const (
	clientCacheTTL     = 500 * time.Millisecond
	clientCacheMax     = 10000
	clientStoreTimeout = 2 * time.Second
)

// storedClient is a client registered through the admin API, as kept in
// the store (oauthstore.Clients).
type storedClient struct {
	ClientSettings
	SecretHash string    `json:"secret_hash"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
}

func (sc *storedClient) client() *Client {
	return &Client{ClientSettings: sc.ClientSettings, SecretHash: sc.SecretHash}
}

// clientEntry is what an instance knows of one client_id.
type clientEntry struct {
	client        *Client   // nil: no such store-kept client
	revokedBefore time.Time // zero: never revoked
	// unavailable: the store did not answer when this id was first read,
	// so nothing is known yet; refreshed in the background like any entry.
	unavailable bool
	fetched     time.Time
	refreshing  bool
}

// clientRegistry finds clients: from the Caddyfile first, else from the
// store, through a cache of what this instance read.
type clientRegistry struct {
	static map[string]*Client // the Caddyfile's, by client_id
	store  oauthstore.Clients[storedClient]
	// provision checks a stored client as a configured one is checked.
	provision func(*Client) error
	// markTTL is how long a client revocation mark is kept: longer than
	// any token or refresh-token family that could predate it.
	markTTL time.Duration
	logger  *zap.Logger

	mu    sync.Mutex
	cache map[string]*clientEntry
}

// errStoreUnavailable reports that a client's state could not be read:
// the answer depends on a store that does not answer.
var errStoreUnavailable = errors.New("the store is unavailable")

// lookup finds a client: from the Caddyfile first, else from the
// store. ok is false for an unknown client. err is errStoreUnavailable when
// the client is not in the Caddyfile, this instance has not seen it, and
// the store does not answer. A Caddyfile client whose revocation mark
// cannot be read is served with the last mark known (none if never read).
func (r *clientRegistry) lookup(ctx context.Context, id string) (*Client, time.Time, bool, error) {
	e := r.entry(ctx, id)
	if c, ok := r.static[id]; ok {
		return c, e.revokedBefore, true, nil
	}
	if e.unavailable {
		return nil, time.Time{}, false, errStoreUnavailable
	}
	return e.client, e.revokedBefore, e.client != nil, nil
}

// entry returns the cached entry for id, reading it from the store
// inline the first time and in the background once stale. A first read
// that fails is cached as unavailable too, so while the store is down each
// id costs one inline read per clientCacheTTL, not one per request.
func (r *clientRegistry) entry(ctx context.Context, id string) clientEntry {
	now := time.Now()
	r.mu.Lock()
	e, ok := r.cache[id]
	if ok {
		cur := *e
		if now.Sub(e.fetched) >= clientCacheTTL && !e.refreshing {
			e.refreshing = true
			go r.refreshEntry(id)
		}
		r.mu.Unlock()
		return cur
	}
	r.mu.Unlock()

	fresh, err := r.read(ctx, id)
	if err != nil {
		r.logger.Warn("reading client from the store", zap.String("client_id", id), zap.Error(err))
		fresh = clientEntry{unavailable: true, fetched: time.Now()}
	}
	r.put(id, fresh)
	return fresh
}

// refreshEntry reads id again in the background.
func (r *clientRegistry) refreshEntry(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), clientStoreTimeout)
	defer cancel()
	fresh, err := r.read(ctx, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.cache[id]
	if !ok {
		return
	}
	if err != nil {
		// Keep serving what we knew; try again after another TTL.
		e.refreshing = false
		e.fetched = time.Now()
		r.logger.Warn("refreshing client from the store; keeping the last known state", zap.String("client_id", id), zap.Error(err))
		return
	}
	*e = fresh
}

// put caches e as what is known of id.
func (r *clientRegistry) put(id string, e clientEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache) >= clientCacheMax {
		for k := range r.cache { // drop an arbitrary entry; it is re-read on use
			delete(r.cache, k)
			break
		}
	}
	r.cache[id] = &e
}

// forget drops the cached entry after a change made here.
func (r *clientRegistry) forget(id string) {
	r.mu.Lock()
	delete(r.cache, id)
	r.mu.Unlock()
}

// read reads a client's revocation mark and, unless the client
// is in the Caddyfile, its stored definition.
func (r *clientRegistry) read(ctx context.Context, id string) (clientEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, clientStoreTimeout)
	defer cancel()
	e := clientEntry{fetched: time.Now()}
	if _, static := r.static[id]; !static && clientIDPattern.MatchString(id) {
		c, err := r.readStored(ctx, id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return e, err
		}
		e.client = c
	}
	revoked, err := r.store.RevokedBefore(ctx, id)
	if err != nil {
		return e, err
	}
	e.revokedBefore = revoked
	return e, nil
}

// readStored loads and provisions a store-kept client. A stored
// client that no longer provisions (say, a grant type since removed) is
// logged and treated as absent.
func (r *clientRegistry) readStored(ctx context.Context, id string) (*Client, error) {
	sc, err := r.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	c := sc.client()
	if err := r.provision(c); err != nil {
		r.logger.Error("stored client no longer valid, treated as absent", zap.String("client_id", id), zap.Error(err))
		return nil, ErrNotFound
	}
	return c, nil
}

// revokedSince reports whether an administrator revoked the client's
// tokens at or after the unix time t (a sign-in, a code, a consent).
func (r *clientRegistry) revokedSince(ctx context.Context, clientID string, t int64) (bool, error) {
	_, revokedBefore, ok, err := r.lookup(ctx, clientID)
	if err != nil {
		return false, err
	}
	return ok && !revokedBefore.IsZero() && t <= revokedBefore.Unix(), nil
}

// revokeTokens refuses every token of id issued up to now: access tokens,
// refresh-token families and codes, and it voids remembered consents given
// before it. The mark outlives every token that could predate it, then
// expires.
func (r *clientRegistry) revokeTokens(ctx context.Context, id string) error {
	if err := r.store.Revoke(ctx, id, r.markTTL); err != nil {
		return err
	}
	r.forget(id)
	return nil
}
