// Package oauthstore keeps the authorization server's state in a key-value
// store: the Store contract and its backends (memory, Caddy storage,
// Redis), the one key schema, and a typed owner per kind of record (codes,
// refresh-token families, sessions, consents, users, clients, revocations,
// keyrings, assertion ids).
//
// It is to caddyoauth what certmagic is to caddytls: a storage library below
// the Caddy module, with no HTTP types in its API. Owners return ErrNotFound
// (absent, lapsed, revoked or corrupt) or a store failure, never a protocol
// answer; the endpoints map those to OAuth errors in one place each.
package oauthstore

import (
	"context"
	"errors"
	"strings"
	"time"
)

// ErrNotFound reports a key the store does not hold (or holds expired), or
// a record an owner treats as absent.
var ErrNotFound = errors.New("not found in the store")

// Store keeps what the authorization server must not lose across reloads,
// restarts and instances: signing keys, codes, refresh-token families,
// revocations, sessions and store-kept clients. Keys are slash-separated
// paths made by this package (keys.go); values are opaque bytes. Every
// entry may carry a lifetime after which it is gone on its own.
//
// Implementations: memory (tests), Caddy storage (the default), Redis.
// All of them pass the same conformance suite.
type Store interface {
	// Get returns the value under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores value under key, replacing what was there. A ttl of zero
	// means no expiry.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// PutIfAbsent stores value only if key holds nothing, atomically
	// across every instance sharing the store, and reports whether it did.
	PutIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Take returns the value under key and removes it atomically: of any
	// number of concurrent Takes of one key, on any instance, exactly one
	// gets the value and the others get ErrNotFound.
	Take(ctx context.Context, key string) ([]byte, error)
	// Delete removes key. A missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the keys under prefix that hold a live value, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// ValidKey accepts the keys this package makes: non-empty segments of
// A-Z a-z 0-9 . _ - separated by single slashes.
func ValidKey(key string) bool {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return false
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			if !safeByte(seg[i]) {
				return false
			}
		}
	}
	return true
}

// safeByte is a byte allowed in a key segment.
func safeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// errBadKey reports a key ValidKey refuses.
var errBadKey = errors.New("invalid store key")

// expiry turns a ttl into an absolute deadline; zero means none.
func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// TTLUntil is the lifetime of an entry that must be gone by t, counted
// from now, never zero or negative (which a Store reads as "no expiry").
func TTLUntil(now, t time.Time) time.Duration {
	return max(t.Sub(now), time.Second)
}
