package caddyoauth

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"github.com/caddyapigw/gateway/internal/oauthstore"
)

// idTokenKeyringAlgorithm is the algorithm of the ID-token keyring.
const idTokenKeyringAlgorithm = oauthjwt.RS256

// idKeyring holds the RS256 keyring of ID tokens when the app's own key
// uses another algorithm. It is loaded (generated the first time) when a
// configured client has the openid scope, or on first use: an RSA key
// costs time to make, which a configuration without OpenID Connect need
// not spend.
type idKeyring struct {
	keys *signingKeys
	mu   sync.Mutex // serialises the first load

	lastPeek atomic.Int64 // last store read for the JWKS (published)
}

// loaded returns the keyring, or nil before it is loaded.
func (k *idKeyring) loaded() *oauthjwt.Keyring {
	if k == nil {
		return nil
	}
	return k.keys.current.Load()
}

// get returns the keyring, loading it first if need be (nil for a nil
// idKeyring).
func (k *idKeyring) get(ctx context.Context) (*oauthjwt.Keyring, error) {
	if kr := k.loaded(); kr != nil || k == nil {
		return kr, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if kr := k.loaded(); kr != nil {
		return kr, nil
	}
	kr, err := k.keys.load(ctx)
	if err != nil {
		return nil, err
	}
	k.keys.current.Store(kr)
	return kr, nil
}

// published returns the keyring for the JWKS: the loaded one, or the one
// another instance of a cluster made, read from the store at most once per
// keyringMissRefresh until there is one. It never makes a key: a
// configuration without OpenID Connect publishes none.
func (k *idKeyring) published(ctx context.Context) *oauthjwt.Keyring {
	if kr := k.loaded(); kr != nil || k == nil {
		return kr
	}
	now := time.Now().UnixNano()
	last := k.lastPeek.Load()
	if now-last < int64(keyringMissRefresh) || !k.lastPeek.CompareAndSwap(last, now) {
		return nil
	}
	kr, ok, err := k.keys.read(ctx, idTokenKeyringAlgorithm)
	if err != nil || !ok {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if cur := k.loaded(); cur != nil {
		return cur
	}
	k.keys.current.Store(kr)
	return kr
}

// newIDKeyring is the app's ID-token keyring, nil when the app's key is
// RS256 already.
func (a *App) newIDKeyring() *idKeyring {
	if a.SigningKey.Algorithm == idTokenKeyringAlgorithm {
		return nil
	}
	cfg := &SigningKeyConfig{Algorithm: idTokenKeyringAlgorithm, RotateEvery: a.SigningKey.RotateEvery}
	return &idKeyring{keys: &signingKeys{kind: keyIDToken, issuer: oauthstore.IDTokenKeyring(a.Issuer), cfg: cfg, rings: a.rec.Keyrings, clock: a.clock, logger: a.logger,
		restored: a.keysRestored, kek: a.keys.kek}}
}

// anyOpenIDClient reports whether a configured client may ask for openid.
func (a *App) anyOpenIDClient() bool {
	for _, c := range a.clients {
		if hasOpenID(c.Scopes) {
			return true
		}
	}
	return false
}

// idTokenKeyring is the keyring that signs c's ID tokens.
func (a *App) idTokenKeyring(ctx context.Context, c *Client) (*oauthjwt.Keyring, error) {
	if a.idKeys == nil || c.idTokenAlg() == a.SigningKey.Algorithm {
		return a.keys.current.Load(), nil
	}
	return a.idKeys.get(ctx)
}

// idKeyLoops runs the ID-token keyring's turns of the keyring loops.
func (a *App) refreshIDKeys(ctx context.Context) {
	if a.idKeys.loaded() != nil {
		a.idKeys.keys.refreshOnce(ctx)
	}
}

func (a *App) rotateIDKeys(ctx context.Context) {
	if a.idKeys.loaded() != nil {
		a.idKeys.keys.rotateOnce(ctx)
	}
}
