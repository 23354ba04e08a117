package caddyoauth

import (
	"context"

	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthstore"
)

// Signing keys never change because a store lost them (issue 15, item 4).
// When the store holds no keyring but this process kept one in the same
// store (oauthstore.Keyrings.Lost: same store identity, and its marker
// missing or ours), the keyring is written back under the keyring lock
// instead of a new one being minted, and the event is logged at error
// level and emitted as key_restored. A store this process never kept a
// keyring in (a fresh one, or a different one) gets a new keyring as on
// first start.

// storedOrRestored reads the stored keyring and, when there is none,
// writes back the one this process held in this store, if any. It returns
// nil without an error when there is neither. The caller holds the
// keyring lock.
func (k *signingKeys) storedOrRestored(ctx context.Context) (*oauthstore.StoredKeyring, error) {
	sk, err := k.stored(ctx)
	if err != nil || sk != nil {
		return sk, err
	}
	lost, why, err := k.rings.Lost(ctx, k.issuer)
	if err != nil || lost == nil {
		return nil, err
	}
	if err := k.rings.Restore(ctx, k.issuer, lost); err != nil {
		return nil, err
	}
	kids := make([]string, len(lost.Keys))
	for i, key := range lost.Keys {
		kids[i] = key.ID
	}
	k.logger.Error("the store lost the signing keyring; wrote back the keyring this instance held instead of making a new one",
		zap.String("reason", string(why)),
		zap.String("active_kid", lost.Active),
		zap.Strings("kids", kids),
		zap.String("store_key", oauthstore.KeyringKey(k.issuer)))
	if k.restored != nil {
		k.restored(kids, string(why))
	}
	return lost, nil
}

// restoreIfLost is the refresh loop's turn of storedOrRestored: it takes
// the keyring lock only when the store holds no keyring.
func (k *signingKeys) restoreIfLost(ctx context.Context) error {
	if k.cfg.File != "" {
		return nil
	}
	if lost, _, err := k.rings.Lost(ctx, k.issuer); err != nil || lost == nil {
		return err
	}
	unlock, err := k.rings.Lock(ctx, k.issuer)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = k.storedOrRestored(ctx)
	return err
}

// keysRestored emits key_restored for a keyring written back.
func (a *App) keysRestored(kids []string, reason string) {
	a.audit.emit(nil, eventKeyRestored, map[string]any{"kids": kids, "reason": reason})
}
