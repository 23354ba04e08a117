package caddyoauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/dpop"
	"github.com/caddyapigw/gateway/internal/oauthstore"
	"github.com/caddyapigw/gateway/internal/reqinfo"
)

// DPoP (RFC 9449) at the token endpoint: a request with a valid proof gets
// an access token bound to the proof's key (cnf.jkt, token_type DPoP); a
// public client's refresh tokens are bound too (§5).

const (
	maxProofWindow    = 5 * time.Minute
	maxNonceLifetime  = time.Hour
	dpopNonceHeader   = "DPoP-Nonce"
	dpopNonceSecretID = "dpop-nonce"
)

// dpopSettings is the app's DPoP configuration, checked, with the nonce
// source made on first use (its key lives in the store, shared by every
// instance).
type dpopSettings struct {
	window        time.Duration
	nonce         bool
	nonceLifetime time.Duration

	mu     sync.Mutex
	nonces *dpop.Nonces
}

// provisionDPoP checks the dpop block.
func (a *App) provisionDPoP() error {
	cfg := a.DPoP
	if cfg == nil {
		cfg = new(DPoPConfig)
	}
	w, nl := time.Duration(cfg.ProofWindow), time.Duration(cfg.NonceLifetime)
	if w < 0 || w > maxProofWindow {
		return fmt.Errorf("dpop: proof_window: %s is outside 0..5m", w)
	}
	if nl < 0 || nl > maxNonceLifetime {
		return fmt.Errorf("dpop: nonce_lifetime: %s is outside 0..1h", nl)
	}
	if w == 0 {
		w = dpop.DefaultWindow
	}
	if nl == 0 {
		nl = dpop.DefaultNonceLifetime
	}
	a.dpop = &dpopSettings{window: w, nonce: cfg.Nonce, nonceLifetime: nl}
	return nil
}

// dpopNonces returns the app's nonce source, reading (or making) its key
// in the store the first time.
func (a *App) dpopNonces(ctx context.Context) (*dpop.Nonces, error) {
	d := a.dpop
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nonces != nil {
		return d.nonces, nil
	}
	key, err := a.rec.Secrets.Shared(ctx, dpopNonceSecretID)
	if err != nil {
		return nil, err
	}
	d.nonces = dpop.NewNonces(key, d.nonceLifetime)
	return d.nonces, nil
}

// proofCtxKey carries the token request's checked proof to the grants.
type proofCtxKey struct{}

// boundKey is the thumbprint the token request's proof was made with
// (what the access token's cnf.jkt names), or "" without a proof.
func boundKey(ctx context.Context) string {
	if p, ok := ctx.Value(proofCtxKey{}).(*dpop.Proof); ok {
		return p.JKT
	}
	return ""
}

// tokenProof checks the DPoP header of a token request for client (RFC
// 9449 §5, §4.3). It returns the request's context, carrying the proof
// when there is one, or the error to answer: invalid_dpop_proof, or
// use_dpop_nonce with a fresh nonce in DPoP-Nonce (§8).
func (s *Server) tokenProof(w http.ResponseWriter, r *http.Request, c *Client) (context.Context, *oauthError) {
	a := s.app
	ctx := r.Context()
	vals := r.Header.Values("DPoP")
	if len(vals) == 0 {
		switch {
		case c.DPoPBoundAccessTokens:
			return nil, badRequest(errInvalidDPoPProof, "this client must send a DPoP proof")
		case a.fapi2() && !fapiSenderConstrained(c):
			return nil, badRequest(errInvalidDPoPProof, "profile fapi2: access tokens are sender-constrained: send a DPoP proof")
		}
		return ctx, nil
	}
	if len(vals) > 1 {
		return nil, badRequest(errInvalidDPoPProof, "more than one DPoP header") // §4.3 item 1
	}
	now := a.clock()
	proof, err := dpop.Check(vals[0], dpop.Expect{Method: http.MethodPost, URL: reqinfo.URL(r), Now: now, Window: a.dpop.window, Algs: a.proofAlgs()})
	if err != nil {
		var pe *dpop.Error
		if errors.As(err, &pe) {
			return nil, badRequest(errInvalidDPoPProof, pe.Desc)
		}
		return nil, badRequest(errInvalidDPoPProof, "DPoP proof refused")
	}
	if a.dpop.nonce {
		nonces, err := a.dpopNonces(ctx)
		if err != nil {
			s.logger.Warn("DPoP nonce key unavailable: the store does not answer", zap.Error(err))
			return nil, unavailable()
		}
		w.Header().Set(dpopNonceHeader, nonces.Current(now))
		if !nonces.Valid(proof.Nonce, now) {
			return nil, badRequest(errUseDPoPNonce, "the DPoP proof must carry the nonce of the DPoP-Nonce header")
		}
	}
	// §11.1: a proof is good once, on every instance sharing the store,
	// for as long as its iat is in the window.
	fresh, err := a.DPoPReplay().Claim(ctx, proof.JKT, proof.JTI, proof.IssuedAt.Add(a.dpop.window))
	if err != nil {
		s.logger.Warn("DPoP proof replay check failed: the store does not answer", zap.Error(err))
		return nil, unavailable()
	}
	if !fresh {
		return nil, badRequest(errInvalidDPoPProof, "DPoP proof was already used")
	}
	return context.WithValue(ctx, proofCtxKey{}, proof), nil
}

// checkBoundFamily enforces §5 at a refresh: a refresh token bound to a
// DPoP key (a public client's) is good only with a proof by that key.
func checkBoundFamily(ctx context.Context, familyJKT string) *oauthError {
	if familyJKT == "" {
		return nil
	}
	got := boundKey(ctx)
	if got == "" {
		return badRequest(errInvalidDPoPProof, "this refresh token is bound to a DPoP key: send a DPoP proof")
	}
	if got != familyJKT {
		return badRequest(errInvalidDPoPProof, "the DPoP proof is not signed by the key this refresh token is bound to")
	}
	return nil
}

// familyKey is the DPoP key a new refresh family is bound to: the proof's
// for a public client (RFC 9449 §5), none for a confidential one, whose
// refresh tokens are bound to its own authentication.
func familyKey(ctx context.Context, c *Client) string {
	if !c.Public {
		return ""
	}
	return boundKey(ctx)
}

// DPoPReplay is where the token endpoint and oauth_scope routes record
// the DPoP proofs they accept (RFC 9449 §11.1): the store, so that with
// `store redis` a proof accepted by one instance is refused by every
// other, at one round trip per proof. With Caddy storage, whose atomic
// writes take a lock file (milliseconds per proof, measured with
// BenchmarkTokenEndpointDPoP), it is this process's memory instead: a
// proof is good once per instance, and a cluster that must refuse a proof
// replayed to another instance uses `store redis`.
func (a *App) DPoPReplay() dpop.Replay {
	if _, lockFiles := a.store.(*oauthstore.CaddyStore); lockFiles {
		return dpop.ProcessReplay
	}
	return a.rec.Proofs
}

// proofAlgs are the algorithms a DPoP proof may use: all asymmetric ones,
// or FAPI 2.0's under that profile.
func (a *App) proofAlgs() []string {
	if a.fapi2() {
		return fapiAlgs
	}
	return dpop.Algs
}

// userinfoDPoP checks DPoP at the userinfo endpoint, a protected resource
// like any other (RFC 9449 §7): a DPoP-bound token only with its proof.
func (s *Server) userinfoDPoP() *dpop.Resource { return s.dpopRes }
