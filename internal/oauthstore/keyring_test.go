package oauthstore

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func testKeyring() *StoredKeyring {
	return &StoredKeyring{
		Active: "k2",
		Keys: []StoredKey{
			{ID: "k1", Algorithm: "ES256", PrivateKey: "-----BEGIN EC PRIVATE KEY-----\nAAA\n-----END EC PRIVATE KEY-----\n", Created: testEpoch.Add(-48 * time.Hour), RetireAt: testEpoch.Add(time.Hour)},
			{ID: "k2", Algorithm: "RS256", PrivateKey: "-----BEGIN RSA PRIVATE KEY-----\nBBB\n-----END RSA PRIVATE KEY-----\n", Created: testEpoch},
		},
	}
}

// TestKeyringsPutGet: an issuer's signing keys (RFC 7517 key set, served
// at jwks_uri, RFC 8414 §2) survive restarts: Put then Get round trips,
// per issuer, issuers differing only in case included.
func TestKeyringsPutGet(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	k := e.rec.Keyrings
	const iss = "https://auth.example.com"
	if _, err := k.Get(ctx, iss); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get before Put err = %v, want ErrNotFound", err)
	}
	if err := k.Put(ctx, iss, testKeyring()); err != nil {
		t.Fatal(err)
	}
	got, err := k.Get(ctx, iss)
	if err != nil || !reflect.DeepEqual(got, testKeyring()) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, testKeyring())
	}
	for _, other := range []string{"https://AUTH.example.com", "https://auth.example.com/", "https://auth.example.com:443"} {
		if _, err := k.Get(ctx, other); !errors.Is(err, ErrNotFound) {
			t.Errorf("issuer %q shares %q's keyring: %v", other, iss, err)
		}
	}
	if !e.has(t, KeyringKey(iss)) {
		t.Errorf("the keyring is not at KeyringKey(%q) = %q", iss, KeyringKey(iss))
	}
}

// TestKeyringsCorrupt: a corrupt keyring is an error, not ErrNotFound:
// replacing it silently would invalidate every token it signed. The error
// names the key, so an operator can find the file.
func TestKeyringsCorrupt(t *testing.T) {
	ctx := context.Background()
	const iss = "https://auth.example.com/tenant"
	for _, tc := range append([]struct{ name, v string }{{"wrong shape", `{"keys":"k1"}`}}, corruptJSON...) {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, testLifetimes)
			e.put(t, KeyringKey(iss), []byte(tc.v), 0)
			_, err := e.rec.Keyrings.Get(ctx, iss)
			if err == nil || errors.Is(err, ErrNotFound) {
				t.Fatalf("err = %v, want an error that is not ErrNotFound", err)
			}
			if !strings.Contains(err.Error(), KeyringKey(iss)) {
				t.Errorf("error %q does not name %q", err, KeyringKey(iss))
			}
		})
	}
	rec, _ := countingRecords(errStoreDown)
	if _, err := rec.Keyrings.Get(ctx, iss); err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), errStoreDown.Error()) {
		t.Errorf("store failure: Get err = %v, want the store's, not ErrNotFound", err)
	}
	if err := rec.Keyrings.Put(ctx, iss, testKeyring()); err == nil || !strings.Contains(err.Error(), errStoreDown.Error()) {
		t.Errorf("store failure: Put err = %v", err)
	}
}

// TestKeyringsLock: the first signing key of a cluster is made once, under
// a lock that excludes every other instance until released; another
// issuer's lock is independent.
func TestKeyringsLock(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	k := e.rec.Keyrings
	const iss = "https://auth.example.com"
	unlock, err := k.Lock(ctx, iss)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 80*time.Millisecond)
	defer cancel()
	if u, err := k.Lock(short, iss); err == nil || !strings.Contains(err.Error(), errLockTimeout.Error()) {
		if u != nil {
			u()
		}
		t.Fatalf("second Lock err = %v, want a timeout", err)
	}
	otherUnlock, err := k.Lock(ctx, "https://other.example.com")
	if err != nil {
		t.Fatalf("another issuer's lock: %v", err)
	}
	otherUnlock()
	unlock()
	short2, cancel2 := context.WithTimeout(ctx, 80*time.Millisecond)
	defer cancel2()
	again, err := k.Lock(short2, iss)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	again()
}
