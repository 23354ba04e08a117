package oauthjwt

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

const (
	cacheShards      = 16
	defaultCacheSize = 16384
)

// CacheKey is what the cache keeps of a token: the SHA-256 digest of its
// exact text, 32 bytes however long the token. Two different tokens share
// a key only if they collide under SHA-256, which no one can bring about,
// so a lookup never returns the value stored for another token.
type CacheKey [sha256.Size]byte

// cacheKey digests a token's text without copying it.
func cacheKey(token string) CacheKey {
	// unsafe.Slice aliases the string's bytes; Sum256 only reads them.
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// Cache maps a token's exact text (by its SHA-256 digest, CacheKey) to a
// value until a deadline: the verifier
// keeps verified claims until the token expires, and caddyscope keeps
// introspection answers until the token's exp or a configured maximum,
// whichever comes first. Only tokens that passed their checks enter it, so
// a lookup never accepts anything the checks would refuse, except that the
// deadline is compared without leeway. It is sharded to keep lock
// contention low and bounded in entries: Cap, the size asked for rounded up
// to a multiple of the shard count.
type Cache[V any] struct {
	perShard int
	shards   [cacheShards]cacheShard[V]
}

type cacheShard[V any] struct {
	mu sync.RWMutex
	m  map[CacheKey]*cacheEntry[V]
	// ents lists the entries of m densely, so eviction can sample them
	// uniformly (map iteration order is not uniform enough: entries
	// stored together are visited together). Each entry knows its index.
	ents []*cacheEntry[V]
	// clock counts the shard's inserts: the time of lastUsed.
	clock atomic.Uint64
	// sweptAt is when a full shard last looked for expired entries (unix
	// nanoseconds): at most once per sweepInterval, so that a full cache
	// does not walk a whole shard on every insert.
	sweptAt int64
}

// sweepInterval spaces the expired-entry sweeps of a full shard. Between
// sweeps an insert into a full shard only evicts (evictOne): a full walk
// per insert (1,024 entries a shard at the default size) was 16 % of
// the token endpoint's CPU once the tokens it remembers filled the cache.
const sweepInterval = int64(time.Second)

type cacheEntry[V any] struct {
	v        V
	deadline int64 // unix nanoseconds
	// lastUsed is the shard's clock when the entry was stored or last
	// found by a lookup.
	lastUsed atomic.Uint64
	key      CacheKey
	idx      int // in the shard's ents
}

// evictSample is how many entries, drawn at random, a full shard looks at
// to drop the one least recently used among them (sampled LRU, as Redis
// does). Tokens seen once (a flood of new tokens) are then what makes
// room, not the tokens
// requests keep sending: with plain random eviction, a working set of
// 10,000 tokens in a cache of 16,384 full of tokens seen once took many
// passes to settle back in (the load script's 10,000-token scenario).
const evictSample = 8

// NewCache makes a cache of at most about size entries; zero means a
// default of 16384.
func NewCache[V any](size int) *Cache[V] {
	if size <= 0 {
		size = defaultCacheSize
	}
	c := &Cache[V]{perShard: (size + cacheShards - 1) / cacheShards}
	for i := range c.shards {
		c.shards[i].m = make(map[CacheKey]*cacheEntry[V])
	}
	return c
}

// tokenCache is the verifier's cache of verified claims.
type tokenCache = Cache[*Claims]

func newTokenCache(size int) *tokenCache { return NewCache[*Claims](size) }

// shard picks a shard from the digest's first bytes (uniform already).
func (c *Cache[V]) shard(key *CacheKey) *cacheShard[V] {
	return &c.shards[binary.LittleEndian.Uint64(key[:8])%cacheShards]
}

// Get returns the value stored for token unless its deadline has passed.
func (c *Cache[V]) Get(token string, now time.Time) (V, bool) {
	key := cacheKey(token)
	return c.getKey(&key, now)
}

// getKey is Get for a token's key, for callers that digest it once for
// several lookups.
func (c *Cache[V]) getKey(keyp *CacheKey, now time.Time) (V, bool) {
	key := *keyp
	s := c.shard(&key)
	s.mu.RLock()
	e, ok := s.m[key]
	s.mu.RUnlock()
	if !ok {
		var zero V
		return zero, false
	}
	if now.UnixNano() >= e.deadline {
		s.mu.Lock()
		if s.m[key] == e { // not replaced meanwhile
			s.remove(e)
		}
		s.mu.Unlock()
		var zero V
		return zero, false
	}
	// Written only when it changes (an insert into the shard since), so
	// lookups of one hot token do not all write its cache line.
	if t := s.clock.Load(); e.lastUsed.Load() != t {
		e.lastUsed.Store(t)
	}
	return e.v, true
}

// Put stores v for token until deadline. A full shard first drops its
// entries whose deadline is past at now (at most once per sweepInterval),
// then the least recently used of evictSample entries drawn at random.
func (c *Cache[V]) Put(token string, v V, deadline, now time.Time) {
	key := cacheKey(token)
	c.putKey(&key, v, deadline, now)
}

// putKey is Put for a token's key.
func (c *Cache[V]) putKey(keyp *CacheKey, v V, deadline, now time.Time) {
	key := *keyp
	s := c.shard(&key)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, replace := s.m[key]
	if !replace && len(s.m) >= c.perShard {
		if n := now.UnixNano(); n-s.sweptAt >= sweepInterval {
			s.sweptAt = n
			for i := len(s.ents) - 1; i >= 0; i-- {
				if e := s.ents[i]; n >= e.deadline {
					s.remove(e)
				}
			}
		}
		for len(s.m) >= c.perShard {
			s.evictOne()
		}
	}
	e := &cacheEntry[V]{v: v, deadline: deadline.UnixNano(), key: key}
	e.lastUsed.Store(s.clock.Add(1))
	if replace {
		e.idx = old.idx
		s.ents[e.idx] = e
	} else {
		e.idx = len(s.ents)
		s.ents = append(s.ents, e)
	}
	s.m[key] = e
}

// remove drops e, keeping ents dense (the last entry takes its place).
// The caller holds the shard's lock.
func (s *cacheShard[V]) remove(e *cacheEntry[V]) {
	last := len(s.ents) - 1
	if e.idx != last {
		s.ents[e.idx] = s.ents[last]
		s.ents[e.idx].idx = e.idx
	}
	s.ents[last] = nil
	s.ents = s.ents[:last]
	delete(s.m, e.key)
}

// evictOne drops the least recently used of evictSample entries of the
// shard drawn at random, whose lock the caller holds.
func (s *cacheShard[V]) evictOne() {
	victim, oldest := 0, uint64(1<<64-1)
	for range evictSample {
		i := rand.IntN(len(s.ents))
		if t := s.ents[i].lastUsed.Load(); t < oldest {
			victim, oldest = i, t
		}
	}
	s.remove(s.ents[victim])
}

// Len counts the entries held, expired ones included until they are
// dropped.
func (c *Cache[V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// Cap is the most entries the cache holds.
func (c *Cache[V]) Cap() int { return c.perShard * cacheShards }
