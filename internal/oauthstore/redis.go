package oauthstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisKeyPrefix namespaces this package's keys in a shared Redis.
const DefaultRedisKeyPrefix = "caddyoauth:"

// RedisStore is a Store on Redis, for a cluster of gateways: every
// operation is one Redis command, so Take (GETDEL) and PutIfAbsent (SET NX)
// are atomic across instances, and lifetimes are Redis's own (PX).
type RedisStore struct {
	client redis.UniversalClient
	prefix string
}

// NewRedisStore uses client with keys under prefix.
func NewRedisStore(client redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{client: client, prefix: prefix}
}

func (s *RedisStore) key(k string) string { return s.prefix + k }

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

// PutIfAbsent implements Store.
func (s *RedisStore) PutIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if !ValidKey(key) {
		return false, errBadKey
	}
	// SET NX; go-redis's SetNX is deprecated in favour of SetArgs.
	err := s.client.SetArgs(ctx, s.key(key), value, redis.SetArgs{Mode: "NX", TTL: redisTTL(ttl)}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}

// Take implements Store.
func (s *RedisStore) Take(ctx context.Context, key string) ([]byte, error) {
	if !ValidKey(key) {
		return nil, errBadKey
	}
	v, err := s.client.GetDel(ctx, s.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	return v, err
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
		out = append(out, iter.Val()[len(s.prefix):])
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
