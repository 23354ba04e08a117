package oauthstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"
)

// Store locks: one-time work shared by every instance of a cluster (making
// the first signing key) runs under a lock held as a Store entry, so it
// works on any backend. The entry expires on its own, so an instance that
// dies holding it blocks the others for lockTTL at most.
const (
	lockTTL          = 30 * time.Second
	lockPollInterval = 50 * time.Millisecond
)

// errLockTimeout reports a lock not obtained before the context ended.
var errLockTimeout = errors.New("timed out waiting for the lock")

// Lock takes the named lock, waiting up to lockTTL, and returns the
// function that releases it.
func Lock(ctx context.Context, s Store, name string) (func(), error) {
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, err
	}
	key := lockKey(name)
	ctx, cancel := context.WithTimeout(ctx, lockTTL)
	defer cancel()
	for {
		ok, err := s.PutIfAbsent(ctx, key, []byte(hex.EncodeToString(tok[:])), lockTTL)
		if err != nil {
			return nil, err
		}
		if ok {
			return func() {
				// Release only our own lock: it may have expired and been
				// taken by another instance meanwhile.
				rel := context.WithoutCancel(ctx)
				if v, err := s.Get(rel, key); err == nil && string(v) == hex.EncodeToString(tok[:]) {
					_ = s.Delete(rel, key)
				}
			}, nil
		}
		select {
		case <-ctx.Done():
			return nil, errLockTimeout
		case <-time.After(lockPollInterval):
		}
	}
}
