package caddyoauth

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddyapigw/gateway/internal/oauthmetrics"
	"github.com/caddyapigw/gateway/internal/oauthstore"
)

// Store operations, for the metrics: latency and errors by backend and
// operation.
var storeMetrics = struct {
	once     sync.Once
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}{}

// storeOps are the op label values, in the order meteredStore keeps them.
var storeOps = [...]string{"get", "put", "put_if_absent", "take", "delete", "list"}

const (
	opGet = iota
	opPut
	opPutIfAbsent
	opTake
	opDelete
	opList
)

func initStoreMetrics() {
	storeMetrics.once.Do(func() {
		storeMetrics.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "oauth", Subsystem: "store", Name: "operation_seconds",
			Help:    "Time a store operation took, by backend (memory, caddy, redis) and operation.",
			Buckets: []float64{5e-5, 2e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.25, 1, 5},
		}, []string{"backend", "op"})
		storeMetrics.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "oauth", Subsystem: "store", Name: "errors_total",
			Help: "Store operations that failed (a missing key is not a failure), by backend and operation.",
		}, []string{"backend", "op"})
	})
}

// registerStoreMetrics adds the collectors to a configuration's registry.
func registerStoreMetrics(reg prometheus.Registerer) error {
	initStoreMetrics()
	return oauthmetrics.Register(reg, storeMetrics.duration, storeMetrics.errors)
}

// storeBackend names a store for the backend label.
func storeBackend(s Store) string {
	switch s.(type) {
	case *MemoryStore:
		return "memory"
	case *CaddyStore, *CaddyStoreModule:
		return "caddy"
	case *RedisStore, *RedisStoreModule:
		return "redis"
	}
	return "other"
}

// meteredStore times each operation of a Store and counts its failures.
// The owners of the records use it; the app keeps the store itself for
// what only a backend offers (Caddy storage's sweep).
type meteredStore struct {
	Store
	duration [len(storeOps)]prometheus.Observer
	errs     [len(storeOps)]prometheus.Counter
}

func meterStore(s Store) *meteredStore {
	initStoreMetrics()
	m := &meteredStore{Store: s}
	backend := storeBackend(s)
	for i, op := range storeOps {
		m.duration[i] = storeMetrics.duration.WithLabelValues(backend, op)
		m.errs[i] = storeMetrics.errors.WithLabelValues(backend, op)
	}
	return m
}

// StoreIdentity passes the metered store's identity through
// (oauthstore.Identifier).
func (m *meteredStore) StoreIdentity() string { return oauthstore.StoreIdentity(m.Store) }

func (m *meteredStore) done(op int, start time.Time, err error) {
	m.duration[op].Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, ErrNotFound) {
		m.errs[op].Inc()
	}
}

// Get implements Store.
func (m *meteredStore) Get(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	v, err := m.Store.Get(ctx, key)
	m.done(opGet, start, err)
	return v, err
}

// Put implements Store.
func (m *meteredStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	start := time.Now()
	err := m.Store.Put(ctx, key, value, ttl)
	m.done(opPut, start, err)
	return err
}

// PutIfAbsent implements Store.
func (m *meteredStore) PutIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	start := time.Now()
	ok, err := m.Store.PutIfAbsent(ctx, key, value, ttl)
	m.done(opPutIfAbsent, start, err)
	return ok, err
}

// Take implements Store.
func (m *meteredStore) Take(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	v, err := m.Store.Take(ctx, key)
	m.done(opTake, start, err)
	return v, err
}

// Delete implements Store.
func (m *meteredStore) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := m.Store.Delete(ctx, key)
	m.done(opDelete, start, err)
	return err
}

// List implements Store.
func (m *meteredStore) List(ctx context.Context, prefix string) ([]string, error) {
	start := time.Now()
	keys, err := m.Store.List(ctx, prefix)
	m.done(opList, start, err)
	return keys, err
}
