package oauthstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryStore is a Store in process memory, for tests: it is lost on
// restart and not shared between instances.
type MemoryStore struct {
	mu  sync.Mutex
	m   map[string]memEntry
	now func() time.Time
	id  uint64 // its identity, unique in the process (never an address, which the GC reuses)
}

// memoryStores numbers the memory stores of the process.
var memoryStores atomic.Uint64

type memEntry struct {
	v   []byte
	exp time.Time
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{m: make(map[string]memEntry), now: time.Now, id: memoryStores.Add(1)}
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
	if !ValidKey(key) {
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
	if !ValidKey(key) {
		return errBadKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = memEntry{v: append([]byte(nil), value...), exp: expiry(s.now(), ttl)}
	return nil
}

// PutIfAbsent implements Store.
func (s *MemoryStore) PutIfAbsent(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if !ValidKey(key) {
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
	if !ValidKey(key) {
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
	if !ValidKey(key) {
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
	slices.Sort(out)
	return out, nil
}

var _ Store = (*MemoryStore)(nil)

// SetClock makes the store read time from now, the app's clock, so a test
// that moves the app's clock moves the store's expiries with it.
func (s *MemoryStore) SetClock(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

// StoreIdentity implements Identifier: a memory store is only ever itself.
func (s *MemoryStore) StoreIdentity() string {
	if s.id == 0 {
		return ""
	}
	return fmt.Sprintf("memory #%d", s.id)
}
