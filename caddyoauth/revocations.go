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

// revocationList is an instance's copy of the revoked jtis and their
// expiry, kept in step with the store.
type revocationList struct {
	store  oauthstore.Revocations
	clock  func() time.Time
	logger *zap.Logger

	mu       sync.RWMutex
	m        map[string]int64 // jti → exp (unix seconds)
	failed   bool             // the last refresh failed (logged once)
	stamp    string           // the store's stamp when last listed
	listedAt time.Time
}

func newRevocationList(store oauthstore.Revocations, clock func() time.Time, logger *zap.Logger) *revocationList {
	return &revocationList{store: store, clock: clock, logger: logger, m: make(map[string]int64)}
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
	return a.revoked.has(oauthstore.SafeID(jti), a.clock())
}

// revokeAccessToken puts a token on the revocation list until exp (plus
// the verification leeway, during which it would still be accepted).
func (a *App) revokeAccessToken(ctx context.Context, jti string, exp time.Time) error {
	return a.revoked.revoke(ctx, jti, exp.Add(a.leeway()))
}

// revoke puts jti on the list, in the store and here, until until, and
// tells the other instances.
func (l *revocationList) revoke(ctx context.Context, jti string, until time.Time) error {
	if !until.After(l.clock()) {
		return nil
	}
	if err := l.store.Add(ctx, jti, until); err != nil {
		return err
	}
	l.add(oauthstore.SafeID(jti), until.Unix())
	// If this fails the others still find the entry at their next
	// periodic listing.
	if err := l.store.Announce(ctx); err != nil {
		l.logger.Warn("announcing a revocation failed; other instances see it within a minute", zap.Error(err))
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

// refreshIfChanged lists the revocations when the stamp moved
// or the last listing is older than revocationRelist.
func (l *revocationList) refreshIfChanged(ctx context.Context) error {
	stamp, err := l.store.Stamp(ctx)
	if err != nil {
		return err
	}
	l.mu.RLock()
	same := stamp == l.stamp && time.Since(l.listedAt) < revocationRelist
	l.mu.RUnlock()
	if same {
		return nil
	}
	if err := l.refresh(ctx); err != nil {
		return err
	}
	l.mu.Lock()
	l.stamp, l.listedAt = stamp, time.Now()
	l.mu.Unlock()
	return nil
}

// refresh re-reads the revocation list from the store.
func (l *revocationList) refresh(ctx context.Context) error {
	m, err := l.store.List(ctx)
	if err != nil {
		return err
	}
	l.replace(m, l.clock())
	return nil
}

// refreshOnce is one turn of the loop that keeps the local
// revocation list in step with the store. On failure it keeps the last
// list and logs once per outage.
func (l *revocationList) refreshOnce(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, clientStoreTimeout)
	err := l.refreshIfChanged(rctx)
	cancel()
	l.mu.Lock()
	was := l.failed
	l.failed = err != nil
	l.mu.Unlock()
	switch {
	case err != nil && !was:
		l.logger.Warn("reading the revocation list from the store failed; keeping the last one", zap.Error(err))
	case err == nil && was:
		l.logger.Info("revocation list read from the store again")
	}
}
