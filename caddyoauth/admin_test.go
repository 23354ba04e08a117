package caddyoauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// countingStore counts Get calls, to see when the keyring is re-read.
type countingStore struct {
	Store
	gets atomic.Int32
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

// TestRotationSeenByOtherInstance: a key rotated on A is learnt by B on
// the first token it signs (an unknown kid prompts a re-read of the
// keyring), tokens signed before stay valid on both, and B's periodic
// refresh makes the new key B's signing key too.
func TestRotationSeenByOtherInstance(t *testing.T) {
	storage := newStorage(t)
	a := provisionApp(t, baseConfig(), storage)
	b := provisionApp(t, baseConfig(), storage)
	before := issue(t, a)
	oldKid := a.Keyring().Active().ID

	newKid, err := a.RotateSigningKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if newKid == oldKid {
		t.Fatal("rotation kept the same kid")
	}
	after := issue(t, a)
	if _, err := b.Verifier().Verify(after); err != nil {
		t.Fatalf("B refused a token signed with A's new key: %v", err)
	}
	for name, app := range map[string]*App{"A": a, "B": b} {
		if _, err := app.Verifier().Verify(before); err != nil {
			t.Errorf("%s refused a token signed before the rotation: %v", name, err)
		}
		if _, ok := app.Keyring().Lookup(oldKid); !ok {
			t.Errorf("%s dropped the old key", name)
		}
	}
	if err := b.keys.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b.Keyring().Active().ID != newKid {
		t.Errorf("B signs with %s after refresh, want %s", b.Keyring().Active().ID, newKid)
	}
}

// TestUnknownKidRefreshBounded: unknown kids re-read the keyring at most
// once per keyringMissRefresh, so random kids cannot hammer the store.
func TestUnknownKidRefreshBounded(t *testing.T) {
	cs := &countingStore{Store: NewMemoryStore()}
	a := baseConfig()
	a.store = cs
	provisionApp(t, a, nil)
	ks := keySet{a}
	start := cs.gets.Load()
	for i := range 100 {
		if _, ok := ks.Lookup("no-such-kid-" + string(rune('a'+i%26))); ok {
			t.Fatal("unknown kid found")
		}
	}
	if got := cs.gets.Load() - start; got != 1 {
		t.Fatalf("%d keyring reads for 100 unknown kids, want 1", got)
	}
	a.keys.lastRefreshNs.Store(time.Now().Add(-keyringMissRefresh - time.Second).UnixNano())
	ks.Lookup("another")
	if got := cs.gets.Load() - start; got != 2 {
		t.Fatalf("%d keyring reads after the interval, want 2", got)
	}
}

func adminCall(t *testing.T, h func(http.ResponseWriter, *http.Request) error, method string) (*httptest.ResponseRecorder, error) {
	t.Helper()
	rec := httptest.NewRecorder()
	err := h(rec, httptest.NewRequest(method, "/oauth/keys", nil))
	return rec, err
}

func apiStatus(err error) int {
	if ae, ok := err.(caddy.APIError); ok {
		return ae.HTTPStatus
	}
	return 0
}

// TestAdminKeys: GET lists the public keys and the active kid; POST
// rotate makes a new active key and keeps the old one; wrong methods are
// 405; without a running app, 404; a key from a PEM file cannot be rotated
// here (409).
func TestAdminKeys(t *testing.T) {
	if _, err := adminCall(t, handleKeys, http.MethodGet); apiStatus(err) != http.StatusNotFound {
		t.Fatalf("no running app: %v", err)
	}
	a := newApp(t, nil)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	oldKid := a.Keyring().Active().ID

	rec, err := adminCall(t, handleKeys, http.MethodGet)
	if err != nil {
		t.Fatal(err)
	}
	var got keysResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.ActiveKid != oldKid || len(got.Keys) != 1 {
		t.Fatalf("GET /oauth/keys = %s (%v)", rec.Body, err)
	}
	if _, err := adminCall(t, handleKeys, http.MethodPost); apiStatus(err) != http.StatusMethodNotAllowed {
		t.Errorf("POST /oauth/keys: %v", err)
	}
	if _, err := adminCall(t, handleRotate, http.MethodGet); apiStatus(err) != http.StatusMethodNotAllowed {
		t.Errorf("GET /oauth/keys/rotate: %v", err)
	}
	rec, err = adminCall(t, handleRotate, http.MethodPost)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.ActiveKid == oldKid || len(got.Keys) != 2 {
		t.Fatalf("rotate = %s (%v)", rec.Body, err)
	}
	if a.Keyring().Active().ID != got.ActiveKid {
		t.Error("the app does not sign with the rotated key")
	}

	pem := baseConfig()
	pem.SigningKey = &SigningKeyConfig{Algorithm: "ES256", File: writeKeyPEM(t, "ES256")}
	p := newApp(t, pem)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if _, err := adminCall(t, handleRotate, http.MethodPost); apiStatus(err) != http.StatusConflict {
		t.Errorf("rotating a PEM-file key: %v", err)
	}
}
