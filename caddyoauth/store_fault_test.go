package caddyoauth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// flakyStore fails every operation while down is set, as a Redis that went
// away would. failedGets counts the failed reads of client records (the
// background loops' reads, which run on their own clock, are not counted).
type flakyStore struct {
	Store
	down       atomic.Bool
	failedGets atomic.Int32
}

var errDown = errors.New("connection refused")

func (f *flakyStore) Get(ctx context.Context, k string) ([]byte, error) {
	if f.down.Load() {
		if strings.HasPrefix(k, "client") {
			f.failedGets.Add(1)
		}
		return nil, errDown
	}
	return f.Store.Get(ctx, k)
}

func (f *flakyStore) Put(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.Put(ctx, k, v, ttl)
}

func (f *flakyStore) PutIfAbsent(ctx context.Context, k string, v []byte, ttl time.Duration) (bool, error) {
	if f.down.Load() {
		return false, errDown
	}
	return f.Store.PutIfAbsent(ctx, k, v, ttl)
}

func (f *flakyStore) Take(ctx context.Context, k string) ([]byte, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.Store.Take(ctx, k)
}

func (f *flakyStore) Delete(ctx context.Context, k string) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.Delete(ctx, k)
}

func (f *flakyStore) List(ctx context.Context, p string) ([]string, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.Store.List(ctx, p)
}

// TestStoreDownWhileRunning: with the store gone, what needs no store keeps
// working (Caddyfile clients get tokens; a client seen before keeps its last
// known state); what needs it answers 503 temporarily_unavailable with
// Retry-After (a store-kept client this instance never saw; the admin
// API), without each request waiting on the store; everything recovers
// within a cache lifetime of the store's return.
func TestStoreDownWhileRunning(t *testing.T) {
	fs := &flakyStore{Store: NewMemoryStore()}
	cfg := baseConfig()
	cfg.store = fs
	a := provisionApp(t, cfg, nil)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	srv := newServer(t, a, "")

	secrets := map[string]string{}
	for _, id := range []string{"seen", "unseen"} {
		status, m, raw := adminDo(t, "POST", "/oauth/clients", `{"client_id":"`+id+`","scopes":["user:read"]}`)
		if status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", id, status, raw)
		}
		secrets[id] = m["client_secret"].(string)
	}
	if rec := basicToken(t, srv, "seen", secrets["seen"], ccForm()); rec.Code != http.StatusOK {
		t.Fatalf("seen client before the outage: %d", rec.Code)
	}

	fs.down.Store(true)
	if rec := basicToken(t, srv, svcID, svcSecret, ccForm()); rec.Code != http.StatusOK {
		t.Errorf("Caddyfile client during the outage: %d %s", rec.Code, rec.Body)
	}
	time.Sleep(2 * clientCacheTTL) // the seen client's entry goes stale; its refresh fails
	if rec := basicToken(t, srv, "seen", secrets["seen"], ccForm()); rec.Code != http.StatusOK {
		t.Errorf("client seen before the outage: %d %s", rec.Code, rec.Body)
	}
	if _, ok := a.Client("seen"); !ok {
		t.Error("tokens of a client seen before the outage would be refused")
	}
	rec := basicToken(t, srv, "unseen", secrets["unseen"], ccForm())
	assertOAuthError(t, rec, http.StatusServiceUnavailable, "temporarily_unavailable")
	if rec.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if status, _, raw := adminDo(t, "GET", "/oauth/clients", ""); status != http.StatusServiceUnavailable {
		t.Errorf("admin list during the outage: %d %s", status, raw)
	}

	// Requests during the outage do not each wait on the store: a client
	// this instance never read costs one failed read per cache lifetime,
	// whether it is a store-kept client (503) or a Caddyfile one (served).
	before := fs.failedGets.Load()
	for range 50 {
		rec := basicToken(t, srv, "unseen", secrets["unseen"], ccForm())
		assertOAuthError(t, rec, http.StatusServiceUnavailable, "temporarily_unavailable")
		if _, ok := a.Client(readerID); !ok {
			t.Fatal("Caddyfile client unknown during the outage")
		}
	}
	if n := fs.failedGets.Load() - before; n > 2 {
		t.Errorf("%d store reads for 50 requests during the outage, want at most one per client", n)
	}

	fs.down.Store(false)
	deadline := time.Now().Add(5 * clientCacheTTL)
	for {
		rec := basicToken(t, srv, "unseen", secrets["unseen"], ccForm())
		if rec.Code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery within %v of the store's return: %d %s", 5*clientCacheTTL, rec.Code, rec.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status, _, raw := adminDo(t, "GET", "/oauth/clients", ""); status != http.StatusOK {
		t.Errorf("admin list after recovery: %d %s", status, raw)
	}
}
