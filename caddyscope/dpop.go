package caddyscope

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/caddyapigw/gateway/internal/bearer"
	"github.com/caddyapigw/gateway/internal/dpop"
	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// DPoP modes of a route (Scope.DPoP).
const (
	// DPoPAllowed takes bearer tokens and DPoP-bound tokens, each with its
	// own scheme: the default.
	DPoPAllowed = "allowed"
	// DPoPRequired takes DPoP-bound tokens only (RFC 9449 §7.1).
	DPoPRequired = "required"
)

// dpopAuthority is what the local oauth app offers a route for DPoP: the
// replay record of proofs, kept in its store so that a proof replayed to
// another instance is refused too.
type dpopAuthority interface {
	DPoPReplay() dpop.Replay
}

// provisionDPoP checks the route's dpop mode and finds where proofs are
// recorded.
func (s *Scope) provisionDPoP() error {
	required := false
	switch s.DPoP {
	case "", DPoPAllowed:
	case DPoPRequired:
		required = true
	default:
		return fmt.Errorf("dpop: %q is neither %s nor %s", s.DPoP, DPoPAllowed, DPoPRequired)
	}
	var replay dpop.Replay = dpop.ProcessReplay
	if a, ok := s.authority.(dpopAuthority); ok {
		replay = a.DPoPReplay()
	}
	s.dpop = dpop.NewResource(replay, nil, required)
	return nil
}

// dpopChallenge is the DPoP part of a refusal's challenge (nil for none).
func (s *Scope) dpopChallenge(r *http.Request) *bearer.DPoPChallenge {
	return s.dpop.Challenge(r)
}

// checkDPoP applies RFC 9449 §7 to a request whose token verified.
func (s *Scope) checkDPoP(w http.ResponseWriter, r *http.Request, token, scheme string, claims *oauthjwt.Claims, scope string) *bearer.Error {
	e := s.dpop.Check(r, token, scheme, claims.BoundKey())
	if e == nil {
		return nil
	}
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa((&unavailableError{}).retryAfterSeconds()))
		return e
	}
	e.Scope = scope
	return e
}
