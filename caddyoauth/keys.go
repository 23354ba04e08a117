package caddyoauth

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"github.com/caddyapigw/gateway/internal/oauthstore"
)

// signingKeys keeps the issuer's signing keyring: loaded at provision,
// re-read from the store where another instance may have rotated it, and
// rotated under the keyring's store lock. Its current keyring signs every
// access token; a swap is seen by the verifier at once.
type signingKeys struct {
	issuer string
	cfg    *SigningKeyConfig
	rings  oauthstore.Keyrings
	clock  func() time.Time
	logger *zap.Logger
	// rotated reports a rotation this instance made on schedule (nil: none)
	rotated func(kid, reason string)
	// kind is the key label of the rotation count: keyAccessToken (when
	// empty) or keyIDToken
	kind string

	// activeCreated is when the active key was made (Unix seconds; for a
	// key file, its modification time), for oauth_signing_key_age_seconds
	activeCreated atomic.Int64
	// restored reports a keyring this instance wrote back into a store
	// that had lost it (nil: none)
	restored func(kids []string, reason string)
	// kek seals the private keys this instance writes (keys_seal.go);
	// nil: they are stored in the clear
	kek cipher.AEAD

	current       atomic.Pointer[oauthjwt.Keyring]
	lastRefreshNs atomic.Int64 // last read prompted by an unknown kid
}

// load returns the keyring to sign and verify with. A key from a PEM
// file is used as it is. Otherwise the keyring is read from storage and, if
// it is missing or its active key uses another algorithm than configured, a
// new key is generated under a storage lock, so instances sharing storage
// agree on one keyring. A replaced key stays for verification until the
// tokens it signed have expired.
func (k *signingKeys) load(ctx context.Context) (*oauthjwt.Keyring, error) {
	kr, err := k.loadOrCreate(ctx)
	if err != nil || k.kek == nil {
		return kr, err
	}
	return kr, k.sealPlaintext(ctx)
}

// loadOrCreate is load before keys found in the clear are sealed.
func (k *signingKeys) loadOrCreate(ctx context.Context) (*oauthjwt.Keyring, error) {
	alg := k.cfg.Algorithm
	if k.cfg.File != "" {
		data, err := os.ReadFile(k.cfg.File)
		if err != nil {
			return nil, err
		}
		key, err := oauthjwt.ParsePrivateKeyPEM(alg, data)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k.cfg.File, err)
		}
		if fi, err := os.Stat(k.cfg.File); err == nil {
			k.activeCreated.Store(fi.ModTime().Unix())
		}
		return oauthjwt.NewKeyring(key)
	}
	if err := oauthjwt.CheckAlg(alg); err != nil {
		return nil, err
	}

	if kr, ok, err := k.read(ctx, alg); err != nil || ok {
		return kr, err
	}
	unlock, err := k.rings.Lock(ctx, k.issuer)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Another instance may have created it while we waited for the lock;
	// or the store lost the keyring this process held, which is written
	// back rather than replaced (keys_restore.go).
	sk, err := k.storedOrRestored(ctx)
	if err != nil {
		return nil, err
	}
	if sk != nil {
		active, others, err := decodeStoredKeys(k.kek, sk, k.clock())
		if err != nil {
			return nil, err
		}
		if active != nil && active.Alg == alg {
			return oauthjwt.NewKeyring(active, others...)
		}
	}
	return k.rotateLocked(ctx, alg)
}

// readKeyring loads the stored keyring; ok is false when there is none or
// its active key does not use alg (any algorithm when alg is empty).
func (k *signingKeys) read(ctx context.Context, alg string) (*oauthjwt.Keyring, bool, error) {
	sk, err := k.stored(ctx)
	if err != nil || sk == nil {
		return nil, false, err
	}
	active, others, err := decodeStoredKeys(k.kek, sk, k.clock())
	if err != nil {
		return nil, false, err
	}
	if active == nil || (alg != "" && active.Alg != alg) {
		return nil, false, nil
	}
	kr, err := oauthjwt.NewKeyring(active, others...)
	if err == nil {
		k.noteCreated(sk)
	}
	return kr, err == nil, err
}

// storedKeyring reads the issuer's keyring: nil without an error when
// there is none.
func (k *signingKeys) stored(ctx context.Context) (*oauthstore.StoredKeyring, error) {
	sk, err := k.rings.Get(ctx, k.issuer)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return sk, err
}

// rotateKeyring generates a new active key for alg, keeps the previous keys
// for verification until their tokens expire, and saves the result. The
// caller holds the keyring lock.
func (k *signingKeys) rotateLocked(ctx context.Context, alg string) (*oauthjwt.Keyring, error) {
	now := k.clock()
	sk, err := k.storedOrRestored(ctx)
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
	fresh, err := sealKey(k.kek, oauthstore.StoredKey{ID: nk.ID, Algorithm: alg, PrivateKey: string(pemBytes), Created: now})
	if err != nil {
		return nil, err
	}
	kept := []oauthstore.StoredKey{fresh}
	for _, old := range sk.Keys {
		if old.ID == sk.Active && old.RetireAt.IsZero() {
			old.RetireAt = retire
		}
		if !old.RetireAt.IsZero() && now.After(old.RetireAt) {
			continue
		}
		if old, err = sealKey(k.kek, old); err != nil {
			return nil, err
		}
		kept = append(kept, old)
	}
	sk.Active, sk.Keys = nk.ID, kept
	if err := k.rings.Put(ctx, k.issuer, sk); err != nil {
		return nil, err
	}
	k.logger.Info("generated signing key", zap.String("kid", nk.ID), zap.String("alg", alg), zap.String("store_key", oauthstore.KeyringKey(k.issuer)))
	active, others, err := decodeStoredKeys(k.kek, sk, now)
	if err != nil {
		return nil, err
	}
	k.noteCreated(sk)
	return oauthjwt.NewKeyring(active, others...)
}

// noteCreated records when sk's active key was made.
func (k *signingKeys) noteCreated(sk *oauthstore.StoredKeyring) {
	for _, s := range sk.Keys {
		if s.ID == sk.Active && !s.Created.IsZero() {
			k.activeCreated.Store(s.Created.Unix())
		}
	}
}

// countRotation counts a rotation this instance made.
func (k *signingKeys) countRotation(trigger string) {
	kind := k.kind
	if kind == "" {
		kind = keyAccessToken
	}
	keyRotations.WithLabelValues(kind, trigger).Inc()
}

// decodeStoredKeys parses stored keys, opening sealed ones with kek,
// dropping those past RetireAt.
func decodeStoredKeys(kek cipher.AEAD, sk *oauthstore.StoredKeyring, now time.Time) (active *oauthjwt.Key, others []*oauthjwt.Key, err error) {
	for _, s := range sk.Keys {
		if !s.RetireAt.IsZero() && now.After(s.RetireAt) {
			continue
		}
		pem, err := openKey(kek, s)
		if err != nil {
			return nil, nil, fmt.Errorf("stored key %s: %v", s.ID, err)
		}
		k, err := oauthjwt.ParsePrivateKeyPEM(s.Algorithm, pem)
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
func (k *signingKeys) refreshOnce(ctx context.Context) {
	if err := k.refresh(ctx); err != nil {
		k.logger.Warn("refreshing the keyring from the store", zap.Error(err))
	}
}

// refreshOnMiss re-reads the keyring unless that was done recently, and
// reports whether it did.
func (k *signingKeys) refreshOnMiss() bool {
	if k.cfg.File != "" {
		return false
	}
	now := time.Now().UnixNano()
	last := k.lastRefreshNs.Load()
	if now-last < int64(keyringMissRefresh) || !k.lastRefreshNs.CompareAndSwap(last, now) {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := k.refresh(ctx); err != nil {
		k.logger.Warn("refreshing the keyring after an unknown kid", zap.Error(err))
		return false
	}
	return true
}

// refreshKeyring replaces the in-memory keyring with the stored one when
// that differs. An unreadable stored keyring keeps the current one; a
// missing one too, and the keyring this process held is written back
// (keys_restore.go), so a store that lost its data is healed before an
// instance that holds no keys mints new ones.
func (k *signingKeys) refresh(ctx context.Context) error {
	kr, ok, err := k.read(ctx, "")
	if err != nil {
		return err
	}
	if !ok {
		return k.restoreIfLost(ctx)
	}
	cur := k.current.Load()
	if cur.Active().ID == kr.Active().ID && len(cur.Keys()) == len(kr.Keys()) {
		return nil
	}
	k.current.Store(kr)
	k.logger.Info("signing keyring updated from the store", zap.String("active_kid", kr.Active().ID), zap.Int("keys", len(kr.Keys())))
	return nil
}

// errKeyFromFile reports a rotation asked of a keyring read from a file.
var errKeyFromFile = errors.New("the signing key comes from a PEM file: rotate it by changing the file and reloading")

// rotate makes a new active signing key, keeps the previous ones
// for verification until the tokens they signed have expired, saves the
// keyring in the store for every instance, and returns the new kid.
func (k *signingKeys) rotate(ctx context.Context) (string, error) {
	if k.cfg.File != "" {
		return "", errKeyFromFile
	}
	unlock, err := k.rings.Lock(ctx, k.issuer)
	if err != nil {
		return "", err
	}
	defer unlock()
	kr, err := k.rotateLocked(ctx, k.cfg.Algorithm)
	if err != nil {
		return "", err
	}
	k.current.Store(kr)
	k.countRotation(rotateAdmin)
	return kr.Active().ID, nil
}
