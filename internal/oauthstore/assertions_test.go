package oauthstore

import (
	"context"
	"testing"
	"time"
)

// TestAssertionsClaim: RFC 7523 §3 item 7, "The authorization server MAY
// ensure that JWTs are not replayed by maintaining the set of used 'jti'
// values for the length of time for which the JWT would be considered
// valid": per client, since jti is unique only for its issuer (RFC 7519
// §4.1.7).
func TestAssertionsClaim(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	a := e.rec.Assertions
	until := testEpoch.Add(5 * time.Minute)
	steps := []struct {
		client, jti string
		fresh       bool
	}{
		{"app", "jti-1", true},
		{"app", "jti-1", false},
		{"svc", "jti-1", true},
		{"svc", "jti-1", false},
		{"app", "jti-2", true},
		{"svc:1", "jti-1", true},
		{"app", "jti-1", false},
	}
	for i, s := range steps {
		fresh, err := a.Claim(ctx, s.client, s.jti, until)
		if err != nil || fresh != s.fresh {
			t.Errorf("step %d: Claim(%q, %q) = %v, %v; want %v", i, s.client, s.jti, fresh, err, s.fresh)
		}
	}
	// The jti is remembered as long as the assertion is valid.
	e.clock.Set(until)
	if fresh, _ := a.Claim(ctx, "app", "jti-1", until); fresh {
		t.Error("a replay at the assertion's expiry was taken as fresh")
	}
	e.clock.Set(until.Add(time.Second))
	if keys := e.keys(t); len(keys) != 0 {
		t.Errorf("jti markers outlive their assertions: %q", keys)
	}
}

// TestAssertionsClaimExpired: a marker is never kept for ever, also when
// until has passed (a Store reads a lifetime of zero or less as none).
func TestAssertionsClaimExpired(t *testing.T) {
	ctx := context.Background()
	for _, ago := range []time.Duration{time.Second, 2 * time.Second, time.Hour} {
		e := newTestEnv(t, testLifetimes)
		if _, err := e.rec.Assertions.Claim(ctx, "app", "jti", testEpoch.Add(-ago)); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(2 * time.Second)
		if keys := e.keys(t); len(keys) != 0 {
			t.Errorf("until %s ago: marker kept: %q", ago, keys)
		}
	}
}
