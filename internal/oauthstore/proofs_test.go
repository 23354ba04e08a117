package oauthstore

import (
	"context"
	"testing"
	"time"
)

// TestProofsClaim: RFC 9449 §11.1, a DPoP proof's jti is remembered for as
// long as the proof could be accepted; per key (jkt), and gone after.
func TestProofsClaim(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	p := e.rec.Proofs
	until := testEpoch.Add(time.Minute)
	steps := []struct {
		jkt, jti string
		fresh    bool
	}{
		{"key-a", "j1", true},
		{"key-a", "j1", false},
		{"key-b", "j1", true},
		{"key-a", "j2", true},
		{"key-b", "j1", false},
	}
	for i, s := range steps {
		fresh, err := p.Claim(ctx, s.jkt, s.jti, until)
		if err != nil || fresh != s.fresh {
			t.Errorf("step %d: Claim(%q, %q) = %v, %v; want %v", i, s.jkt, s.jti, fresh, err, s.fresh)
		}
	}
	e.clock.Set(until.Add(2 * time.Second))
	if keys := e.keys(t); len(keys) != 0 {
		t.Errorf("proof markers outlive the window: %q", keys)
	}
}

// TestSecretsShared: the first call makes the secret, every later call
// (another instance on the same store) gets the same 32 bytes, and
// another name gets another secret.
func TestSecretsShared(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	a, err := e.rec.Secrets.Shared(ctx, "dpop-nonce")
	if err != nil || len(a) != 32 {
		t.Fatalf("Shared = %x, %v", a, err)
	}
	again := New(e.rec.Secrets.kv, e.rec.Secrets.now, e.rec.Secrets.log, testLifetimes)
	b, err := again.Secrets.Shared(ctx, "dpop-nonce")
	if err != nil || string(a) != string(b) {
		t.Fatalf("second instance got another secret: %v", err)
	}
	c, _ := e.rec.Secrets.Shared(ctx, "other")
	if string(c) == string(a) {
		t.Fatal("two names share a secret")
	}
}
