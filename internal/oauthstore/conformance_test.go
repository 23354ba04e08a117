package oauthstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddyapigw/gateway/internal/testredis"
)

// storeBackend opens two Store handles on one backend, as two gateway
// instances sharing a storage or a Redis would.
type storeBackend struct {
	name string
	open func(t *testing.T) (Store, Store)
	// racers is how many goroutines contend in the concurrency tests and
	// rounds how often the take race is repeated; the file-system lock
	// polls once a second, so that backend uses fewer of both.
	racers, rounds int
}

// runStoreConformance is the one suite every Store implementation passes.
func runStoreConformance(t *testing.T, b storeBackend) {
	ctx := context.Background()
	const ttl = 400 * time.Millisecond
	const past = 700 * time.Millisecond

	t.Run("get missing", func(t *testing.T) {
		a, _ := b.open(t)
		if _, err := a.Get(ctx, "nothing/here"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})

	t.Run("put get overwrite, seen by the other instance", func(t *testing.T) {
		a, other := b.open(t)
		if err := a.Put(ctx, "k/v", []byte("one"), 0); err != nil {
			t.Fatal(err)
		}
		if v, err := other.Get(ctx, "k/v"); err != nil || string(v) != "one" {
			t.Fatalf("other instance got %q, %v", v, err)
		}
		if err := other.Put(ctx, "k/v", []byte("two"), 0); err != nil {
			t.Fatal(err)
		}
		if v, err := a.Get(ctx, "k/v"); err != nil || string(v) != "two" {
			t.Fatalf("after overwrite %q, %v", v, err)
		}
	})

	t.Run("binary and empty values, no aliasing", func(t *testing.T) {
		a, _ := b.open(t)
		val := []byte{0, 1, 2, 0xff, 0, 'x'}
		if err := a.Put(ctx, "bin", val, 0); err != nil {
			t.Fatal(err)
		}
		val[0] = 9 // the store must have copied it
		got, err := a.Get(ctx, "bin")
		if err != nil || !bytes.Equal(got, []byte{0, 1, 2, 0xff, 0, 'x'}) {
			t.Fatalf("got %v, %v", got, err)
		}
		got[1] = 9
		if again, _ := a.Get(ctx, "bin"); again[1] != 1 {
			t.Fatal("a returned value aliases the stored one")
		}
		if err := a.Put(ctx, "empty", nil, 0); err != nil {
			t.Fatal(err)
		}
		if v, err := a.Get(ctx, "empty"); err != nil || len(v) != 0 {
			t.Fatalf("empty value: %q, %v", v, err)
		}
	})

	t.Run("entries expire on their own", func(t *testing.T) {
		a, other := b.open(t)
		if err := a.Put(ctx, "exp/put", []byte("x"), ttl); err != nil {
			t.Fatal(err)
		}
		if ok, err := a.PutIfAbsent(ctx, "exp/pia", []byte("x"), ttl); !ok || err != nil {
			t.Fatalf("PutIfAbsent: %v, %v", ok, err)
		}
		if err := a.Put(ctx, "exp/keep", []byte("x"), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Get(ctx, "exp/put"); err != nil {
			t.Fatalf("live entry: %v", err)
		}
		time.Sleep(past)
		for _, k := range []string{"exp/put", "exp/pia"} {
			if _, err := other.Get(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s after its ttl: %v", k, err)
			}
			if _, err := a.Take(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Errorf("Take %s after its ttl: %v", k, err)
			}
		}
		keys, err := a.List(ctx, "exp/")
		if err != nil || !slices.Equal(keys, []string{"exp/keep"}) {
			t.Errorf("List after expiry = %q, %v", keys, err)
		}
		if ok, err := other.PutIfAbsent(ctx, "exp/pia", []byte("y"), 0); !ok || err != nil {
			t.Errorf("PutIfAbsent over an expired entry: %v, %v", ok, err)
		}
	})

	t.Run("put if absent", func(t *testing.T) {
		a, other := b.open(t)
		if ok, err := a.PutIfAbsent(ctx, "pia/k", []byte("first"), 0); !ok || err != nil {
			t.Fatalf("first: %v, %v", ok, err)
		}
		if ok, err := other.PutIfAbsent(ctx, "pia/k", []byte("second"), 0); ok || err != nil {
			t.Fatalf("second: %v, %v", ok, err)
		}
		if v, _ := a.Get(ctx, "pia/k"); string(v) != "first" {
			t.Fatalf("value %q, want first", v)
		}
	})

	t.Run("take is single use", func(t *testing.T) {
		a, other := b.open(t)
		if _, err := a.Take(ctx, "take/none"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Take missing: %v", err)
		}
		if err := a.Put(ctx, "take/k", []byte("code"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if v, err := other.Take(ctx, "take/k"); err != nil || string(v) != "code" {
			t.Fatalf("first Take: %q, %v", v, err)
		}
		if _, err := a.Take(ctx, "take/k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second Take: %v", err)
		}
		if _, err := a.Get(ctx, "take/k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after Take: %v", err)
		}
	})

	t.Run("once-only calls are told apart by call, not by value", func(t *testing.T) {
		a, other := b.open(t)
		// A refresh token's claim is the same byte for every call: a second
		// call, on either instance, is refused all the same.
		if ok, err := a.PutIfAbsent(ctx, "once/claim", []byte{1}, time.Minute); !ok || err != nil {
			t.Fatalf("first claim: %v, %v", ok, err)
		}
		for i, s := range []Store{a, other} {
			if ok, err := s.PutIfAbsent(ctx, "once/claim", []byte{1}, time.Minute); ok || err != nil {
				t.Fatalf("claim %d with the same value: %v, %v; want false", i+2, ok, err)
			}
		}
		// Given back, the key is claimed by the next call.
		if err := a.Delete(ctx, "once/claim"); err != nil {
			t.Fatal(err)
		}
		if ok, err := a.PutIfAbsent(ctx, "once/claim", []byte{1}, time.Minute); !ok || err != nil {
			t.Fatalf("claim after Delete: %v, %v", ok, err)
		}
		// Take returns binary and empty values as they were.
		for _, val := range [][]byte{{0, '1', 0xff, 0}, {}} {
			if err := a.Put(ctx, "once/bin", val, time.Minute); err != nil {
				t.Fatal(err)
			}
			if v, err := other.Take(ctx, "once/bin"); err != nil || !bytes.Equal(v, val) {
				t.Fatalf("Take of %q: %q, %v", val, v, err)
			}
		}
		// A key taken, then put again with the same value, is taken again,
		// once.
		for round := range 2 {
			if err := a.Put(ctx, "once/code", []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if v, err := a.Take(ctx, "once/code"); err != nil || string(v) != "v" {
				t.Fatalf("round %d: Take %q, %v", round, v, err)
			}
			for _, s := range []Store{a, other} {
				if _, err := s.Take(ctx, "once/code"); !errors.Is(err, ErrNotFound) {
					t.Fatalf("round %d: Take after Take: %v", round, err)
				}
			}
		}
	})

	t.Run("concurrent take on two instances: exactly one wins", func(t *testing.T) {
		a, other := b.open(t)
		for round := range b.rounds {
			key := fmt.Sprintf("race/take-%d", round)
			if err := a.Put(ctx, key, []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			var wins, losses atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range b.racers {
				s := a
				if i%2 == 1 {
					s = other
				}
				wg.Go(func() {
					<-start
					_, err := s.Take(ctx, key)
					switch {
					case err == nil:
						wins.Add(1)
					case errors.Is(err, ErrNotFound):
						losses.Add(1)
					default:
						t.Errorf("Take: %v", err)
					}
				})
			}
			close(start)
			wg.Wait()
			if wins.Load() != 1 || int(losses.Load()) != b.racers-1 {
				t.Fatalf("round %d: %d wins, %d losses", round, wins.Load(), losses.Load())
			}
		}
	})

	t.Run("concurrent put if absent on two instances: exactly one stores", func(t *testing.T) {
		a, other := b.open(t)
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range b.racers {
			s := a
			if i%2 == 1 {
				s = other
			}
			wg.Go(func() {
				<-start
				ok, err := s.PutIfAbsent(ctx, "race/pia", fmt.Appendf(nil, "%d", i), time.Minute)
				if err != nil {
					t.Errorf("PutIfAbsent: %v", err)
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d stored, want exactly 1", wins.Load())
		}
	})

	t.Run("delete", func(t *testing.T) {
		a, other := b.open(t)
		if err := a.Delete(ctx, "del/none"); err != nil {
			t.Fatalf("Delete missing: %v", err)
		}
		if err := a.Put(ctx, "del/k", []byte("x"), 0); err != nil {
			t.Fatal(err)
		}
		if err := other.Delete(ctx, "del/k"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Get(ctx, "del/k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after Delete: %v", err)
		}
	})

	t.Run("list by prefix, sorted", func(t *testing.T) {
		a, other := b.open(t)
		for _, k := range []string{"ls/clients/b", "ls/clients/a", "ls/clients/ab/x", "ls/users/a", "ls/clientsx"} {
			if err := a.Put(ctx, k, []byte("x"), 0); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			prefix string
			want   []string
		}{
			{"ls/clients/", []string{"ls/clients/a", "ls/clients/ab/x", "ls/clients/b"}},
			{"ls/clients/a", []string{"ls/clients/a", "ls/clients/ab/x"}},
			{"ls/clients", []string{"ls/clients/a", "ls/clients/ab/x", "ls/clients/b", "ls/clientsx"}},
			{"ls/none/", nil},
		}
		for _, tt := range tests {
			got, err := other.List(ctx, tt.prefix)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("List(%q) = %q, %v; want %q", tt.prefix, got, err, tt.want)
			}
		}
	})

	t.Run("invalid keys refused", func(t *testing.T) {
		a, _ := b.open(t)
		for _, k := range []string{"", "/a", "a/", "a//b", "a/../b", "a/./b", "a b", "a\x00b", "é"} {
			if err := a.Put(ctx, k, []byte("x"), 0); err == nil {
				t.Errorf("Put(%q) accepted", k)
			}
			if _, err := a.Get(ctx, k); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%q) = %v, want a key error", k, err)
			}
		}
	})
}

func TestMemoryStoreConformance(t *testing.T) {
	runStoreConformance(t, storeBackend{
		name: "memory",
		open: func(t *testing.T) (Store, Store) {
			s := NewMemoryStore()
			return s, s
		},
		racers: 32,
		rounds: 50,
	})
}

func TestCaddyStoreConformance(t *testing.T) {
	runStoreConformance(t, storeBackend{
		name: "caddy storage",
		open: func(t *testing.T) (Store, Store) {
			dir := t.TempDir()
			logger := zaptestLogger(t)
			return NewCaddyStore(fileStorage(dir), "oauth/store", logger), NewCaddyStore(fileStorage(dir), "oauth/store", logger)
		},
		racers: 4,
		rounds: 2,
	})
}

// TestRedisStoreConformance runs the suite against a real redis-server.
func TestRedisStoreConformance(t *testing.T) {
	srv := testredis.Start(t)
	db := 0
	runStoreConformance(t, storeBackend{
		name: "redis",
		open: func(t *testing.T) (Store, Store) {
			db++ // a fresh logical database per subtest
			open := func() Store {
				opts, err := redis.ParseURL(srv.URL(db % 16))
				if err != nil {
					t.Fatal(err)
				}
				c := redis.NewClient(opts)
				t.Cleanup(func() { c.Close() })
				return NewRedisStore(c, DefaultRedisKeyPrefix)
			}
			a, b := open(), open()
			if err := a.(*RedisStore).client.FlushDB(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			return a, b
		},
		racers: 32,
		rounds: 50,
	})
}
