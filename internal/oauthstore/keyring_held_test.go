package oauthstore

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// wipe deletes every entry of kv, as a Redis restarted without
// persistence or a FLUSHALL does.
func wipe(t *testing.T, kv Store) {
	t.Helper()
	ctx := context.Background()
	keys, err := kv.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := kv.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
}

// anonymousStore is a Store without an identity (a third-party backend).
type anonymousStore struct{ Store }

// TestKeyringsLost: a store that lost its data gets back the keyring this
// process last kept in it, with the reason; only the keyring missing from
// a store that still carries our marker is told apart; a different store
// (another identity, another marker at the same identity, no identity)
// never gets it (issue 15, item 4).
func TestKeyringsLost(t *testing.T) {
	ctx := context.Background()
	const iss = "https://auth.example.com/lost"
	kv := NewMemoryStore()
	k := Keyrings{owner{kv: kv, now: newTestClock().Now, log: zap.NewNop()}}
	if err := k.Put(ctx, iss, testKeyring()); err != nil {
		t.Fatal(err)
	}
	marker, err := kv.Get(ctx, markerKey)
	if err != nil || len(marker) == 0 {
		t.Fatalf("no store marker after the first Put: %q, %v", marker, err)
	}

	wipe(t, kv)
	got, why, err := k.Lost(ctx, iss)
	if err != nil || why != LossStoreEmpty || !reflect.DeepEqual(got, testKeyring()) {
		t.Fatalf("after a wipe Lost = %+v, %q, %v; want the held keyring, %q", got, why, err, LossStoreEmpty)
	}
	if err := k.Restore(ctx, iss, got); err != nil {
		t.Fatal(err)
	}
	if back, err := k.Get(ctx, iss); err != nil || !reflect.DeepEqual(back, testKeyring()) {
		t.Errorf("after Restore Get = %+v, %v", back, err)
	}
	if m, _ := kv.Get(ctx, markerKey); string(m) != string(marker) {
		t.Errorf("Restore wrote marker %q, want the old one %q", m, marker)
	}

	// Only the keyring gone: our marker is still there.
	if err := kv.Delete(ctx, KeyringKey(iss)); err != nil {
		t.Fatal(err)
	}
	if got, why, err := k.Lost(ctx, iss); err != nil || got == nil || why != LossKeyringOnly {
		t.Errorf("keyring deleted, marker kept: Lost = %v, %q, %v; want %q", got != nil, why, err, LossKeyringOnly)
	}

	// Another store at the same identity (another marker): nothing.
	if err := kv.Put(ctx, markerKey, []byte("someone-else"), 0); err != nil {
		t.Fatal(err)
	}
	if got, why, err := k.Lost(ctx, iss); err != nil || got != nil {
		t.Errorf("a store with another marker would get our keyring: %v, %q, %v", got != nil, why, err)
	}

	// A different store: nothing, whatever it holds.
	other := Keyrings{owner{kv: NewMemoryStore(), now: newTestClock().Now, log: zap.NewNop()}}
	if got, _, err := other.Lost(ctx, iss); err != nil || got != nil {
		t.Errorf("a fresh, different store would inherit the keyring: %v, %v", got != nil, err)
	}
	// Another issuer in the same store: nothing.
	wipe(t, kv)
	if got, _, err := k.Lost(ctx, iss+"/other"); err != nil || got != nil {
		t.Errorf("another issuer would inherit the keyring: %v, %v", got != nil, err)
	}
}

// TestKeyringsLostNoIdentity: a store that cannot name itself never gets
// a keyring written back, and Restore refuses.
func TestKeyringsLostNoIdentity(t *testing.T) {
	ctx := context.Background()
	const iss = "https://auth.example.com/anon"
	kv := anonymousStore{NewMemoryStore()}
	k := Keyrings{owner{kv: kv, now: newTestClock().Now, log: zap.NewNop()}}
	if err := k.Put(ctx, iss, testKeyring()); err != nil {
		t.Fatal(err)
	}
	wipe(t, kv)
	if got, _, err := k.Lost(ctx, iss); err != nil || got != nil {
		t.Errorf("Lost = %v, %v on a store without identity; want nothing", got != nil, err)
	}
	if err := k.Restore(ctx, iss, testKeyring()); err == nil {
		t.Error("Restore wrote into a store without identity")
	}
}

// TestStoreIdentity: identities tell stores apart by what decides which
// data they hold (address, database, user, prefix; storage path and
// prefix), are equal for two handles on the same data, and never carry
// the Redis password.
func TestStoreIdentity(t *testing.T) {
	rs := func(url, prefix string) string {
		t.Helper()
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opts)
		t.Cleanup(func() { _ = c.Close() })
		return StoreIdentity(NewRedisStore(c, prefix))
	}
	base := rs("redis://app:s3cret-pw@10.0.0.1:6379/0", "caddyoauth:")
	if base == "" || strings.Contains(base, "s3cret-pw") {
		t.Fatalf("redis identity %q: empty, or holds the password", base)
	}
	if again := rs("redis://app:other-pw@10.0.0.1:6379/0", "caddyoauth:"); again != base {
		t.Errorf("same data, another password: %q != %q", again, base)
	}
	for _, diff := range []string{
		rs("redis://app:s3cret-pw@10.0.0.2:6379/0", "caddyoauth:"),
		rs("redis://app:s3cret-pw@10.0.0.1:6380/0", "caddyoauth:"),
		rs("redis://app:s3cret-pw@10.0.0.1:6379/1", "caddyoauth:"),
		rs("redis://app:s3cret-pw@10.0.0.1:6379/0", "tenant2:"),
		rs("redis://bob:s3cret-pw@10.0.0.1:6379/0", "caddyoauth:"),
	} {
		if diff == base {
			t.Errorf("identity %q does not tell another Redis store apart", diff)
		}
	}

	a, b := t.TempDir(), t.TempDir()
	cs := func(dir, prefix string) string {
		return StoreIdentity(NewCaddyStore(&certmagic.FileStorage{Path: dir}, prefix, zap.NewNop()))
	}
	if first, again := cs(a, "oauth"), cs(a, "oauth"); first == "" || first != again {
		t.Errorf("file storage identity %q, then %q: want one, stable", first, again)
	}
	if cs(a, "oauth") == cs(b, "oauth") || cs(a, "oauth") == cs(a, "other") {
		t.Error("two storage directories or prefixes share an identity")
	}
	if id := StoreIdentity(NewCaddyStore(silentStorage{}, "oauth", zap.NewNop())); id != "" {
		t.Errorf("a storage that does not describe itself got identity %q", id)
	}
	if m1, m2 := NewMemoryStore(), NewMemoryStore(); StoreIdentity(m1) == StoreIdentity(m2) {
		t.Error("two memory stores share an identity")
	}
}

// silentStorage is a certmagic.Storage that is no fmt.Stringer.
type silentStorage struct{ certmagic.Storage }
