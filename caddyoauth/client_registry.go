package caddyoauth

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
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

// clientCache holds clientEntry values by client_id.
type clientCache struct {
	mu sync.Mutex
	m  map[string]*clientEntry
}

// errStoreUnavailable reports that a client's state could not be read:
// the answer depends on a store that does not answer.
var errStoreUnavailable = errors.New("the store is unavailable")

// lookupClient finds a client: from the Caddyfile first, else from the
// store. ok is false for an unknown client. err is errStoreUnavailable when
// the client is not in the Caddyfile, this instance has not seen it, and
// the store does not answer. A Caddyfile client whose revocation mark
// cannot be read is served with the last mark known (none if never read).
func (a *App) lookupClient(ctx context.Context, id string) (*Client, time.Time, bool, error) {
	e := a.clientEntry(ctx, id)
	if c, ok := a.clients[id]; ok {
		return c, e.revokedBefore, true, nil
	}
	if e.unavailable {
		return nil, time.Time{}, false, errStoreUnavailable
	}
	return e.client, e.revokedBefore, e.client != nil, nil
}

// clientEntry returns the cached entry for id, reading it from the store
// inline the first time and in the background once stale. A first read
// that fails is cached as unavailable too, so while the store is down each
// id costs one inline read per clientCacheTTL, not one per request.
func (a *App) clientEntry(ctx context.Context, id string) clientEntry {
	now := time.Now()
	cc := a.clientCache
	cc.mu.Lock()
	e, ok := cc.m[id]
	if ok {
		cur := *e
		if now.Sub(e.fetched) >= clientCacheTTL && !e.refreshing {
			e.refreshing = true
			go a.refreshClientEntry(id)
		}
		cc.mu.Unlock()
		return cur
	}
	cc.mu.Unlock()

	fresh, err := a.readClientEntry(ctx, id)
	if err != nil {
		a.logger.Warn("reading client from the store", zap.String("client_id", id), zap.Error(err))
		fresh = clientEntry{unavailable: true, fetched: time.Now()}
	}
	a.putClientEntry(id, fresh)
	return fresh
}

func (a *App) refreshClientEntry(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), clientStoreTimeout)
	defer cancel()
	fresh, err := a.readClientEntry(ctx, id)
	a.clientCache.mu.Lock()
	defer a.clientCache.mu.Unlock()
	e, ok := a.clientCache.m[id]
	if !ok {
		return
	}
	if err != nil {
		// Keep serving what we knew; try again after another TTL.
		e.refreshing = false
		e.fetched = time.Now()
		a.logger.Warn("refreshing client from the store; keeping the last known state", zap.String("client_id", id), zap.Error(err))
		return
	}
	*e = fresh
}

func (a *App) putClientEntry(id string, e clientEntry) {
	cc := a.clientCache
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if len(cc.m) >= clientCacheMax {
		for k := range cc.m { // drop an arbitrary entry; it is re-read on use
			delete(cc.m, k)
			break
		}
	}
	cc.m[id] = &e
}

// forgetClient drops the cached entry after a change made here.
func (a *App) forgetClient(id string) {
	a.clientCache.mu.Lock()
	delete(a.clientCache.m, id)
	a.clientCache.mu.Unlock()
}

// readClientEntry reads a client's revocation mark and, unless the client
// is in the Caddyfile, its stored definition.
func (a *App) readClientEntry(ctx context.Context, id string) (clientEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, clientStoreTimeout)
	defer cancel()
	e := clientEntry{fetched: time.Now()}
	if _, static := a.clients[id]; !static && clientIDPattern.MatchString(id) {
		c, err := a.readStoredClient(ctx, id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return e, err
		}
		e.client = c
	}
	revoked, err := a.clientStore.RevokedBefore(ctx, id)
	if err != nil {
		return e, err
	}
	e.revokedBefore = revoked
	return e, nil
}

// readStoredClient loads and provisions a store-kept client. A stored
// client that no longer provisions (say, a grant type since removed) is
// logged and treated as absent.
func (a *App) readStoredClient(ctx context.Context, id string) (*Client, error) {
	sc, err := a.clientStore.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	c := sc.client()
	if err := c.provision(caddy.NewReplacer(), a); err != nil {
		a.logger.Error("stored client no longer valid, treated as absent", zap.String("client_id", id), zap.Error(err))
		return nil, ErrNotFound
	}
	return c, nil
}
