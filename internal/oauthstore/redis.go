package oauthstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisKeyPrefix namespaces this package's keys in a shared Redis.
const DefaultRedisKeyPrefix = "caddyoauth:"

// RedisStore is a Store on Redis, for a cluster of gateways: every
// operation is one Redis command or script, so Take (GETDEL) and
// PutIfAbsent (SET NX) are atomic across instances, and lifetimes are
// Redis's own (PX). Get, Put, Delete and List are plain commands, which
// go-redis sends again after a timeout: running one twice leaves what
// running it once does. PutIfAbsent and Take are once-only and run as
// scripts that are safe to send again (see once).
type RedisStore struct {
	client redis.UniversalClient
	prefix string
	// onceTimeout bounds a once-only call; its end is the call's fence.
	onceTimeout time.Duration
	// clock is the latest reading of Redis's clock.
	clock atomic.Pointer[redisClock]
}

// NewRedisStore uses client with keys under prefix.
func NewRedisStore(client redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{client: client, prefix: prefix, onceTimeout: redisOnceTimeout}
}

func (s *RedisStore) key(k string) string { return s.prefix + k }

// StoreIdentity implements Identifier: the server address(es), database,
// user name and key prefix; never the password.
func (s *RedisStore) StoreIdentity() string {
	switch c := s.client.(type) {
	case *redis.Client:
		o := c.Options()
		return fmt.Sprintf("redis %s db %d user %q prefix %q", o.Addr, o.DB, o.Username, s.prefix)
	case *redis.ClusterClient:
		o := c.Options()
		addrs := slices.Sorted(slices.Values(o.Addrs))
		return fmt.Sprintf("redis cluster %s user %q prefix %q", strings.Join(addrs, ","), o.Username, s.prefix)
	}
	return ""
}

// Ping checks that Redis answers.
func (s *RedisStore) Ping(ctx context.Context) error { return s.client.Ping(ctx).Err() }

// Close releases the connections.
func (s *RedisStore) Close() error { return s.client.Close() }

// Get implements Store.
func (s *RedisStore) Get(ctx context.Context, key string) ([]byte, error) {
	if !ValidKey(key) {
		return nil, errBadKey
	}
	v, err := s.client.Get(ctx, s.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	return v, err
}

// Put implements Store.
func (s *RedisStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if !ValidKey(key) {
		return errBadKey
	}
	return s.client.Set(ctx, s.key(key), value, redisTTL(ttl)).Err()
}

// PutIfAbsent implements Store with SET NX, once per call (see once): the
// call reports what the first of its copies Redis ran did, so a retry
// that finds the value its own first copy stored reports it as stored, and
// a copy that reaches Redis after the call gave up stores nothing.
func (s *RedisStore) PutIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if !ValidKey(key) {
		return false, errBadKey
	}
	var ms int64 // no expiry
	if ttl > 0 {
		ms = max(ttl.Milliseconds(), 1)
	}
	outcome, _, err := s.once(ctx, putIfAbsentScript, key, value, ms)
	return err == nil && outcome == 1, err
}

// Take implements Store with GETDEL, once per call (see once): the call
// reports what the first of its copies Redis ran did, so a retry after its
// own first copy took the value returns that value, and a copy that
// reaches Redis after the call gave up takes nothing.
func (s *RedisStore) Take(ctx context.Context, key string) ([]byte, error) {
	if !ValidKey(key) {
		return nil, errBadKey
	}
	outcome, v, err := s.once(ctx, takeScript, key)
	if err != nil {
		return nil, err
	}
	if outcome == 0 {
		return nil, ErrNotFound
	}
	return []byte(v), nil
}

// Delete implements Store.
func (s *RedisStore) Delete(ctx context.Context, key string) error {
	if !ValidKey(key) {
		return errBadKey
	}
	return s.client.Del(ctx, s.key(key)).Err()
}

// List implements Store with SCAN, which does not block Redis.
func (s *RedisStore) List(ctx context.Context, prefix string) ([]string, error) {
	if prefix != "" && !ValidKey(prefix+"x") {
		return nil, errBadKey // also keeps glob characters out of MATCH
	}
	var out []string
	iter := s.client.Scan(ctx, 0, s.key(prefix)+"*", 500).Iterator()
	for iter.Next(ctx) {
		// A once-only call's marker (onceKey) may match; it is no Store key.
		if k, ok := strings.CutPrefix(iter.Val(), s.prefix); ok && ValidKey(k) {
			out = append(out, k)
		}
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("listing keys: %w", err)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// redisTTL maps "no expiry" (0) to go-redis's KeepTTL-free zero.
func redisTTL(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return 0
	}
	return ttl
}

var _ Store = (*RedisStore)(nil)
