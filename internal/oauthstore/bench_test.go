package oauthstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/testredis"
)

// BenchmarkStore measures Put, Get and Take (the single-use redemption of a
// code or refresh token) on each implementation.
func BenchmarkStore(b *testing.B) {
	client := testredis.StartClient(b)
	backends := []struct {
		name  string
		store Store
	}{
		{"memory", NewMemoryStore()},
		{"caddy", NewCaddyStore(fileStorage(b.TempDir()), "oauth", zap.NewNop())},
		{"redis", NewRedisStore(client, DefaultRedisKeyPrefix)},
	}
	ctx := context.Background()
	value := make([]byte, 256)
	for _, be := range backends {
		b.Run(be.name+"/put", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if err := be.store.Put(ctx, "bench/put-"+strconv.Itoa(i%1024), value, time.Minute); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(be.name+"/get", func(b *testing.B) {
			if err := be.store.Put(ctx, "bench/get", value, time.Minute); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := be.store.Get(ctx, "bench/get"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(be.name+"/put+take", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := be.store.Put(ctx, "bench/take", value, time.Minute); err != nil {
					b.Fatal(err)
				}
				if _, err := be.store.Take(ctx, "bench/take"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
