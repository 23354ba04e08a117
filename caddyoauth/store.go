package caddyoauth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
)

// ErrNotFound reports a key the store does not hold (or holds expired).
var ErrNotFound = errors.New("not found in the store")

// Store keeps what the authorization server must not lose across reloads,
// restarts and instances: signing keys, and (as they arrive) codes, refresh
// token families, revocations, sessions and store-kept clients. Keys are
// slash-separated paths made by this package; values are opaque bytes.
// Every entry may carry a lifetime after which it is gone on its own.
//
// Implementations: memory (tests), Caddy storage (the default), Redis.
// All of them pass the same conformance suite.
type Store interface {
	// Get returns the value under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores value under key, replacing what was there. A ttl of zero
	// means no expiry.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// PutIfAbsent stores value only if key holds nothing, atomically
	// across every instance sharing the store, and reports whether it did.
	PutIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Take returns the value under key and removes it atomically: of any
	// number of concurrent Takes of one key, on any instance, exactly one
	// gets the value and the others get ErrNotFound.
	Take(ctx context.Context, key string) ([]byte, error)
	// Delete removes key. A missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the keys under prefix that hold a live value, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// validStoreKey accepts the keys this package makes: non-empty segments of
// A-Z a-z 0-9 . _ - separated by single slashes.
func validStoreKey(key string) bool {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return false
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}

// errBadKey reports a key validStoreKey refuses.
var errBadKey = errors.New("invalid store key")

// expiry turns a ttl into an absolute deadline; zero means none.
func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// MemoryStore is a Store in process memory, for tests: it is lost on
// restart and not shared between instances.
type MemoryStore struct {
	mu  sync.Mutex
	m   map[string]memEntry
	now func() time.Time
}

type memEntry struct {
	v   []byte
	exp time.Time
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{m: make(map[string]memEntry), now: time.Now}
}

func (s *MemoryStore) live(key string) (memEntry, bool) {
	e, ok := s.m[key]
	if ok && !e.exp.IsZero() && !s.now().Before(e.exp) {
		delete(s.m, key)
		return memEntry{}, false
	}
	return e, ok
}

// Get implements Store.
func (s *MemoryStore) Get(_ context.Context, key string) ([]byte, error) {
	if !validStoreKey(key) {
		return nil, errBadKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key)
	if !ok {
		return nil, ErrNotFound
	}
	return append([]byte(nil), e.v...), nil
}

// Put implements Store.
func (s *MemoryStore) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if !validStoreKey(key) {
		return errBadKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = memEntry{v: append([]byte(nil), value...), exp: expiry(s.now(), ttl)}
	return nil
}

// PutIfAbsent implements Store.
func (s *MemoryStore) PutIfAbsent(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if !validStoreKey(key) {
		return false, errBadKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live(key); ok {
		return false, nil
	}
	s.m[key] = memEntry{v: append([]byte(nil), value...), exp: expiry(s.now(), ttl)}
	return true, nil
}

// Take implements Store.
func (s *MemoryStore) Take(_ context.Context, key string) ([]byte, error) {
	if !validStoreKey(key) {
		return nil, errBadKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key)
	if !ok {
		return nil, ErrNotFound
	}
	delete(s.m, key)
	return e.v, nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(_ context.Context, key string) error {
	if !validStoreKey(key) {
		return errBadKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// List implements Store.
func (s *MemoryStore) List(_ context.Context, prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.m {
		if strings.HasPrefix(k, prefix) {
			if _, ok := s.live(k); ok {
				out = append(out, k)
			}
		}
	}
	sortStrings(out)
	return out, nil
}

var _ Store = (*MemoryStore)(nil)

// ttlUntil is the lifetime of an entry that must be gone by t, never zero
// or negative (which a Store reads as "no expiry").
func ttlUntil(t time.Time) time.Duration {
	return max(time.Until(t), time.Second)
}
