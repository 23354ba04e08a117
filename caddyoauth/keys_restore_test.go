package caddyoauth

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddyapigw/gateway/internal/oauthstore"
)

// wipeStorage deletes everything the oauth app keeps in a file storage,
// as a lost disk or a Redis restarted empty would.
func wipeStorage(t *testing.T, storage certmagic.Storage) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(storage.(*certmagic.FileStorage).Path, storePrefix)); err != nil {
		t.Fatal(err)
	}
}

// provisionObserved provisions a on storage with a logger the test reads.
func provisionObserved(t *testing.T, a *App, storage certmagic.Storage) (*App, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	if err := a.provision(t.Context(), storage, zap.New(core)); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return a, logs
}

// TestKeyringRestoredAfterStoreWiped: the store loses its data, then the
// config is reloaded (a new app in the same process, on the same store):
// the keyring this process held is written back instead of a new one
// minted, so tokens issued before stay valid; the event is logged at
// error level with the kid, never key material, and emitted as
// key_restored (issue 15, item 4: "0 keys replaced without an admin
// action").
func TestKeyringRestoredAfterStoreWiped(t *testing.T) {
	storage := newStorage(t)
	first := provisionApp(t, baseConfig(), storage)
	kid := first.Keyring().Active().ID
	tok := decodeTokenResponse(t, basicToken(t, newServer(t, first, ""), svcID, svcSecret, ccForm())).AccessToken

	wipeStorage(t, storage)
	second, logs := provisionObserved(t, baseConfig(), storage)
	if got := second.Keyring().Active().ID; got != kid {
		t.Fatalf("after the store was wiped and the config reloaded the kid is %s, want %s (kept)", got, kid)
	}
	if _, err := second.Verifier().Verify(tok); err != nil {
		t.Errorf("a token issued before the wipe is refused: %v", err)
	}
	stored, err := second.rec.Keyrings.Get(context.Background(), testIssuer)
	if err != nil || stored.Active != kid {
		t.Errorf("the keyring was not written back into the store: %+v, %v", stored, err)
	}
	loud := logs.FilterLevelExact(zapcore.ErrorLevel).FilterMessageSnippet("lost the signing keyring").All()
	if len(loud) != 1 || loud[0].ContextMap()["active_kid"] != kid || loud[0].ContextMap()["reason"] != string(oauthstore.LossStoreEmpty) {
		t.Fatalf("want one error line naming kid %s and the reason; got %+v", kid, loud)
	}
	events := logs.FilterMessage(eventKeyRestored).All()
	if len(events) != 1 {
		t.Fatalf("want one %s audit event, got %d", eventKeyRestored, len(events))
	}
	for _, e := range logs.All() {
		line, _ := json.Marshal(e.ContextMap())
		if strings.Contains(string(line), "PRIVATE KEY") {
			t.Errorf("a log line carries key material: %s %s", e.Message, line)
		}
	}
}

// TestKeyringRefreshRestores: an instance that is not reloaded writes its
// keyring back on its next refresh, so an instance that starts later
// (holding no keys) finds it instead of minting a new one.
func TestKeyringRefreshRestores(t *testing.T) {
	storage := newStorage(t)
	a := provisionApp(t, baseConfig(), storage)
	kid := a.Keyring().Active().ID
	wipeStorage(t, storage)
	if err := a.keys.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	stored, err := a.rec.Keyrings.Get(context.Background(), testIssuer)
	if err != nil || stored.Active != kid {
		t.Fatalf("refresh did not write the keyring back: %+v, %v", stored, err)
	}
	if a.Keyring().Active().ID != kid {
		t.Errorf("refresh changed the kid to %s", a.Keyring().Active().ID)
	}
}

// TestKeyringRotateAfterWipeKeepsOldKey: an admin rotation on a store that
// lost its data starts from the keyring this instance held, so the key it
// replaces stays for verification.
func TestKeyringRotateAfterWipeKeepsOldKey(t *testing.T) {
	storage := newStorage(t)
	a := provisionApp(t, baseConfig(), storage)
	old := a.Keyring().Active().ID
	tok := decodeTokenResponse(t, basicToken(t, newServer(t, a, ""), svcID, svcSecret, ccForm())).AccessToken
	wipeStorage(t, storage)
	kid, err := a.keys.rotate(context.Background())
	if err != nil || kid == old {
		t.Fatalf("rotate = %s, %v; want a new kid", kid, err)
	}
	if _, err := a.Verifier().Verify(tok); err != nil {
		t.Errorf("the replaced key no longer verifies its tokens: %v", err)
	}
}

// TestKeyringFreshStorageNotInherited: a new config on a DIFFERENT, fresh
// storage in the same process gets a keyring of its own, never the keys
// this process holds for another store (the reason a process-wide
// keyring without a store identity was reverted).
func TestKeyringFreshStorageNotInherited(t *testing.T) {
	a := provisionApp(t, baseConfig(), newStorage(t))
	held := a.Keyring().Active().ID
	b := provisionApp(t, baseConfig(), newStorage(t))
	if b.Keyring().Active().ID == held {
		t.Fatal("a fresh storage inherited the keyring of another store")
	}
	stored, err := b.rec.Keyrings.Get(context.Background(), testIssuer)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(stored.Keys, func(k oauthstore.StoredKey) bool { return k.ID == held }) {
		t.Errorf("the fresh store holds key %s of another store", held)
	}
}
