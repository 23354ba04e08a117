package oauthstore

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyapigw/gateway/internal/oauthtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// testEpoch is where every test clock starts: a whole second, so that the
// unix-second fields the owners store are exact.
var testEpoch = time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC)

// testClock is the shared test clock; the owners and the memory store read
// it, so lifetimes pass without sleeping.
type testClock = oauthtest.Clock

func newTestClock() *testClock { return oauthtest.NewClock(testEpoch) }

// observedLogger records what is logged at level and above.
func observedLogger(level zapcore.Level) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(level)
	return zap.New(core), logs
}

// testEnv is one memory store with its clock, its logs and the owners.
type testEnv struct {
	kv    *MemoryStore
	clock *testClock
	logs  *observer.ObservedLogs
	log   *zap.Logger
	rec   *Records
}

// testLifetimes are the lifetimes newTestEnv configures.
var testLifetimes = Lifetimes{
	RefreshIdle: 24 * time.Hour,
	RefreshMax:  30 * 24 * time.Hour,
	SessionIdle: time.Hour,
	SessionMax:  8 * time.Hour,
}

// newTestEnv makes a memory store whose clock is the owners' clock.
func newTestEnv(t *testing.T, life Lifetimes) *testEnv {
	t.Helper()
	clock := newTestClock()
	kv := NewMemoryStore()
	kv.SetClock(clock.Now)
	log, logs := observedLogger(zapcore.DebugLevel)
	return &testEnv{kv: kv, clock: clock, logs: logs, log: log, rec: New(kv, clock.Now, log, life)}
}

// put writes raw bytes under key, as a corrupted or foreign writer would.
func (e *testEnv) put(t *testing.T, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := e.kv.Put(context.Background(), key, value, ttl); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

// has reports whether the store holds a live entry under key.
func (e *testEnv) has(t *testing.T, key string) bool {
	t.Helper()
	_, err := e.kv.Get(context.Background(), key)
	if err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return err == nil
}

// keys lists every live key in the store.
func (e *testEnv) keys(t *testing.T) []string {
	t.Helper()
	keys, err := e.kv.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// wantLogged fails t unless an entry at level whose message contains msg
// was logged; it then forgets the logs, so a later check starts afresh.
func wantLogged(t *testing.T, logs *observer.ObservedLogs, level zapcore.Level, msg string) {
	t.Helper()
	for _, e := range logs.TakeAll() {
		if e.Level == level && strings.Contains(e.Message, msg) {
			return
		}
	}
	t.Errorf("no %s log containing %q", level, msg)
}

// wantNothingLogged fails t if anything was logged.
func wantNothingLogged(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	for _, e := range logs.TakeAll() {
		t.Errorf("unexpected %s log: %s", e.Level, e.Message)
	}
}

// countingStore counts the calls that reach the Store it wraps, and fails
// every one with fail when that is set.
type countingStore struct {
	Store
	calls atomic.Int32
	fail  error
}

func (s *countingStore) hit() error { s.calls.Add(1); return s.fail }

func (s *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.hit(); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, key)
}

func (s *countingStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.hit(); err != nil {
		return err
	}
	return s.Store.Put(ctx, key, value, ttl)
}

func (s *countingStore) PutIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := s.hit(); err != nil {
		return false, err
	}
	return s.Store.PutIfAbsent(ctx, key, value, ttl)
}

func (s *countingStore) Take(ctx context.Context, key string) ([]byte, error) {
	if err := s.hit(); err != nil {
		return nil, err
	}
	return s.Store.Take(ctx, key)
}

func (s *countingStore) Delete(ctx context.Context, key string) error {
	if err := s.hit(); err != nil {
		return err
	}
	return s.Store.Delete(ctx, key)
}

func (s *countingStore) List(ctx context.Context, prefix string) ([]string, error) {
	if err := s.hit(); err != nil {
		return nil, err
	}
	return s.Store.List(ctx, prefix)
}

// errStoreDown is what a failing countingStore answers.
var errStoreDown = errors.New("store down (test)")

// countingRecords makes the owners over a countingStore on a fresh memory
// store.
func countingRecords(fail error) (*Records, *countingStore) {
	cs := &countingStore{Store: NewMemoryStore(), fail: fail}
	return New(cs, newTestClock().Now, zap.NewNop(), testLifetimes), cs
}

// malformedSecrets are strings that cannot be a NewSecret output (43
// characters): the owners answer ErrNotFound without asking the store.
var malformedSecrets = []struct{ name, s string }{
	{"empty", ""},
	{"short", "abc"},
	{"42 chars", strings.Repeat("a", secretLen-1)},
	{"44 chars", strings.Repeat("a", secretLen+1)},
	{"very long", strings.Repeat("a", 4096)},
}

// mustSecret returns a fresh NewSecret output.
func mustSecret(t *testing.T) string {
	t.Helper()
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// corruptJSON are stored values that are not JSON at all.
var corruptJSON = []struct{ name, v string }{
	{"empty", ""},
	{"garbage", "not json"},
	{"truncated", `{"client_id":"app"`},
	{"binary", "\x00\xff\xfe"},
}

// failingKeyStore fails the writes (Put, PutIfAbsent) of keys under
// failPrefix with errStoreDown, and passes everything else through.
type failingKeyStore struct {
	Store
	failPrefix string
}

func (s *failingKeyStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if strings.HasPrefix(key, s.failPrefix) {
		return errStoreDown
	}
	return s.Store.Put(ctx, key, value, ttl)
}

func (s *failingKeyStore) PutIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if strings.HasPrefix(key, s.failPrefix) {
		return false, errStoreDown
	}
	return s.Store.PutIfAbsent(ctx, key, value, ttl)
}
