package caddyoauth

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Automatic signing-key rotation. With signing_key … { rotate_every <d> },
// every instance checks now and then whether the active key is older than
// d; the first to find it so rotates under the keyring's store lock
// (re-reading first, so two instances never rotate twice), and the others
// pick the new key up from the store. The replaced key stays in the JWKS
// until every token it signed has expired.

// minRotateEvery is the shortest automatic rotation period: a key must
// outlive the longest token lifetime, or the keyring would keep growing.
const minRotateEvery = maxAccessTokenTTL + maxLeeway

// rotationCheckInterval is how often an instance checks the key's age.
func rotationCheckInterval(every time.Duration) time.Duration {
	return min(every/10, 10*time.Minute)
}

// checkRotateEvery validates the rotation period.
func (k *SigningKeyConfig) checkRotateEvery() error {
	every := time.Duration(k.RotateEvery)
	switch {
	case every == 0:
		return nil
	case k.File != "":
		return fmt.Errorf("rotate_every: the key comes from %s; rotate it by changing the file", k.File)
	case every < minRotateEvery:
		return fmt.Errorf("rotate_every: %s is shorter than the longest token lifetime plus leeway (%s)", every, minRotateEvery)
	}
	return nil
}

// rotateIfDue rotates the signing key if the active one is older than the
// configured period, and reports whether it did.
func (k *signingKeys) rotateIfDue(ctx context.Context, now time.Time) (bool, error) {
	every := time.Duration(k.cfg.RotateEvery)
	// due reports whether the active key is old enough, and which it is.
	due := func() (bool, string, error) {
		sk, err := k.stored(ctx)
		if err != nil || sk == nil {
			return false, "", err
		}
		for _, k := range sk.Keys {
			if k.ID == sk.Active {
				return now.Sub(k.Created) >= every, k.ID, nil
			}
		}
		return false, "", nil
	}
	ok, kid, err := due()
	if err != nil || !ok {
		return false, err
	}
	unlock, err := k.rings.Lock(ctx, k.issuer)
	if err != nil {
		return false, err
	}
	defer unlock()
	// Another instance may have rotated while this one waited for the lock.
	if ok, again, err := due(); err != nil || !ok || again != kid {
		return false, err
	}
	kr, err := k.rotateLocked(ctx, k.cfg.Algorithm)
	if err != nil {
		return false, err
	}
	k.current.Store(kr)
	k.countRotation(rotateSchedule)
	k.logger.Info("signing key rotated on schedule", zap.String("active_kid", kr.Active().ID), zap.Duration("rotate_every", every))
	if k.rotated != nil {
		k.rotated(kr.Active().ID, "schedule")
	}
	return true, nil
}

// rotateOnce is one turn of the scheduled rotation loop.
func (k *signingKeys) rotateOnce(ctx context.Context) {
	if _, err := k.rotateIfDue(ctx, k.clock()); err != nil {
		k.logger.Warn("scheduled key rotation failed; will retry", zap.Error(err))
	}
}
