package oauthstore

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLockWaits: a waiter polls and gets the lock once its holder lets
// go, without waiting for the lock to expire.
func TestLockWaits(t *testing.T) {
	ctx := context.Background()
	kv := NewMemoryStore()
	unlock, err := Lock(ctx, kv, "setup")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		u, err := Lock(wctx, kv, "setup")
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(5 * time.Millisecond)
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("waiter: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the waiter did not get the released lock")
	}
}

// TestLockReleasesOnlyItsOwn: a holder whose lock expired (it stalled
// past lockTTL) and was taken by another must not release the other's.
func TestLockReleasesOnlyItsOwn(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	kv := NewMemoryStore()
	kv.SetClock(clock.Now)
	unlockA, err := Lock(ctx, kv, "setup")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(lockTTL)
	unlockB, err := Lock(ctx, kv, "setup")
	if err != nil {
		t.Fatalf("Lock after the first expired: %v", err)
	}
	unlockA()
	short, cancel := context.WithTimeout(ctx, 60*time.Millisecond)
	defer cancel()
	if u, err := Lock(short, kv, "setup"); !errors.Is(err, errLockTimeout) {
		if u != nil {
			u()
		}
		t.Fatalf("the stale holder released the new holder's lock: Lock err = %v", err)
	}
	unlockB()
	if _, err := kv.Get(ctx, lockKey("setup")); !errors.Is(err, ErrNotFound) {
		t.Errorf("the holder's unlock left the entry: %v", err)
	}
}

// TestLockCanceled: a context that ends first is a timeout, not a lock.
func TestLockCanceled(t *testing.T) {
	kv := NewMemoryStore()
	unlock, err := Lock(context.Background(), kv, "setup")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if u, err := Lock(ctx, kv, "setup"); !errors.Is(err, errLockTimeout) || u != nil {
		t.Errorf("Lock with a canceled context = %v, %v; want errLockTimeout", u != nil, err)
	}
}
