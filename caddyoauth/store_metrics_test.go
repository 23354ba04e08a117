package caddyoauth

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestStoreMetrics: each store operation is timed by backend and
// operation; a failure is counted, a missing key is not.
func TestStoreMetrics(t *testing.T) {
	ctx := context.Background()
	m := meterStore(NewMemoryStore())
	count := func() int { return testutil.CollectAndCount(storeMetrics.duration) }
	before := count()
	errs := func(backend, op string) float64 {
		return testutil.ToFloat64(storeMetrics.errors.WithLabelValues(backend, op))
	}
	e0 := errs("memory", "get")
	if _, err := m.Get(ctx, "missing/key"); err == nil {
		t.Fatal("missing key found")
	}
	if err := m.Put(ctx, "some/key", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := errs("memory", "get"); got != e0 {
		t.Errorf("a missing key counted as an error: %v", got)
	}
	if count() < before || count() == 0 {
		t.Error("no duration series")
	}

	full := meterStore(downStore{NewMemoryStore()})
	e1 := errs("other", "get")
	if _, err := full.Get(ctx, "k"); err == nil {
		t.Fatal("down store answered")
	}
	if got := errs("other", "get"); got != e1+1 {
		t.Errorf("errors of a store that fails: %v, want %v", got, e1+1)
	}
}
