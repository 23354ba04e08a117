package oauthjwt

import (
	"hash/maphash"
	"sync"
	"time"
)

const (
	cacheShards       = 16
	defaultCacheSize  = 16384
	minEntriesInShard = 16
)

// tokenCache maps the exact text of a verified token to its claims until the
// token expires. Only tokens that passed verification enter it, so a lookup
// never accepts anything the verifier would refuse, except that expiry is
// checked against exp without leeway. It is sharded to keep lock contention
// low and bounded in entries.
type tokenCache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]cacheEntry
}

type cacheEntry struct {
	claims *Claims
	exp    int64 // unix seconds
}

func newTokenCache(size int) *tokenCache {
	if size == 0 {
		size = defaultCacheSize
	}
	c := &tokenCache{seed: maphash.MakeSeed(), perShard: max(size/cacheShards, minEntriesInShard)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cacheEntry)
	}
	return c
}

func (c *tokenCache) shard(token string) *cacheShard {
	return &c.shards[maphash.String(c.seed, token)%cacheShards]
}

func (c *tokenCache) get(token string, now time.Time) (*Claims, bool) {
	s := c.shard(token)
	s.mu.RLock()
	e, ok := s.m[token]
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	if now.Unix() >= e.exp {
		s.mu.Lock()
		delete(s.m, token)
		s.mu.Unlock()
		return nil, false
	}
	return e.claims, true
}

func (c *tokenCache) put(token string, claims *Claims, exp time.Time) {
	s := c.shard(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= c.perShard {
		now := time.Now().Unix()
		for k, e := range s.m {
			if now >= e.exp {
				delete(s.m, k)
			}
		}
		// Still full: drop arbitrary entries (map order is random), they
		// are only re-verified on their next use.
		for k := range s.m {
			if len(s.m) < c.perShard {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[token] = cacheEntry{claims: claims, exp: exp.Unix()}
}
