package caddyoauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthstore"
)

// Signing keys at rest. Without a key encryption key a stored keyring
// holds its private keys as PEM, readable by whoever can read the store
// (the storage directory, the Redis database). With signing_key {
// key_encryption_key <base64 of 32 bytes> } (a placeholder such as
// {env.OAUTH_KEK} keeps it out of the config), every private key this
// instance writes is sealed with AES-256-GCM (NIST SP 800-38D): a random
// 96-bit nonce per key, the kid as additional data, so a sealed key moved
// under another kid does not open. Keys found in plaintext are sealed at
// load. A sealed keyring that does not open (no key encryption key, or
// another one) refuses the config: minting a new keyring instead would
// silently invalidate every token.

// sealedPrefix starts a sealed private key in StoredKey.PrivateKey; a PEM
// key starts with "-----BEGIN".
const sealedPrefix = "aes256gcm:"

// keyEncryptionKeyLen is the length of an AES-256 key.
const keyEncryptionKeyLen = 32

// parseKeyEncryptionKey reads key_encryption_key, placeholders replaced;
// nil when none is configured.
func (k *SigningKeyConfig) parseKeyEncryptionKey() (cipher.AEAD, error) {
	if k.KeyEncryptionKey == "" {
		return nil, nil
	}
	if k.File != "" {
		return nil, errors.New("key_encryption_key: the key comes from a PEM file, which is not kept in the store")
	}
	raw := strings.TrimSpace(caddy.NewReplacer().ReplaceKnown(k.KeyEncryptionKey, ""))
	if raw == "" {
		return nil, errors.New("key_encryption_key: empty (is the environment variable set?)")
	}
	var key []byte
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(raw); err == nil {
			key = b
			break
		}
	}
	if key == nil {
		return nil, errors.New("key_encryption_key: not base64 (make one with: openssl rand -base64 32)")
	}
	if len(key) != keyEncryptionKeyLen {
		return nil, fmt.Errorf("key_encryption_key: %d bytes, want %d (make one with: openssl rand -base64 32)", len(key), keyEncryptionKeyLen)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("key_encryption_key: %v", err)
	}
	return cipher.NewGCM(block)
}

// sealKey returns s with its private key sealed; s unchanged without kek
// or when it is sealed already.
func sealKey(kek cipher.AEAD, s oauthstore.StoredKey) (oauthstore.StoredKey, error) {
	if kek == nil || strings.HasPrefix(s.PrivateKey, sealedPrefix) {
		return s, nil
	}
	nonce := make([]byte, kek.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return s, err
	}
	sealed := kek.Seal(nonce, nonce, []byte(s.PrivateKey), []byte(s.ID))
	s.PrivateKey = sealedPrefix + base64.RawStdEncoding.EncodeToString(sealed)
	return s, nil
}

// openKey returns the PEM of s's private key, opening it with kek if it
// is sealed.
func openKey(kek cipher.AEAD, s oauthstore.StoredKey) ([]byte, error) {
	b64, sealed := strings.CutPrefix(s.PrivateKey, sealedPrefix)
	if !sealed {
		return []byte(s.PrivateKey), nil
	}
	if kek == nil {
		return nil, errors.New("the key is encrypted and no key_encryption_key is configured")
	}
	b, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(b) < kek.NonceSize() {
		return nil, errors.New("the encrypted key is corrupt")
	}
	pem, err := kek.Open(nil, b[:kek.NonceSize()], b[kek.NonceSize():], []byte(s.ID))
	if err != nil {
		return nil, errors.New("the key does not decrypt with the configured key_encryption_key")
	}
	return pem, nil
}

// hasPlaintextKey reports whether sk holds a private key in the clear.
func hasPlaintextKey(sk *oauthstore.StoredKeyring) bool {
	for _, s := range sk.Keys {
		if !strings.HasPrefix(s.PrivateKey, sealedPrefix) {
			return true
		}
	}
	return false
}

// sealKeyring seals every private key of sk in place.
func sealKeyring(kek cipher.AEAD, sk *oauthstore.StoredKeyring) error {
	for i, s := range sk.Keys {
		sealed, err := sealKey(kek, s)
		if err != nil {
			return err
		}
		sk.Keys[i] = sealed
	}
	return nil
}

// sealPlaintext seals, under the keyring lock, the private keys of the
// stored keyring that are in the clear.
func (k *signingKeys) sealPlaintext(ctx context.Context) error {
	if sk, err := k.stored(ctx); err != nil || sk == nil || !hasPlaintextKey(sk) {
		return err
	}
	unlock, err := k.rings.Lock(ctx, k.issuer)
	if err != nil {
		return err
	}
	defer unlock()
	sk, err := k.stored(ctx)
	if err != nil || sk == nil || !hasPlaintextKey(sk) {
		return err
	}
	if err := sealKeyring(k.kek, sk); err != nil {
		return err
	}
	if err := k.rings.Put(ctx, k.issuer, sk); err != nil {
		return err
	}
	k.logger.Info("encrypted the stored signing keys with the key_encryption_key", zap.Int("keys", len(sk.Keys)), zap.String("store_key", oauthstore.KeyringKey(k.issuer)))
	return nil
}
