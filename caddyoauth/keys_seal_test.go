package caddyoauth

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthstore"
)

const (
	kekEnv = "OAUTH_TEST_KEK"
	// testKEK is 32 bytes; otherKEK another 32.
	testKEK  = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	otherKEK = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
)

// kekConfig is baseConfig with key_encryption_key read from kekEnv.
func kekConfig() *App {
	c := baseConfig()
	c.SigningKey = &SigningKeyConfig{KeyEncryptionKey: "{env." + kekEnv + "}"}
	return c
}

// storedRaw is the keyring's bytes as the store holds them.
func storedRaw(t *testing.T, storage certmagic.Storage, issuer string) string {
	t.Helper()
	b, err := storeOn(storage).Get(context.Background(), oauthstore.KeyringKey(issuer))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSigningKeysEncryptedAtRest (issue 15, item 4): with a key encryption
// key from the environment, no private key is in the store in the clear,
// the ID-token keyring included (AES-256-GCM, NIST SP 800-38D); the same
// key opens them after a restart; no key, or another key, refuses to load
// instead of minting a new keyring.
func TestSigningKeysEncryptedAtRest(t *testing.T) {
	t.Setenv(kekEnv, testKEK)
	storage := newStorage(t)
	a := provisionApp(t, kekConfig(), storage)
	if _, err := a.idKeys.get(t.Context()); err != nil {
		t.Fatal(err)
	}
	kid := a.Keyring().Active().ID
	tok := decodeTokenResponse(t, basicToken(t, newServer(t, a, ""), svcID, svcSecret, ccForm())).AccessToken
	for _, iss := range []string{testIssuer, oauthstore.IDTokenKeyring(testIssuer)} {
		raw := storedRaw(t, storage, iss)
		if strings.Contains(raw, "PRIVATE KEY") || !strings.Contains(raw, sealedPrefix) {
			t.Errorf("keyring %s holds a key in the clear:\n%s", iss, raw)
		}
	}

	again := provisionApp(t, kekConfig(), storage)
	if again.Keyring().Active().ID != kid {
		t.Fatalf("after a restart the kid is %s, want %s", again.Keyring().Active().ID, kid)
	}
	if _, err := again.Verifier().Verify(tok); err != nil {
		t.Errorf("token refused after a restart: %v", err)
	}

	before := storedRaw(t, storage, testIssuer)
	for name, setup := range map[string]func(c *App){
		"no key":      func(c *App) { c.SigningKey.KeyEncryptionKey = "" },
		"another key": func(c *App) { t.Setenv(kekEnv, otherKEK) },
	} {
		c := kekConfig()
		setup(c)
		err := c.provision(t.Context(), storage, zap.NewNop())
		if err == nil || !strings.Contains(err.Error(), "key_encryption_key") || !strings.Contains(err.Error(), kid) {
			t.Errorf("%s: provision = %v; want a refusal naming key_encryption_key and the kid", name, err)
		}
		t.Setenv(kekEnv, testKEK)
	}
	if storedRaw(t, storage, testIssuer) != before {
		t.Error("a refused load changed the stored keyring")
	}
}

// TestSigningKeysSealedAtLoad: a keyring stored in the clear before a key
// encryption key was configured is sealed at the next load, same kid.
func TestSigningKeysSealedAtLoad(t *testing.T) {
	storage := newStorage(t)
	plain := provisionApp(t, baseConfig(), storage)
	if raw := storedRaw(t, storage, testIssuer); !strings.Contains(raw, "PRIVATE KEY") {
		t.Fatalf("without a key encryption key the keyring should be PEM:\n%s", raw)
	}
	t.Setenv(kekEnv, testKEK)
	sealed := provisionApp(t, kekConfig(), storage)
	if sealed.Keyring().Active().ID != plain.Keyring().Active().ID {
		t.Error("sealing changed the kid")
	}
	if raw := storedRaw(t, storage, testIssuer); strings.Contains(raw, "PRIVATE KEY") {
		t.Errorf("still in the clear after a load with a key encryption key:\n%s", raw)
	}
}

// TestKeyEncryptionKeyRefused: a key encryption key that is not 32 bytes
// of base64, an unset variable, or one beside a PEM file is refused at
// provision with the field named.
func TestKeyEncryptionKeyRefused(t *testing.T) {
	t.Setenv("OAUTH_TEST_EMPTY", "")
	for _, tc := range []struct{ kek, file, want string }{
		{base64.StdEncoding.EncodeToString(make([]byte, 16)), "", "16 bytes, want 32"},
		{base64.StdEncoding.EncodeToString(make([]byte, 33)), "", "33 bytes, want 32"},
		{"not base64 !!", "", "not base64"},
		{"{env.OAUTH_TEST_EMPTY}", "", "empty"},
		{testKEK, "/etc/key.pem", "PEM file"},
	} {
		c := baseConfig()
		c.SigningKey = &SigningKeyConfig{KeyEncryptionKey: tc.kek, File: tc.file}
		err := c.provision(t.Context(), newStorage(t), zap.NewNop())
		if err == nil || !strings.Contains(err.Error(), "signing_key: key_encryption_key") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want an error naming signing_key: key_encryption_key and %q", tc.kek, err, tc.want)
		}
	}
}

// TestSealedKeyBoundToKid: a sealed key copied under another kid does not
// open (the kid is the AEAD's additional data).
func TestSealedKeyBoundToKid(t *testing.T) {
	kek, err := (&SigningKeyConfig{KeyEncryptionKey: testKEK}).parseKeyEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := sealKey(kek, oauthstore.StoredKey{ID: "kid-a", PrivateKey: "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n"})
	if err != nil {
		t.Fatal(err)
	}
	if pem, err := openKey(kek, s); err != nil || !strings.HasPrefix(string(pem), "-----BEGIN") {
		t.Fatalf("open = %q, %v", pem, err)
	}
	s.ID = "kid-b"
	if _, err := openKey(kek, s); err == nil {
		t.Error("a sealed key opened under another kid")
	}
}

// TestKeyEncryptionKeyCaddyfile: signing_key { key_encryption_key } keeps
// an {env.*} placeholder for provision to replace.
func TestKeyEncryptionKeyCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser("oauth {\n issuer https://a.example\n signing_key ES256 {\n key_encryption_key {env.OAUTH_KEK}\n }\n}")
	a := new(App)
	if err := a.UnmarshalCaddyfile(d); err != nil || a.SigningKey.KeyEncryptionKey != "{env.OAUTH_KEK}" {
		t.Fatalf("parsed %+v, %v", a.SigningKey, err)
	}
}
