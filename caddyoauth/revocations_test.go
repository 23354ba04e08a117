package caddyoauth

import (
	"context"
	"testing"
	"time"
)

// TestRevocationListShared: a jti revoked on one instance is refused there
// at once and, after one refresh, on another instance sharing the store
// (RFC 7009 §2: the token is invalid from the revocation on). Expired
// entries drop out; a restart (fresh provision) reads the list first.
func TestRevocationListShared(t *testing.T) {
	storage := newStorage(t)
	a := provisionApp(t, baseConfig(), storage)
	b := provisionApp(t, baseConfig(), storage)
	ctx := context.Background()

	if a.Revoked("j1") {
		t.Fatal("j1 revoked before anything happened")
	}
	if err := a.revokeAccessToken(ctx, "j1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !a.Revoked("j1") {
		t.Fatal("revoking instance still accepts j1")
	}
	if b.Revoked("j1") {
		t.Fatal("other instance knew before its refresh (test is not testing the refresh)")
	}
	if err := b.revoked.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.Revoked("j1") || b.Revoked("j2") {
		t.Fatalf("after refresh: j1 %v (want true), j2 %v (want false)", b.Revoked("j1"), b.Revoked("j2"))
	}
	// A jti that would need escaping round-trips through the key.
	if err := a.revokeAccessToken(ctx, "x-odd:jti~1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	c := provisionApp(t, baseConfig(), storage)
	if !c.Revoked("j1") || !c.Revoked("x-odd:jti~1") {
		t.Fatal("a restarted instance does not know the revocations")
	}
	// Already expired (beyond the leeway): nothing to keep.
	if err := a.revokeAccessToken(ctx, "old", time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if a.Revoked("old") {
		t.Fatal("an expired token's revocation was kept")
	}
}

// TestRevocationListKeepsLastOnFailure: when the store cannot be read the
// last list stays in force (the "last known revocation list").
func TestRevocationListKeepsLastOnFailure(t *testing.T) {
	a := newApp(t, nil)
	fs := &flakyStore{Store: a.store}
	a.useStore(fs)
	if err := a.revokeAccessToken(context.Background(), "j1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	fs.down.Store(true)
	if err := a.revoked.refresh(context.Background()); err == nil {
		t.Fatal("refresh from a dead store reported no error")
	}
	if !a.Revoked("j1") {
		t.Fatal("the list was lost when the store failed")
	}
}

// listCountingStore counts List calls.
type listCountingStore struct {
	Store
	lists int
}

func (c *listCountingStore) List(ctx context.Context, p string) ([]string, error) {
	c.lists++
	return c.Store.List(ctx, p)
}

// TestRevocationListedOnlyWhenChanged: an instance lists the revocations
// (a scan) only when another revoked something, not at every tick, and
// still learns each revocation at the next tick.
func TestRevocationListedOnlyWhenChanged(t *testing.T) {
	shared := NewMemoryStore()
	cs := &listCountingStore{Store: shared}
	cfgA, cfgB := baseConfig(), baseConfig()
	cfgA.store, cfgB.store = shared, cs
	a, b := newApp(t, cfgA), newApp(t, cfgB)
	ctx := context.Background()
	for range 5 {
		if err := b.revoked.refreshIfChanged(ctx); err != nil {
			t.Fatal(err)
		}
	}
	idle := cs.lists
	if idle > 2 { // one at provision, one for the first stamp read
		t.Fatalf("%d listings without any revocation, want at most 2", idle)
	}
	if err := a.revokeAccessToken(ctx, "j9", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := b.revoked.refreshIfChanged(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.Revoked("j9") || cs.lists != idle+1 {
		t.Fatalf("after a revocation: revoked %v, listings %d (want %d)", b.Revoked("j9"), cs.lists, idle+1)
	}
	_ = b.revoked.refreshIfChanged(ctx)
	if cs.lists != idle+1 {
		t.Errorf("listed again without a change: %d", cs.lists)
	}
}
