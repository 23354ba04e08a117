package caddyoauth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"github.com/caddyapigw/gateway/internal/oauthstore"
)

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

	if kr, ok, err := a.readKeyring(ctx, alg); err != nil || ok {
		return kr, err
	}
	unlock, err := a.rec.Keyrings.Lock(ctx, a.Issuer)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Another instance may have created it while we waited for the lock.
	if kr, ok, err := a.readKeyring(ctx, alg); err != nil || ok {
		return kr, err
	}
	return a.rotateKeyring(ctx, alg)
}

// readKeyring loads the stored keyring; ok is false when there is none or
// its active key does not use alg (any algorithm when alg is empty).
func (a *App) readKeyring(ctx context.Context, alg string) (*oauthjwt.Keyring, bool, error) {
	sk, err := a.storedKeyring(ctx)
	if err != nil || sk == nil {
		return nil, false, err
	}
	active, others, err := decodeStoredKeys(sk, a.clock())
	if err != nil {
		return nil, false, err
	}
	if active == nil || (alg != "" && active.Alg != alg) {
		return nil, false, nil
	}
	kr, err := oauthjwt.NewKeyring(active, others...)
	return kr, err == nil, err
}

// storedKeyring reads the issuer's keyring: nil without an error when
// there is none.
func (a *App) storedKeyring(ctx context.Context) (*oauthstore.StoredKeyring, error) {
	sk, err := a.rec.Keyrings.Get(ctx, a.Issuer)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return sk, err
}

// rotateKeyring generates a new active key for alg, keeps the previous keys
// for verification until their tokens expire, and saves the result. The
// caller holds the keyring lock.
func (a *App) rotateKeyring(ctx context.Context, alg string) (*oauthjwt.Keyring, error) {
	now := a.clock()
	sk, err := a.storedKeyring(ctx)
	if err != nil {
		return nil, err
	}
	if sk == nil {
		sk = new(oauthstore.StoredKeyring)
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
	kept := []oauthstore.StoredKey{{ID: nk.ID, Algorithm: alg, PrivateKey: string(pemBytes), Created: now}}
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
	if err := a.rec.Keyrings.Put(ctx, a.Issuer, sk); err != nil {
		return nil, err
	}
	a.logger.Info("generated signing key", zap.String("kid", nk.ID), zap.String("alg", alg), zap.String("store_key", oauthstore.KeyringKey(a.Issuer)))
	active, others, err := decodeStoredKeys(sk, now)
	if err != nil {
		return nil, err
	}
	return oauthjwt.NewKeyring(active, others...)
}

// decodeStoredKeys parses stored keys, dropping those past RetireAt.
func decodeStoredKeys(sk *oauthstore.StoredKeyring, now time.Time) (active *oauthjwt.Key, others []*oauthjwt.Key, err error) {
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

// refreshKeyringOnce is one turn of the keyring refresh loop, so an
// instance starts signing with a key another instance rotated in.
func (a *App) refreshKeyringOnce() {
	if err := a.refreshKeyring(a.ctx); err != nil {
		a.logger.Warn("refreshing the keyring from the store", zap.Error(err))
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
	kr, ok, err := a.readKeyring(ctx, "")
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
	unlock, err := a.rec.Keyrings.Lock(ctx, a.Issuer)
	if err != nil {
		return "", err
	}
	defer unlock()
	kr, err := a.rotateKeyring(ctx, a.SigningKey.Algorithm)
	if err != nil {
		return "", err
	}
	a.keys.Store(kr)
	return kr.Active().ID, nil
}
