package caddyoauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// storedKeyring is the keyring as kept in Caddy storage.
type storedKeyring struct {
	Active string      `json:"active"`
	Keys   []storedKey `json:"keys"`
}

type storedKey struct {
	ID         string    `json:"kid"`
	Algorithm  string    `json:"alg"`
	PrivateKey string    `json:"private_key_pem"`
	Created    time.Time `json:"created"`
	// RetireAt is when a key that no longer signs may be dropped: the
	// moment the last token it signed has expired.
	RetireAt time.Time `json:"retire_at,omitzero"`
}

// keyringStoreKey is where the issuer's keyring lives in the Store: under a
// readable form of the issuer plus a digest of its exact text, since the
// readable form folds case and drops characters (two issuers must never
// share a keyring). With the default store it is the file
// oauth/issuers/<name>/keyring.json in Caddy storage.
func keyringStoreKey(issuer string) string {
	return path.Join("issuers", issuerStorageName(issuer), "keyring.json")
}

// keyringLockName is the store lock under which the issuer's keyring is
// created or rotated.
func keyringLockName(issuer string) string { return "keyring-" + issuerStorageName(issuer) }

func issuerStorageName(issuer string) string {
	sum := sha256.Sum256([]byte(issuer))
	return certmagic.StorageKeys.Safe(issuer) + "-" + hex.EncodeToString(sum[:8])
}

// loadKeyring returns the keyring to sign and verify with. A key from a PEM
// file is used as it is. Otherwise the keyring is read from storage and, if
// it is missing or its active key uses another algorithm than configured, a
// new key is generated under a storage lock, so instances sharing storage
// agree on one keyring. A replaced key stays for verification until the
// tokens it signed have expired.
func (a *App) loadKeyring(ctx context.Context) (*oauthjwt.Keyring, error) {
	alg := a.SigningKey.Algorithm
	if a.SigningKey.File != "" {
		data, err := os.ReadFile(a.SigningKey.File)
		if err != nil {
			return nil, err
		}
		k, err := oauthjwt.ParsePrivateKeyPEM(alg, data)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", a.SigningKey.File, err)
		}
		return oauthjwt.NewKeyring(k)
	}
	if err := oauthjwt.CheckAlg(alg); err != nil {
		return nil, err
	}

	key := keyringStoreKey(a.Issuer)
	if kr, ok, err := a.readKeyring(ctx, key, alg); err != nil || ok {
		return kr, err
	}
	unlock, err := storeLock(ctx, a.store, keyringLockName(a.Issuer))
	if err != nil {
		return nil, fmt.Errorf("locking the keyring: %v", err)
	}
	defer unlock()
	// Another instance may have created it while we waited for the lock.
	if kr, ok, err := a.readKeyring(ctx, key, alg); err != nil || ok {
		return kr, err
	}
	return a.rotateKeyring(ctx, key, alg)
}

// readKeyring loads the stored keyring; ok is false when there is none or
// its active key does not use alg (any algorithm when alg is empty).
func (a *App) readKeyring(ctx context.Context, key, alg string) (*oauthjwt.Keyring, bool, error) {
	sk, err := a.readStoredKeyring(ctx, key)
	if err != nil || sk == nil {
		return nil, false, err
	}
	active, others, err := decodeStoredKeys(sk, time.Now())
	if err != nil {
		return nil, false, err
	}
	if active == nil || (alg != "" && active.Alg != alg) {
		return nil, false, nil
	}
	kr, err := oauthjwt.NewKeyring(active, others...)
	return kr, err == nil, err
}

func (a *App) readStoredKeyring(ctx context.Context, key string) (*storedKeyring, error) {
	data, err := a.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("loading keyring from the store: %v", err)
	}
	var sk storedKeyring
	if err := json.Unmarshal(data, &sk); err != nil {
		// A corrupt keyring must not be silently replaced: tokens signed
		// with it would all fail. Refuse to start and say where it is.
		return nil, fmt.Errorf("keyring in the store at %s is corrupt: %v", key, err)
	}
	return &sk, nil
}

// rotateKeyring generates a new active key for alg, keeps the previous keys
// for verification until their tokens expire, and saves the result.
func (a *App) rotateKeyring(ctx context.Context, key, alg string) (*oauthjwt.Keyring, error) {
	now := time.Now()
	sk, err := a.readStoredKeyring(ctx, key)
	if err != nil {
		return nil, err
	}
	if sk == nil {
		sk = new(storedKeyring)
	}
	nk, err := oauthjwt.GenerateKey(alg)
	if err != nil {
		return nil, err
	}
	pemBytes, err := nk.MarshalPrivateKeyPEM()
	if err != nil {
		return nil, err
	}
	// Keep the replaced key for the longest lifetime any configuration can
	// give a token, not the current one: the TTL may have been shortened
	// in the same reload, while tokens signed before still live.
	retire := now.Add(maxAccessTokenTTL + maxLeeway)
	kept := []storedKey{{ID: nk.ID, Algorithm: alg, PrivateKey: string(pemBytes), Created: now}}
	for _, old := range sk.Keys {
		if old.ID == sk.Active && old.RetireAt.IsZero() {
			old.RetireAt = retire
		}
		if !old.RetireAt.IsZero() && now.After(old.RetireAt) {
			continue
		}
		kept = append(kept, old)
	}
	sk.Active, sk.Keys = nk.ID, kept
	data, err := json.MarshalIndent(sk, "", "\t")
	if err != nil {
		return nil, err
	}
	if err := a.store.Put(ctx, key, data, 0); err != nil {
		return nil, fmt.Errorf("saving keyring to the store: %v", err)
	}
	a.logger.Info("generated signing key", zap.String("kid", nk.ID), zap.String("alg", alg), zap.String("store_key", key))
	active, others, err := decodeStoredKeys(sk, now)
	if err != nil {
		return nil, err
	}
	return oauthjwt.NewKeyring(active, others...)
}

// decodeStoredKeys parses stored keys, dropping those past RetireAt.
func decodeStoredKeys(sk *storedKeyring, now time.Time) (active *oauthjwt.Key, others []*oauthjwt.Key, err error) {
	for _, s := range sk.Keys {
		if !s.RetireAt.IsZero() && now.After(s.RetireAt) {
			continue
		}
		k, err := oauthjwt.ParsePrivateKeyPEM(s.Algorithm, []byte(s.PrivateKey))
		if err != nil {
			return nil, nil, fmt.Errorf("stored key %s: %v", s.ID, err)
		}
		if k.ID != s.ID {
			return nil, nil, fmt.Errorf("stored key %s: kid does not match the key (%s)", s.ID, k.ID)
		}
		if s.ID == sk.Active {
			active = k
		} else {
			others = append(others, k)
		}
	}
	return active, others, nil
}

// Keyring refresh: how often an instance re-reads the keyring on its own,
// and how often at most an unknown kid may prompt a read.
var (
	keyringRefreshInterval = 30 * time.Second
	keyringMissRefresh     = 5 * time.Second
)

// refreshKeyringLoop re-reads the keyring periodically until ctx ends, so
// an instance starts signing with a key another instance rotated in.
func (a *App) refreshKeyringLoop(ctx context.Context) {
	a.every(ctx, keyringRefreshInterval, "keyring refresh", func() {
		if err := a.refreshKeyring(ctx); err != nil {
			a.logger.Warn("refreshing the keyring from the store", zap.Error(err))
		}
	})
}

// every runs fn every interval until ctx ends; a panic in fn is logged
// and ends the loop rather than the process.
func (a *App) every(ctx context.Context, interval time.Duration, what string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			a.logger.Error(what+" panicked", zap.Any("panic", r))
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// refreshOnMiss re-reads the keyring unless that was done recently, and
// reports whether it did.
func (a *App) refreshOnMiss() bool {
	if a.SigningKey.File != "" {
		return false
	}
	now := time.Now().UnixNano()
	last := a.lastRefreshNs.Load()
	if now-last < int64(keyringMissRefresh) || !a.lastRefreshNs.CompareAndSwap(last, now) {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a.refreshKeyring(ctx); err != nil {
		a.logger.Warn("refreshing the keyring after an unknown kid", zap.Error(err))
		return false
	}
	return true
}

// refreshKeyring replaces the in-memory keyring with the stored one when
// that differs. A missing or unreadable stored keyring keeps the current one.
func (a *App) refreshKeyring(ctx context.Context) error {
	kr, ok, err := a.readKeyring(ctx, keyringStoreKey(a.Issuer), "")
	if err != nil || !ok {
		return err
	}
	cur := a.keys.Load()
	if cur.Active().ID == kr.Active().ID && len(cur.Keys()) == len(kr.Keys()) {
		return nil
	}
	a.keys.Store(kr)
	a.logger.Info("signing keyring updated from the store", zap.String("active_kid", kr.Active().ID), zap.Int("keys", len(kr.Keys())))
	return nil
}

// errKeyFromFile reports a rotation asked of a keyring read from a file.
var errKeyFromFile = errors.New("the signing key comes from a PEM file: rotate it by changing the file and reloading")

// RotateSigningKey makes a new active signing key, keeps the previous ones
// for verification until the tokens they signed have expired, saves the
// keyring in the store for every instance, and returns the new kid.
func (a *App) RotateSigningKey(ctx context.Context) (string, error) {
	if a.SigningKey.File != "" {
		return "", errKeyFromFile
	}
	unlock, err := storeLock(ctx, a.store, keyringLockName(a.Issuer))
	if err != nil {
		return "", fmt.Errorf("locking the keyring: %v", err)
	}
	defer unlock()
	kr, err := a.rotateKeyring(ctx, keyringStoreKey(a.Issuer), a.SigningKey.Algorithm)
	if err != nil {
		return "", err
	}
	a.keys.Store(kr)
	return kr.Active().ID, nil
}
