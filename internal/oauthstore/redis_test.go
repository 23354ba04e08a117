package oauthstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddyapigw/gateway/internal/testredis"
)

// Stall tests: a real redis-server is paused (SIGSTOP) while once-only
// calls are in flight, past the clients' read timeout, so go-redis gives up
// on the first attempt, closes its connection and sends the command again.
// When the server is resumed it runs every copy it received, the abandoned
// ones included.

const (
	stallReadTimeout = 200 * time.Millisecond
	stallFor         = 3 * stallReadTimeout // two attempts time out, the third is answered
	stallWait        = 10 * time.Second     // bound on every wait
)

// stallEnv is one redis-server, a probe client for inspecting it, and n
// stores, each on its own client as n gateways would be.
type stallEnv struct {
	srv    *testredis.Server
	probe  *redis.Client
	stores []*RedisStore
	check  *RedisStore // on the probe's client, for checks after settle
}

// stallIdleConns is how many ready connections each store has before a
// stall. go-redis sends a retry on a pooled connection it has used before
// if it has one; on a fresh one, the handshake (HELLO) times out on a
// paused server, and go-redis gives up instead. A busy gateway always has
// such connections.
const stallIdleConns = 4

// newStallEnv starts the server and opens n stores with a 200 ms read
// timeout, up to 10 quick retries (go-redis's default retries, made fast)
// and connections ready for them.
func newStallEnv(t *testing.T, n int, prefix string) *stallEnv {
	t.Helper()
	srv := testredis.Start(t)
	open := func(tune func(*redis.Options)) *redis.Client {
		opts, err := redis.ParseURL(srv.URL(0))
		if err != nil {
			t.Fatal(err)
		}
		tune(opts)
		c := redis.NewClient(opts)
		t.Cleanup(func() { c.Close() })
		return c
	}
	e := &stallEnv{srv: srv, probe: open(func(*redis.Options) {})}
	e.check = NewRedisStore(e.probe, prefix)
	for range n {
		c := open(func(o *redis.Options) {
			o.ReadTimeout = stallReadTimeout
			o.WriteTimeout = stallReadTimeout
			o.DialTimeout = time.Second
			o.MaxRetries = 10
			o.MinRetryBackoff = 10 * time.Millisecond
			o.MaxRetryBackoff = 20 * time.Millisecond
		})
		e.stores = append(e.stores, NewRedisStore(c, prefix))
	}
	return e
}

// warmUp runs each store's once-only calls once, so that everything a
// store loads lazily is loaded, and has each store use stallIdleConns
// connections at once, so that its pool holds that many ready ones.
func (e *stallEnv) warmUp(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, s := range e.stores {
		var wg sync.WaitGroup
		for range stallIdleConns {
			wg.Go(func() {
				// Each BLPOP holds its connection for 50 ms (go-redis's
				// BLPop would round the timeout up to a second).
				if err := s.client.Do(ctx, "BLPOP", "warm/none", "0.05").Err(); !errors.Is(err, redis.Nil) {
					t.Errorf("BLPOP: %v", err)
				}
			})
		}
		wg.Wait()
		if n := s.client.PoolStats().IdleConns; n < stallIdleConns {
			t.Fatalf("pool holds %d idle connections, want %d", n, stallIdleConns)
		}
		if _, err := s.PutIfAbsent(ctx, "warm/up", []byte("x"), time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Take(ctx, "warm/up"); err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
}

// info returns one field of the server's INFO section.
func (e *stallEnv) info(t *testing.T, section, field string) string {
	t.Helper()
	text, err := e.probe.Info(context.Background(), section).Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// runs is how often the server ran the named commands since resetStats.
func (e *stallEnv) runs(t *testing.T, commands ...string) int {
	t.Helper()
	total := 0
	for _, c := range commands {
		stat := e.info(t, "commandstats", "cmdstat_"+c) // calls=3,usec=...
		if v, ok := strings.CutPrefix(stat, "calls="); ok {
			n, err := strconv.Atoi(v[:strings.IndexByte(v+",", ',')])
			if err != nil {
				t.Fatalf("cmdstat_%s: %q", c, stat)
			}
			total += n
		}
	}
	return total
}

func (e *stallEnv) resetStats(t *testing.T) {
	t.Helper()
	if err := e.probe.ConfigResetStat(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

func (e *stallEnv) connectedClients(t *testing.T) int {
	t.Helper()
	n, err := strconv.Atoi(e.info(t, "clients", "connected_clients"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// settle closes the stores' clients and waits until the server has closed
// every connection but the probe's: it closes a connection a client gave
// up on once it has read, and run, what was sent on it. Checks after it go
// through e.check.
func (e *stallEnv) settle(t *testing.T) {
	t.Helper()
	for _, s := range e.stores {
		s.Close()
	}
	deadline := time.Now().Add(stallWait)
	for e.connectedClients(t) > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the server still holds %d connections", e.connectedClients(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stalled pauses the server, starts calls, each in its own goroutine,
// resumes the server after d and returns once every call has returned.
// With d < 0 it resumes the server only once every call has returned.
// Command statistics (runs) start with the pause.
func (e *stallEnv) stalled(t *testing.T, d time.Duration, calls ...func()) {
	t.Helper()
	e.warmUp(t)
	e.resetStats(t)
	e.srv.Pause(t)
	var wg sync.WaitGroup
	for _, call := range calls {
		wg.Go(call)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	if d >= 0 {
		time.Sleep(d)
		e.srv.Resume(t)
	}
	select {
	case <-done:
	case <-time.After(stallWait):
		e.srv.Resume(t)
		t.Fatal("calls still running after 10 s")
	}
	if d < 0 {
		e.srv.Resume(t)
	}
}

// onceResult is what one PutIfAbsent or Take returned.
type onceResult struct {
	ok  bool
	v   []byte
	err error
}

func (r onceResult) String() string { return fmt.Sprintf("{%v %q %v}", r.ok, r.v, r.err) }

// TestRedisOnceOnlyAcrossStall: a PutIfAbsent or Take whose first attempt
// times out, and whose copies the resumed server then runs more than once,
// still happens once and is reported as it happened: the claim as ours,
// the taken value to exactly one caller, no value lost. With two gateways
// racing, exactly one wins.
func TestRedisOnceOnlyAcrossStall(t *testing.T) {
	ctx := context.Background()

	for _, callers := range []int{1, 2} {
		t.Run(fmt.Sprintf("put if absent, %d caller(s)", callers), func(t *testing.T) {
			e := newStallEnv(t, callers, DefaultRedisKeyPrefix)
			key := "stall/claim"
			res := make([]onceResult, callers)
			var calls []func()
			for i := range callers {
				calls = append(calls, func() {
					res[i].ok, res[i].err = e.stores[i].PutIfAbsent(ctx, key, fmt.Appendf(nil, "caller-%d", i), time.Minute)
				})
			}
			e.stalled(t, stallFor, calls...)
			e.settle(t)
			if n := e.runs(t, "set", "evalsha", "eval"); n <= callers {
				t.Errorf("the server ran %d copies for %d caller(s): the stall did not make go-redis retry", n, callers)
			}

			winners := 0
			for i, r := range res {
				if r.err != nil {
					t.Fatalf("caller %d: %v", i, r.err)
				}
				if r.ok {
					winners++
					if v, err := e.check.Get(ctx, key); err != nil || string(v) != fmt.Sprintf("caller-%d", i) {
						t.Errorf("stored %q, %v; want caller %d's value", v, err, i)
					}
				}
			}
			if winners != 1 {
				t.Fatalf("%d callers told they stored the value, want exactly 1 (%v)", winners, res)
			}
			if ok, err := e.check.PutIfAbsent(ctx, key, []byte("later"), time.Minute); ok || err != nil {
				t.Errorf("a later PutIfAbsent: %v, %v; want false", ok, err)
			}
		})

		t.Run(fmt.Sprintf("take, %d caller(s)", callers), func(t *testing.T) {
			e := newStallEnv(t, callers, DefaultRedisKeyPrefix)
			key := "stall/code"
			if err := e.check.Put(ctx, key, []byte("the code"), time.Minute); err != nil {
				t.Fatal(err)
			}
			res := make([]onceResult, callers)
			var calls []func()
			for i := range callers {
				calls = append(calls, func() { res[i].v, res[i].err = e.stores[i].Take(ctx, key) })
			}
			e.stalled(t, stallFor, calls...)
			e.settle(t)
			if n := e.runs(t, "getdel", "evalsha", "eval"); n <= callers {
				t.Errorf("the server ran %d copies for %d caller(s): the stall did not make go-redis retry", n, callers)
			}

			got := 0
			for i, r := range res {
				switch {
				case r.err == nil:
					got++
					if !bytes.Equal(r.v, []byte("the code")) {
						t.Errorf("caller %d took %q", i, r.v)
					}
				case errors.Is(r.err, ErrNotFound):
				default:
					t.Fatalf("caller %d: %v", i, r.err)
				}
			}
			if got != 1 {
				t.Fatalf("%d callers got the value, want exactly 1 (%v)", got, res)
			}
			if _, err := e.check.Get(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get after the Take: %v", err)
			}
		})
	}
}

// TestRedisOnceOnlyFencedAfterGiveUp: a PutIfAbsent and a Take that give
// up while the server is paused report an error, and the copies they sent,
// which the server runs once resumed, change nothing: the code is still
// there for the client's retry, the claim still free.
func TestRedisOnceOnlyFencedAfterGiveUp(t *testing.T) {
	e := newStallEnv(t, 1, DefaultRedisKeyPrefix)
	s := e.stores[0]
	s.onceTimeout = 800 * time.Millisecond
	ctx := context.Background()
	if err := s.Put(ctx, "fence/code", []byte("the code"), time.Minute); err != nil {
		t.Fatal(err)
	}
	var claimErr, takeErr error
	var claimed bool
	var taken []byte
	var claimTook, takeTook time.Duration
	e.stalled(t, -1, func() {
		start := time.Now()
		claimed, claimErr = s.PutIfAbsent(ctx, "fence/claim", []byte("x"), time.Minute)
		claimTook = time.Since(start)
	}, func() {
		start := time.Now()
		taken, takeErr = s.Take(ctx, "fence/code")
		takeTook = time.Since(start)
	})
	if claimErr == nil || takeErr == nil {
		t.Fatalf("calls to a paused server: PutIfAbsent %v, %v; Take %q, %v; want errors", claimed, claimErr, taken, takeErr)
	}
	// go-redis gives up sooner (a new connection's handshake times out);
	// the calls go on to their deadline, where the fence is.
	for name, took := range map[string]time.Duration{"PutIfAbsent": claimTook, "Take": takeTook} {
		if took < s.onceTimeout {
			t.Errorf("%s returned after %v, before its deadline (%v)", name, took, s.onceTimeout)
		}
	}
	e.settle(t) // the server has run what it received while paused
	if n := e.runs(t, "evalsha", "eval"); n < 2 {
		t.Fatalf("the server ran %d copies after resuming, want at least one of each call", n)
	}
	s = e.check
	if v, err := s.Get(ctx, "fence/code"); err != nil || string(v) != "the code" {
		t.Errorf("the code after the failed Take: %q, %v; want it still there", v, err)
	}
	if _, err := s.Get(ctx, "fence/claim"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the claim after the failed PutIfAbsent: %v; want it free", err)
	}
	// The client's retries succeed.
	if v, err := s.Take(ctx, "fence/code"); err != nil || string(v) != "the code" {
		t.Errorf("Take again: %q, %v", v, err)
	}
	if ok, err := s.PutIfAbsent(ctx, "fence/claim", []byte("x"), time.Minute); !ok || err != nil {
		t.Errorf("PutIfAbsent again: %v, %v", ok, err)
	}
}

// TestRedisOnceOnlyRefusedFailsFast: with nothing listening where Redis
// was, a once-only call fails as soon as go-redis gives up, not at its
// deadline: no copy of it can still run.
func TestRedisOnceOnlyRefusedFailsFast(t *testing.T) {
	srv := testredis.Start(t)
	opts, err := redis.ParseURL(srv.URL(0))
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries = -1 // go-redis gives up at once; the store does not
	opts.DialerRetries = 1
	client := redis.NewClient(opts)
	defer client.Close()
	s := NewRedisStore(client, DefaultRedisKeyPrefix)
	ctx := context.Background()
	if _, err := s.PutIfAbsent(ctx, "refused/warm", []byte("x"), time.Minute); err != nil {
		t.Fatal(err) // also reads Redis's clock, so the calls below run the scripts
	}
	srv.Stop()
	start := time.Now()
	if ok, err := s.PutIfAbsent(ctx, "refused/claim", []byte("x"), time.Minute); err == nil {
		t.Fatalf("PutIfAbsent with Redis stopped: %v, nil", ok)
	}
	if _, err := s.Take(ctx, "refused/code"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Take with Redis stopped: %v, want a store failure", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the calls took %v with Redis refusing connections; the deadline is %v", took, s.onceTimeout)
	}
}

// TestRedisClockReading: the store's reading of Redis's clock is never
// ahead of it; a reading that is wrong (behind) makes one call fail
// without doing anything and is corrected by its answer; and a stale one
// is read again before use.
func TestRedisClockReading(t *testing.T) {
	client := testredis.StartClient(t)
	s := NewRedisStore(client, DefaultRedisKeyPrefix)
	ctx := context.Background()
	redisNow := func() int64 {
		tm, err := client.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMilli()
	}
	estimate := func() int64 {
		c := s.clock.Load()
		return c.ms + time.Since(c.at).Milliseconds()
	}

	if _, err := s.PutIfAbsent(ctx, "clock/a", []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if est, now := estimate(), redisNow(); est > now {
			t.Fatalf("the estimate of Redis's clock (%d) is ahead of it (%d)", est, now)
		}
	}

	// An hour behind: the fence has passed before the call starts.
	s.clock.Store(&redisClock{ms: redisNow() - time.Hour.Milliseconds(), at: time.Now()})
	if ok, err := s.PutIfAbsent(ctx, "clock/b", []byte("x"), time.Minute); !errors.Is(err, errRedisLate) {
		t.Fatalf("with the reading an hour behind: %v, %v; want errRedisLate", ok, err)
	}
	if _, err := s.Get(ctx, "clock/b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a late call stored its value: %v", err)
	}
	if est, now := estimate(), redisNow(); est > now || now-est > 1000 {
		t.Fatalf("the late answer did not correct the reading: estimate %d, Redis %d", est, now)
	}
	if ok, err := s.PutIfAbsent(ctx, "clock/b", []byte("x"), time.Minute); !ok || err != nil {
		t.Fatalf("after the correction: %v, %v", ok, err)
	}

	// A wrong reading older than redisClockMaxAge is not used.
	s.clock.Store(&redisClock{ms: redisNow() - time.Hour.Milliseconds(), at: time.Now().Add(-2 * redisClockMaxAge)})
	if err := s.Put(ctx, "clock/c", []byte("code"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Take(ctx, "clock/c"); err != nil || string(v) != "code" {
		t.Fatalf("with a stale reading: %q, %v", v, err)
	}
}

// redisSlotKey is the part of a key Redis Cluster hashes to its slot: the
// first non-empty {tag}, or the whole key.
func redisSlotKey(k string) string {
	if open := strings.IndexByte(k, '{'); open >= 0 {
		if end := strings.IndexByte(k[open+1:], '}'); end > 0 {
			return k[open+1 : open+1+end]
		}
	}
	return k
}

// TestRedisOnceMarkers: a once-only call's marker lives beside its key (in
// its Redis Cluster slot) for a few seconds, and List never shows it,
// whatever the key prefix.
func TestRedisOnceMarkers(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	for db, tt := range []struct {
		prefix   string
		sameSlot bool
	}{
		{DefaultRedisKeyPrefix, true},
		{"", true},
		{"{gw}:", true}, // the prefix's tag puts every key in one slot
		{"a}b:", false}, // a lone '}': see onceKey
	} {
		t.Run(fmt.Sprintf("prefix %q", tt.prefix), func(t *testing.T) {
			opts, err := redis.ParseURL(srv.URL(db))
			if err != nil {
				t.Fatal(err)
			}
			client := redis.NewClient(opts)
			defer client.Close()
			s := NewRedisStore(client, tt.prefix)
			if ok, err := s.PutIfAbsent(ctx, "m/claim", []byte("x"), 0); !ok || err != nil {
				t.Fatal(ok, err)
			}
			if err := s.Put(ctx, "m/code", []byte("code"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Take(ctx, "m/code"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Take(ctx, "m/none"); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			for _, p := range []string{"", "m/"} {
				if keys, err := s.List(ctx, p); err != nil || len(keys) != 1 || keys[0] != "m/claim" {
					t.Errorf("List(%q) = %q, %v; want only m/claim", p, keys, err)
				}
			}

			raw, err := client.Keys(ctx, "*").Result()
			if err != nil {
				t.Fatal(err)
			}
			markers := 0
			for _, k := range raw {
				if k == tt.prefix+"m/claim" {
					continue
				}
				markers++
				if ttl := client.PTTL(ctx, k).Val(); ttl <= 0 || ttl > redisOnceTimeout+onceSlack {
					t.Errorf("marker %q lives %v", k, ttl)
				}
				key := ""
				for _, c := range []string{"m/claim", "m/code", "m/none"} {
					if strings.HasPrefix(k, tt.prefix+c+":once:") || strings.HasPrefix(k, "{"+tt.prefix+c+"}:once:") {
						key = tt.prefix + c
					}
				}
				if key == "" {
					t.Errorf("marker %q names none of the keys", k)
				} else if tt.sameSlot && redisSlotKey(k) != redisSlotKey(key) {
					t.Errorf("marker %q hashes %q, its key %q", k, redisSlotKey(k), redisSlotKey(key))
				}
			}
			if markers != 3 {
				t.Errorf("%d markers (%q), want one per call (3)", markers, raw)
			}
		})
	}
}
