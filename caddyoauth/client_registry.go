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
//
// The cache has two parts. What is known of clients that exist (Caddyfile
// clients once their revocation mark was read, store-kept clients once
// read) is never evicted: it is bounded by the clients an administrator
// made, and it holds the revocation marks, which must never be forgotten
// because someone sent made-up client_ids. Everything else (unknown ids,
// ids whose first read failed) is bounded by clientCacheMax and evicted
// freely. A decision about a token already issued (revokedSince, Client)
// whose client's mark cannot be read fails closed: errStoreUnavailable,
// a 503 the client retries, never "not revoked" and never "unknown".

const (
	clientCacheTTL     = 500 * time.Millisecond
	clientCacheMax     = 10000
	clientStoreTimeout = 2 * time.Second
)

// storedClient is a client registered through the admin API, as kept in
// the store (oauthstore.Clients).
type storedClient struct {
	ClientSettings
	SecretHash string `json:"secret_hash"`
	// PreviousSecretHash is the secret a rotation replaced, which keeps
	// working until PreviousSecretUntil (an overlap window for deploying
	// the new one).
	PreviousSecretHash  string    `json:"previous_secret_hash,omitempty"`
	PreviousSecretUntil time.Time `json:"previous_secret_until,omitzero"`
	// RegistrationTokenHash is the SHA-256 of the registration access
	// token of a dynamically registered client (RFC 7592 §1), empty for
	// a client made through the admin API.
	RegistrationTokenHash string    `json:"registration_token_hash,omitempty"`
	Created               time.Time `json:"created"`
	Updated               time.Time `json:"updated"`
}

func (sc *storedClient) client() *Client {
	return &Client{ClientSettings: sc.ClientSettings, SecretHash: sc.SecretHash}
}

// keepPreviousSecret lets a provisioned c also accept the secret the last
// rotation replaced, until its overlap window ends.
func (sc *storedClient) keepPreviousSecret(c *Client, now func() time.Time) {
	if sc.PreviousSecretHash == "" || c.secret == nil || !now().Before(sc.PreviousSecretUntil) {
		return
	}
	prev, err := parseSecretHash(sc.PreviousSecretHash)
	if err != nil {
		return
	}
	c.secret = &overlapChecker{current: c.secret, previous: prev, until: sc.PreviousSecretUntil, now: now}
}

// overlapChecker accepts the current secret, and the previous one until a
// time. Both are compared every time, so the answer's timing does not say
// which matched.
type overlapChecker struct {
	current, previous secretChecker
	until             time.Time
	now               func() time.Time
}

func (o *overlapChecker) check(presented string) bool {
	cur := o.current.check(presented)
	prev := o.previous.check(presented)
	return cur || (prev && o.now().Before(o.until))
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
	clock   func() time.Time // the app's; bounds previous secrets

	mu sync.Mutex
	// known: clients that exist, read successfully; never evicted.
	known map[string]*clientEntry
	// others: unknown ids and failed first reads; at most maxOthers
	// (clientCacheMax; tests lower it).
	others    map[string]*clientEntry
	maxOthers int
}

// errStoreUnavailable reports that a client's state could not be read:
// the answer depends on a store that does not answer.
var errStoreUnavailable = errors.New("the store is unavailable")

// lookup finds a client: from the Caddyfile first, else from the
// store. ok is false for an unknown client. err is errStoreUnavailable when
// the client is not in the Caddyfile, this instance has not seen it, and
// the store does not answer. For a Caddyfile client the mark returned may
// be unknown (zero) when the store never answered: use issued to judge a
// token already issued.
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

// issued is lookup for judging something already issued (a token, a
// family, a code, a consent): it fails closed, with errStoreUnavailable,
// when the client's revocation mark has never been read, Caddyfile
// clients included.
func (r *clientRegistry) issued(ctx context.Context, id string) (*Client, time.Time, bool, error) {
	e := r.entry(ctx, id)
	if e.unavailable {
		return nil, time.Time{}, false, errStoreUnavailable
	}
	if c, ok := r.static[id]; ok {
		return c, e.revokedBefore, true, nil
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
	e, ok := r.known[id]
	if !ok {
		e, ok = r.others[id]
	}
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
	r.mu.Lock()
	if cur, ok := r.known[id]; ok && fresh.unavailable {
		// Read successfully by another request meanwhile: keep that.
		fresh = *cur
	} else {
		r.placeLocked(id, &fresh)
	}
	r.mu.Unlock()
	return fresh
}

// refreshEntry reads id again in the background.
func (r *clientRegistry) refreshEntry(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), clientStoreTimeout)
	defer cancel()
	fresh, err := r.read(ctx, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.known[id]
	if !ok {
		e, ok = r.others[id]
	}
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
	r.placeLocked(id, &fresh)
}

// placeLocked caches e as what is known of id, in the part it belongs to;
// r.mu is held.
func (r *clientRegistry) placeLocked(id string, e *clientEntry) {
	_, static := r.static[id]
	if !e.unavailable && (static || e.client != nil) {
		delete(r.others, id)
		r.known[id] = e
		return
	}
	delete(r.known, id)
	if _, ok := r.others[id]; !ok && len(r.others) >= r.maxOthers {
		for k := range r.others { // drop an arbitrary entry; it is re-read on use
			delete(r.others, k)
			break
		}
	}
	r.others[id] = e
}

// prime reads what is known of the Caddyfile clients (their revocation
// marks), so that a store outage later finds them known: issued fails
// closed for a mark never read. A failure is left to the first use, which
// reads again; the whole costs at most clientStoreTimeout.
func (r *clientRegistry) prime(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, clientStoreTimeout)
	defer cancel()
	for id := range r.static {
		if ctx.Err() != nil {
			return
		}
		r.entry(ctx, id)
	}
}

// forget drops the cached entry after a change made here.
func (r *clientRegistry) forget(id string) {
	r.mu.Lock()
	delete(r.known, id)
	delete(r.others, id)
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
	sc.keepPreviousSecret(c, r.clock)
	return c, nil
}

// revokedSince reports whether an administrator revoked the client's
// tokens at or after the unix time t (a sign-in, a code, a consent).
func (r *clientRegistry) revokedSince(ctx context.Context, clientID string, t int64) (bool, error) {
	_, revokedBefore, ok, err := r.issued(ctx, clientID)
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
