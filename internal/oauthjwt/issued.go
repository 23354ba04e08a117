package oauthjwt

import (
	"sync"
	"time"
)

// issuedTokens holds the claims of tokens this process has signed
// (Verifier.Remember) until their first use takes them out, oldest out
// first when full: a token is used soon after it is issued, so the
// oldest is the one least likely to be used still, and with first in,
// first out a token survives until capacity more have been issued
// (random eviction would drop some of the newest too). One lock: it is
// taken once per issued token and once per cache miss, each next to a
// signature (tens of microseconds).
type issuedTokens struct {
	mu   sync.Mutex
	cap  int
	m    map[CacheKey]issuedEntry // made at the first Put, as ring
	ring []CacheKey               // the keys in the order they came; stale once taken
	next int                      // the slot the next token overwrites
}

type issuedEntry struct {
	c        *Claims
	deadline int64 // unix nanoseconds
	slot     int   // its slot in ring
}

// newIssuedTokens makes an area for capacity tokens. Its memory is taken
// at the first Put: verifiers of other issuers never remember a token.
func newIssuedTokens(capacity int) *issuedTokens { return &issuedTokens{cap: capacity} }

// Cap is the most tokens held.
func (t *issuedTokens) Cap() int { return t.cap }

// Put holds c for the token of key until deadline, dropping the oldest
// token held if it is full.
func (t *issuedTokens) Put(key *CacheKey, c *Claims, deadline time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ring == nil {
		t.m, t.ring = make(map[CacheKey]issuedEntry), make([]CacheKey, t.cap)
	}
	// The slot's previous token, unless it was taken since (or put again
	// into a later slot).
	if old, ok := t.m[t.ring[t.next]]; ok && old.slot == t.next {
		delete(t.m, t.ring[t.next])
	}
	t.ring[t.next] = *key
	t.m[*key] = issuedEntry{c: c, deadline: deadline.UnixNano(), slot: t.next}
	t.next = (t.next + 1) % len(t.ring)
}

// Take returns the claims held for the token of key and forgets them,
// unless their deadline has passed.
func (t *issuedTokens) Take(key *CacheKey, now time.Time) (*Claims, bool) {
	t.mu.Lock()
	e, ok := t.m[*key]
	if ok {
		delete(t.m, *key)
	}
	t.mu.Unlock()
	if !ok || now.UnixNano() >= e.deadline {
		return nil, false
	}
	return e.c, true
}

// Len counts the tokens held.
func (t *issuedTokens) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
