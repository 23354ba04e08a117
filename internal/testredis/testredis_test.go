package testredis

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestPauseResume: a paused server accepts commands but answers none until
// it is resumed, and Stop ends a paused server without waiting for the kill.
func TestPauseResume(t *testing.T) {
	srv := Start(t)
	if srv.PID() <= 0 {
		t.Fatalf("PID = %d", srv.PID())
	}
	opts, err := redis.ParseURL(srv.URL(0))
	if err != nil {
		t.Fatal(err)
	}
	opts.ReadTimeout = 200 * time.Millisecond
	opts.MaxRetries = -1
	client := redis.NewClient(opts)
	defer client.Close()
	ctx := context.Background()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	srv.Pause(t)
	start := time.Now()
	if err := client.Ping(ctx).Err(); err == nil {
		t.Fatal("a paused server answered PING")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("PING to a paused server took %v, want about the 200 ms read timeout", d)
	}
	srv.Resume(t)
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Resume: %v", err)
	}

	srv.Pause(t)
	start = time.Now()
	srv.Stop()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("stopping a paused server took %v", d)
	}
}
