package oauthstore

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"
)

// TestRevocationsAddList: RFC 7009 §2.1, a revoked access token (a JWT the
// server cannot recall) is listed by jti until it expires; the listing
// alone rebuilds the list, jtis in their SafeID form.
func TestRevocationsAddList(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	r := e.rec.Revocations
	now := testEpoch
	adds := []struct {
		jti   string
		until time.Time
	}{
		{"jti-1", now.Add(time.Hour)},
		{"a:b", now.Add(2 * time.Hour)},
		{"short", now.Add(10 * time.Second)},
		{"already expired", now.Add(-time.Second)}, // a no-op
		{"expires now", now},                       // a no-op
	}
	for _, a := range adds {
		if err := r.Add(ctx, a.jti, a.until); err != nil {
			t.Fatalf("Add(%q): %v", a.jti, err)
		}
	}
	e.put(t, tokenRevocationsPrefix+"not-a-revocation", nil, 0) // ignored

	steps := []struct {
		at   time.Duration
		want map[string]int64
	}{
		{0, map[string]int64{"jti-1": now.Add(time.Hour).Unix(), "x-613a62": now.Add(2 * time.Hour).Unix(), "short": now.Add(10 * time.Second).Unix()}},
		// A token is still refused at its exp second (the checks use
		// now <= exp).
		{10 * time.Second, map[string]int64{"jti-1": now.Add(time.Hour).Unix(), "x-613a62": now.Add(2 * time.Hour).Unix(), "short": now.Add(10 * time.Second).Unix()}},
		{11 * time.Second, map[string]int64{"jti-1": now.Add(time.Hour).Unix(), "x-613a62": now.Add(2 * time.Hour).Unix()}},
		{time.Hour + time.Second, map[string]int64{"x-613a62": now.Add(2 * time.Hour).Unix()}},
		{3 * time.Hour, map[string]int64{}},
	}
	for _, s := range steps {
		e.clock.Set(now.Add(s.at))
		got, err := r.List(ctx)
		if err != nil || !maps.Equal(got, s.want) {
			t.Errorf("List at +%s = %v, %v; want %v", s.at, got, err, s.want)
		}
	}
	// The store's entries are gone too, but for the unparseable one.
	if keys, _ := e.kv.List(ctx, tokenRevocationsPrefix); len(keys) != 1 {
		t.Errorf("store keys after every expiry: %q", keys)
	}
}

// TestRevocationsAddExpired: revoking a token that has already expired
// writes nothing (RFC 7009 §2.2: an invalid token is no error).
func TestRevocationsAddExpired(t *testing.T) {
	ctx := context.Background()
	rec, cs := countingRecords(errStoreDown)
	for _, until := range []time.Time{testEpoch, testEpoch.Add(-time.Hour), {}} {
		if err := rec.Revocations.Add(ctx, "jti", until); err != nil {
			t.Errorf("Add until %v: %v", until, err)
		}
	}
	if n := cs.calls.Load(); n != 0 {
		t.Errorf("expired revocations reached the store %d times", n)
	}
	if err := rec.Revocations.Add(ctx, "jti", testEpoch.Add(time.Minute)); !errors.Is(err, errStoreDown) {
		t.Errorf("store failure: Add err = %v", err)
	}
	if _, err := rec.Revocations.List(ctx); !errors.Is(err, errStoreDown) {
		t.Errorf("store failure: List err = %v", err)
	}
	if _, err := rec.Revocations.Stamp(ctx); !errors.Is(err, errStoreDown) {
		t.Errorf("store failure: Stamp err = %v", err)
	}
}

// TestRevocationsStamp: every Announce writes a new stamp, so the other
// instances read one key to learn the list changed.
func TestRevocationsStamp(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	r := e.rec.Revocations
	if s, err := r.Stamp(ctx); err != nil || s != "" {
		t.Errorf("Stamp before any Announce = %q, %v; want empty", s, err)
	}
	seen := map[string]bool{"": true}
	for range 5 {
		if err := r.Announce(ctx); err != nil {
			t.Fatal(err)
		}
		s, err := r.Stamp(ctx)
		if err != nil || seen[s] {
			t.Fatalf("Stamp = %q, %v; want a new stamp", s, err)
		}
		seen[s] = true
	}
	// The stamp has no lifetime: an instance that was away a long time
	// still compares against it.
	e.clock.Advance(10 * 365 * 24 * time.Hour)
	if s, _ := r.Stamp(ctx); s == "" {
		t.Error("the stamp expired")
	}
}
