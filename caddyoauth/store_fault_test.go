package caddyoauth

import (
	"context"
	"errors"
	"net/http"
	"strconv"
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
	if _, ok, _ := a.Client("seen"); !ok {
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
		if _, ok, _ := a.Client(readerID); !ok {
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

// TestStoreDownFloodKeepsRevocations: issue 15. With the store down, a
// flood of made-up client_ids at the token endpoint (unauthenticated
// input, more than the cache holds) must not make the gateway forget what
// it knows: the tokens of a Caddyfile client an administrator revoked stay
// refused (RFC 7009 §2.1: a revocation is not undone), the tokens of a
// store-kept client read before stay accepted, and a token whose
// store-kept client cannot be read is neither accepted nor refused: an
// error the resource server answers with 503 (caddyscope), never a 401.
func TestStoreDownFloodKeepsRevocations(t *testing.T) {
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
	tokens := map[string]string{}
	for _, id := range []string{"seen", "unread"} {
		status, m, raw := adminDo(t, "POST", "/oauth/clients", `{"client_id":"`+id+`","scopes":["user:read"]}`)
		if status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", id, status, raw)
		}
		secrets[id] = m["client_secret"].(string)
		tokens[id] = decodeTokenResponse(t, basicToken(t, srv, id, secrets[id], ccForm())).AccessToken
	}
	tokens[svcID] = decodeTokenResponse(t, basicToken(t, srv, svcID, svcSecret, ccForm())).AccessToken
	if status, _, raw := adminDo(t, "POST", "/oauth/clients/"+svcID+"/revoke", ""); status != http.StatusOK {
		t.Fatalf("revoke: %d %s", status, raw)
	}
	// This instance knows the mark and the seen client; "unread" is as on
	// an instance that never read it.
	if _, reason, err := srv.activeAccessToken(tokens[svcID]); reason != "token revoked" || err != nil {
		t.Fatalf("revoked token before the outage: %q %v", reason, err)
	}
	if c, _, err := srv.activeAccessToken(tokens["seen"]); c == nil || err != nil {
		t.Fatalf("seen client's token before the outage: %v", err)
	}
	a.registry.forget("unread")

	fs.down.Store(true)
	// The flood: many times more made-up ids than the cache holds (made
	// small, so that every entry that can be evicted is, almost surely),
	// a few hundred through the endpoint, the rest straight at the
	// registry (what the endpoint does for each).
	a.registry.mu.Lock()
	a.registry.maxOthers = 50
	a.registry.mu.Unlock()
	for i := range 300 {
		rec := basicToken(t, srv, "made-up-"+strconv.Itoa(i), "whatever-secret-0123", ccForm())
		if rec.Code != http.StatusServiceUnavailable && rec.Code != http.StatusUnauthorized {
			t.Fatalf("made-up client %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	for i := range 3000 {
		_, _, _, _ = a.registry.lookup(t.Context(), "flood-"+strconv.Itoa(i))
	}
	time.Sleep(2 * clientCacheTTL) // every entry stale; refreshes fail

	if _, reason, err := srv.activeAccessToken(tokens[svcID]); reason != "token revoked" || err != nil {
		t.Errorf("revoked Caddyfile client's token after the flood: reason %q, err %v; want still revoked", reason, err)
	}
	info, ok, err := a.Client(svcID)
	if !ok || err != nil || info.RevokedBefore.IsZero() {
		t.Errorf("Caddyfile client after the flood: %+v %v %v; want its revocation mark", info, ok, err)
	}
	if c, reason, err := srv.activeAccessToken(tokens["seen"]); c == nil || err != nil {
		t.Errorf("seen store-kept client's token after the flood: %q %v; want accepted", reason, err)
	}
	if _, ok, err := a.Client("unread"); ok || err == nil {
		t.Errorf("unreadable store-kept client: ok %v, err %v; want an error (503), not unknown (401)", ok, err)
	}
	if c, reason, err := srv.activeAccessToken(tokens["unread"]); c != nil || err == nil {
		t.Errorf("unreadable client's token: %q %v; want an error", reason, err)
	}
	a.registry.mu.Lock()
	known, others := len(a.registry.known), len(a.registry.others)
	a.registry.mu.Unlock()
	if others > 50 || known > len(cfg.Clients)+1 {
		t.Errorf("cache sizes: known %d, others %d; want known bounded by the real clients, others by 50", known, others)
	}

	fs.down.Store(false)
	deadline := time.Now().Add(5 * clientCacheTTL)
	for {
		if _, ok, err := a.Client("unread"); ok && err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the unread client is still unavailable after the store came back")
		}
		time.Sleep(clientCacheTTL / 5)
	}
}

// TestFailedFirstReadFailsClosed: a Caddyfile client whose revocation mark
// this instance has never read (the store failed at start and since) is
// judged unavailable for tokens already issued, never "not revoked"; it
// still gets new tokens, which no earlier mark can concern.
func TestFailedFirstReadFailsClosed(t *testing.T) {
	fs := &flakyStore{Store: NewMemoryStore()}
	cfg := baseConfig()
	cfg.store = fs
	a := provisionApp(t, cfg, nil)
	srv := newServer(t, a, "")
	fs.down.Store(true)
	if _, ok, err := a.Client(svcID); ok || err == nil {
		t.Errorf("Client with the mark never read: ok %v err %v; want an error", ok, err)
	}
	if revoked, err := a.registry.revokedSince(t.Context(), svcID, time.Now().Unix()); revoked || err == nil {
		t.Errorf("revokedSince with the mark never read: %v %v; want an error", revoked, err)
	}
	if rec := basicToken(t, srv, svcID, svcSecret, ccForm()); rec.Code != http.StatusOK {
		t.Errorf("new token for the Caddyfile client: %d %s", rec.Code, rec.Body)
	}
}
