package caddyoauth

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthstore"
)

// Revoked access tokens (RFC 7009). A JWT access token cannot be recalled,
// so its jti goes on a revocation list until the token expires; oauth_scope
// asks the list on every request. The list lives in the store
// (oauthstore.Revocations) and each instance keeps a local copy. Each
// instance reads the list's stamp every revocationRefresh and lists the
// revocations only when it changed (and every revocationRelist anyway), so
// the listing, which scans (Redis SCAN walks the whole keyspace), runs
// once per revocation rather than twice a second. A token revoked on one
// gateway is refused by every gateway sharing the store within about
// revocationRefresh; a store outage leaves the last copy in force.

const (
	revocationRefresh = 500 * time.Millisecond
	revocationRelist  = time.Minute
)

// revocationList is an instance's copy of the revoked jtis and their expiry.
type revocationList struct {
	mu       sync.RWMutex
	m        map[string]int64 // jti → exp (unix seconds)
	failed   bool             // the last refresh failed (logged once)
	stamp    string           // revocationStamp when last listed
	listedAt time.Time
}

func newRevocationList() *revocationList {
	return &revocationList{m: make(map[string]int64)}
}

func (l *revocationList) has(jti string, now time.Time) bool {
	l.mu.RLock()
	exp, ok := l.m[jti]
	l.mu.RUnlock()
	return ok && now.Unix() <= exp
}

func (l *revocationList) add(jti string, exp int64) {
	l.mu.Lock()
	l.m[jti] = exp
	l.mu.Unlock()
}

// replace swaps in a fresh listing, keeping unexpired entries the listing
// may not show yet (added while it ran). Revocations are never withdrawn,
// so keeping an entry is always right.
func (l *revocationList) replace(m map[string]int64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for jti, exp := range l.m {
		if _, ok := m[jti]; !ok && now.Unix() <= exp {
			m[jti] = exp
		}
	}
	l.m = m
}

// Revoked reports whether the access token with this jti was revoked and
// has not expired. It implements oauthjwt.Authority.
func (a *App) Revoked(jti string) bool {
	return a.revoked.has(oauthstore.SafeID(jti), time.Now())
}

// revokeAccessToken puts a token on the revocation list until exp (plus
// the verification leeway, during which it would still be accepted).
func (a *App) revokeAccessToken(ctx context.Context, jti string, exp time.Time) error {
	until := exp.Add(a.leeway())
	if !until.After(a.clock()) {
		return nil
	}
	if err := a.rec.Revocations.Add(ctx, jti, until); err != nil {
		return err
	}
	a.revoked.add(oauthstore.SafeID(jti), until.Unix())
	// Tell the other instances; if this fails they still find the entry
	// at their next periodic listing.
	if err := a.rec.Revocations.Announce(ctx); err != nil {
		a.logger.Warn("announcing a revocation failed; other instances see it within a minute", zap.Error(err))
	}
	return nil
}

// revokeFamily ends a refresh-token family and its access tokens. Failures
// are logged: the callers are already answering something else.
func (a *App) revokeFamily(ctx context.Context, id string) {
	refs, err := a.rec.Families.Revoke(ctx, id)
	if err != nil {
		a.logger.Error("revoking a refresh token family failed", zap.Error(err))
	}
	for _, ref := range refs {
		if err := a.revokeAccessToken(ctx, ref.JTI, time.Unix(ref.Exp, 0)); err != nil {
			a.logger.Error("revoking a family's access token failed", zap.Error(err))
		}
	}
}

// refreshRevocationsIfChanged lists the revocations when the stamp moved
// or the last listing is older than revocationRelist.
func (a *App) refreshRevocationsIfChanged(ctx context.Context) error {
	stamp, err := a.rec.Revocations.Stamp(ctx)
	if err != nil {
		return err
	}
	a.revoked.mu.RLock()
	same := stamp == a.revoked.stamp && time.Since(a.revoked.listedAt) < revocationRelist
	a.revoked.mu.RUnlock()
	if same {
		return nil
	}
	if err := a.refreshRevocations(ctx); err != nil {
		return err
	}
	a.revoked.mu.Lock()
	a.revoked.stamp, a.revoked.listedAt = stamp, time.Now()
	a.revoked.mu.Unlock()
	return nil
}

// refreshRevocations re-reads the revocation list from the store.
func (a *App) refreshRevocations(ctx context.Context) error {
	m, err := a.rec.Revocations.List(ctx)
	if err != nil {
		return err
	}
	a.revoked.replace(m, a.clock())
	return nil
}

// refreshRevocationsOnce is one turn of the loop that keeps the local
// revocation list in step with the store. On failure it keeps the last
// list and logs once per outage.
func (a *App) refreshRevocationsOnce() {
	rctx, cancel := context.WithTimeout(a.ctx, clientStoreTimeout)
	err := a.refreshRevocationsIfChanged(rctx)
	cancel()
	a.revoked.mu.Lock()
	was := a.revoked.failed
	a.revoked.failed = err != nil
	a.revoked.mu.Unlock()
	switch {
	case err != nil && !was:
		a.logger.Warn("reading the revocation list from the store failed; keeping the last one", zap.Error(err))
	case err == nil && was:
		a.logger.Info("revocation list read from the store again")
	}
}

// clientRevokedSince reports whether an administrator revoked the client's
// tokens at or after the unix time t (a sign-in, a code, a consent).
func (a *App) clientRevokedSince(ctx context.Context, clientID string, t int64) (bool, error) {
	_, revokedBefore, ok, err := a.lookupClient(ctx, clientID)
	if err != nil {
		return false, err
	}
	return ok && !revokedBefore.IsZero() && t <= revokedBefore.Unix(), nil
}
