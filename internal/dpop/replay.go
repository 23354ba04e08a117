package dpop

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// Replay remembers the jti of every proof accepted until it could no
// longer be accepted anyway (RFC 9449 §11.1), and reports a second use.
// The authorization server's store implements it for a whole cluster;
// MemoryReplay serves a resource server without one.
type Replay interface {
	// Claim records the proof's jti for key jkt until until and reports
	// whether it was fresh (false: a replay).
	Claim(ctx context.Context, jkt, jti string, until time.Time) (bool, error)
}

// ErrReplayFull reports a MemoryReplay that holds its maximum of live
// entries: the proof is refused rather than a jti forgotten.
var ErrReplayFull = errors.New("too many DPoP proofs in the replay window")

// MemoryReplay is a Replay in process memory, for one instance.
type MemoryReplay struct {
	mu    sync.Mutex
	seen  map[[32]byte]time.Time
	max   int
	sweep time.Time
}

// ProcessReplay is the one record of this process for proofs that no
// shared store records: the authorization server's with Caddy storage,
// and routes that trust no local app. One per process, so a reload does
// not forget the proofs seen, and one bound on memory for all of them.
var ProcessReplay = NewMemoryReplay(0)

// NewMemoryReplay holds at most max live entries (1<<18 if max <= 0,
// about 20 MB).
func NewMemoryReplay(max int) *MemoryReplay {
	if max <= 0 {
		max = 1 << 18
	}
	return &MemoryReplay{seen: make(map[[32]byte]time.Time), max: max}
}

// Claim implements Replay.
func (m *MemoryReplay) Claim(_ context.Context, jkt, jti string, until time.Time) (bool, error) {
	k := ReplayKey(jkt, jti)
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if exp, ok := m.seen[k]; ok && now.Before(exp) {
		return false, nil
	}
	if len(m.seen) >= m.max || now.Sub(m.sweep) > time.Minute {
		for key, exp := range m.seen {
			if !now.Before(exp) {
				delete(m.seen, key)
			}
		}
		m.sweep = now
		if len(m.seen) >= m.max {
			return false, ErrReplayFull
		}
	}
	m.seen[k] = until
	return true, nil
}

// ReplayKey is the digest a proof's jti is remembered under: per key,
// since only the holder of the key can make a proof with it.
func ReplayKey(jkt, jti string) [32]byte {
	return sha256.Sum256([]byte(jkt + "\x00" + jti))
}
