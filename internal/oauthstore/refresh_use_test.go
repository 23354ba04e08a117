package oauthstore

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/testredis"
)

// graceLifetimes are testLifetimes with a 5s reuse grace window.
var graceLifetimes = func() Lifetimes { l := testLifetimes; l.RefreshGrace = 5 * time.Second; return l }()

// use looks token up and uses it, as the token endpoint does.
func (e *testEnv) use(t *testing.T, tok string) (string, error) {
	t.Helper()
	rt, fam, err := e.rec.Families.Lookup(context.Background(), tok)
	if err != nil {
		return "", err
	}
	return e.rec.Families.Use(context.Background(), tok, rt, fam)
}

// TestFamiliesUseRetry: RFC 9700 §4.14.2 ("the authorization server
// MAY allow a grace period"; RFC 6749 §10.4, rotation detects a token used
// by two parties). Each row is a history of uses of the first token t0
// (after the rows' steps) and what the last use must give: the same
// successor s1, or ErrReused.
func TestFamiliesUseRetry(t *testing.T) {
	type step struct {
		wait    time.Duration
		useNext bool // use the successor s1 before retrying t0
	}
	tests := []struct {
		name  string
		grace time.Duration
		steps []step
		want  error // nil: the retry gets s1
	}{
		{"retry at once (lost answer, second tab)", 5 * time.Second, []step{{wait: 0}}, nil},
		{"retry just inside the window", 5 * time.Second, []step{{wait: 4999 * time.Millisecond}}, nil},
		{"retry at the window's end is reuse", 5 * time.Second, []step{{wait: 5 * time.Second}}, ErrReused},
		{"retry long after is reuse", 5 * time.Second, []step{{wait: time.Hour}}, ErrReused},
		{"grace 0: any retry is reuse", 0, []step{{wait: 0}}, ErrReused},
		{"successor already used: reuse", 5 * time.Second, []step{{wait: 0, useNext: true}}, ErrReused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			life := testLifetimes
			life.RefreshGrace = tc.grace
			e := newTestEnv(t, life)
			_, t0 := startFamily(t, e, testFamily("alice", "app"))
			s1, err := e.use(t, t0)
			if err != nil || len(s1) != secretLen {
				t.Fatalf("first use = %q, %v", s1, err)
			}
			for _, st := range tc.steps {
				e.clock.Advance(st.wait)
				if st.useNext {
					if _, err := e.use(t, s1); err != nil {
						t.Fatalf("use of the successor: %v", err)
					}
				}
			}
			got, err := e.use(t, t0)
			if !errors.Is(err, tc.want) || (tc.want == nil && got != s1) {
				t.Errorf("retry = %q, %v; want %q, %v", got, err, s1, tc.want)
			}
			for _, k := range e.keys(t) {
				if strings.Contains(k, s1) || strings.Contains(k, t0) {
					t.Errorf("key %q holds a token itself", k)
				}
			}
			for _, k := range []string{refreshUsedKey(t0)} {
				b, _ := e.kv.Get(context.Background(), k)
				if strings.Contains(string(b), s1) {
					t.Errorf("the claim holds the successor in the clear: %s", b)
				}
			}
		})
	}
}

// TestFamiliesUseCrashSafe: the claim is the one write that decides; a
// crash or a failed write after it (the successor's record or the
// family's new generation missing) loses nothing: the retry, however late
// (no grace window), finishes the rotation and gets the same successor,
// which then works.
func TestFamiliesUseCrashSafe(t *testing.T) {
	ctx := context.Background()
	for _, lost := range []string{"successor and family", "family", "done mark only"} {
		t.Run(lost, func(t *testing.T) {
			e := newTestEnv(t, testLifetimes) // no grace at all
			id, t0 := startFamily(t, e, testFamily("alice", "app"))
			rt, fam, err := e.rec.Families.Lookup(ctx, t0)
			if err != nil {
				t.Fatal(err)
			}
			before, _ := e.kv.Get(ctx, familyKey(id))
			s1, err := e.rec.Families.Use(ctx, t0, rt, fam)
			if err != nil {
				t.Fatal(err)
			}
			// The crash: what came after the claim was never written.
			b, _ := e.kv.Get(ctx, refreshUsedKey(t0))
			var u use
			if err := json.Unmarshal(b, &u); err != nil || !u.Done {
				t.Fatalf("the claim after a finished rotation: %s", b)
			}
			u.Done = false
			nb, _ := json.Marshal(u)
			e.put(t, refreshUsedKey(t0), nb, time.Hour)
			if lost != "done mark only" {
				e.put(t, familyKey(id), before, time.Hour)
			}
			if lost == "successor and family" {
				if err := e.kv.Delete(ctx, refreshKey(s1)); err != nil {
					t.Fatal(err)
				}
			}
			e.clock.Advance(10 * time.Minute)
			got, err := e.use(t, t0)
			if err != nil || got != s1 {
				t.Fatalf("retry after the crash = %q, %v; want the successor", got, err)
			}
			if f, err := e.rec.Families.Get(ctx, id); err != nil || f.Gen != 1 {
				t.Errorf("family after the retry = %+v, %v; want generation 1", f, err)
			}
			s2, err := e.use(t, s1)
			if err != nil || s2 == s1 {
				t.Errorf("use of the successor = %q, %v", s2, err)
			}
			// And now t0 is plain reuse.
			if _, err := e.use(t, t0); !errors.Is(err, ErrReused) {
				t.Errorf("t0 after the chain moved on: %v, want ErrReused", err)
			}
		})
	}
}

// TestFamiliesUseConcurrent: two (or many) concurrent uses of one token,
// as two browser tabs: within the grace window every one gets the same
// successor (run with -race).
func TestFamiliesUseConcurrent(t *testing.T) {
	e := newTestEnv(t, graceLifetimes)
	_, t0 := startFamily(t, e, testFamily("alice", "app"))
	const n = 16
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = e.use(t, t0) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i] != got[0] {
			t.Errorf("use %d = %q, %v; want %q", i, got[i], errs[i], got[0])
		}
	}
	if _, err := e.use(t, got[0]); err != nil {
		t.Errorf("the shared successor does not work: %v", err)
	}
}

// TestFamiliesUseLapsed: a lapsed token is refused (ErrNotFound) and
// records no successor, so presenting it again is reuse, never a way
// round its deadline.
func TestFamiliesUseLapsed(t *testing.T) {
	e := newTestEnv(t, graceLifetimes)
	_, t0 := startFamily(t, e, testFamily("alice", "app"))
	e.clock.Advance(testLifetimes.RefreshIdle)
	if _, err := e.use(t, t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lapsed: %v, want ErrNotFound", err)
	}
	if _, err := e.use(t, t0); !errors.Is(err, ErrReused) {
		t.Errorf("lapsed, again: %v, want ErrReused", err)
	}
}

// TestFamiliesUseLegacyClaim: a claim written before claims recorded a
// successor ({1}) is reuse, as it was.
func TestFamiliesUseLegacyClaim(t *testing.T) {
	e := newTestEnv(t, graceLifetimes)
	_, t0 := startFamily(t, e, testFamily("alice", "app"))
	e.put(t, refreshUsedKey(t0), []byte{1}, time.Hour)
	if _, err := e.use(t, t0); !errors.Is(err, ErrReused) {
		t.Errorf("legacy claim: %v, want ErrReused", err)
	}
}

// TestSealSuccessor: only the predecessor token opens the sealed
// successor, and only for its family.
func TestSealSuccessor(t *testing.T) {
	tok, next := mustSecret(t), mustSecret(t)
	sealed, err := seal(tok, "fam", next)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := open(tok, "fam", sealed); err != nil || got != next {
		t.Errorf("open = %q, %v", got, err)
	}
	if _, err := open(mustSecret(t), "fam", sealed); err == nil {
		t.Error("another token opened the successor")
	}
	if _, err := open(digest(tok), "fam", sealed); err == nil {
		t.Error("the stored digest opened the successor")
	}
	if _, err := open(tok, "other", sealed); err == nil {
		t.Error("opened for another family")
	}
}

// TestFamiliesUseFamilyGoesBack: the family record is rewritten by others
// (a retry finishing a rotation, recording access tokens) and may go back
// a generation; the done mark on a claim never does, so a rotated token
// replayed after the window is reuse even then, never a way to the live
// token.
func TestFamiliesUseFamilyGoesBack(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, graceLifetimes)
	id, t0 := startFamily(t, e, testFamily("alice", "app"))
	s1, err := e.use(t, t0)
	if err != nil {
		t.Fatal(err)
	}
	atGen1, _ := e.kv.Get(ctx, familyKey(id))
	if _, err := e.use(t, s1); err != nil {
		t.Fatal(err)
	}
	e.put(t, familyKey(id), atGen1, time.Hour) // a stale rewrite
	e.clock.Advance(time.Minute)
	if got, err := e.use(t, s1); !errors.Is(err, ErrReused) {
		t.Errorf("replay of s1 after the family went back = %q, %v; want ErrReused", got, err)
	}
}

// TestFamiliesUseConcurrentRedis: two instances sharing a real Redis,
// two tabs each refreshing one token at once on either: every use gets the
// same successor, 50 times over (RFC 9700 §4.14.2 grace period).
func TestFamiliesUseConcurrentRedis(t *testing.T) {
	srv := testredis.Start(t)
	open := func() *Records {
		opts, err := redis.ParseURL(srv.URL(0))
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opts)
		t.Cleanup(func() { c.Close() })
		return New(NewRedisStore(c, DefaultRedisKeyPrefix), time.Now, zap.NewNop(), graceLifetimes)
	}
	a, b := open(), open()
	ctx := context.Background()
	for round := range 50 {
		id, err := NewID()
		if err != nil {
			t.Fatal(err)
		}
		t0, err := a.Families.Start(ctx, id, testFamily("alice", "app"))
		if err != nil {
			t.Fatal(err)
		}
		got := make([]string, 4)
		var wg sync.WaitGroup
		for i := range got {
			rec := []*Records{a, b}[i%2]
			wg.Go(func() {
				rt, fam, err := rec.Families.Lookup(ctx, t0)
				if err == nil {
					got[i], err = rec.Families.Use(ctx, t0, rt, fam)
				}
				if err != nil {
					t.Errorf("round %d use %d: %v", round, i, err)
				}
			})
		}
		wg.Wait()
		for i := range got {
			if got[i] != got[0] {
				t.Fatalf("round %d: successors %q", round, got)
			}
		}
		rt, fam, err := b.Families.Lookup(ctx, got[0])
		if err != nil {
			t.Fatalf("round %d: the successor: %v", round, err)
		}
		if _, err := b.Families.Use(ctx, got[0], rt, fam); err != nil {
			t.Fatalf("round %d: using the successor: %v", round, err)
		}
	}
}
