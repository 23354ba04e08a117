package caddyoauth

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// every runs fn every interval until the app's Caddy context ends (as
// caddy-ratelimit's sweeper does); a panic in fn is logged and ends the
// loop rather than the process.
func (a *App) every(interval time.Duration, what string, fn func(ctx context.Context)) {
	defer func() {
		if r := recover(); r != nil {
			a.logger.Error(what+" panicked", zap.Any("panic", r))
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
			fn(a.ctx)
		}
	}
}

// sweeper is a store that must be swept of expired entries (Caddy
// storage, where an entry expires only when read).
type sweeper interface {
	Sweep(ctx context.Context) (int, error)
}

// sweep removes expired entries from the store once.
func (a *App) sweep(ctx context.Context, sw sweeper) {
	n, err := sw.Sweep(ctx)
	switch {
	case err != nil && a.ctx.Err() == nil:
		a.logger.Warn("sweeping expired entries from the store failed; will retry", zap.Int("removed", n), zap.Error(err))
	case n > 0:
		a.logger.Debug("swept expired entries from the store", zap.Int("removed", n))
	}
}
