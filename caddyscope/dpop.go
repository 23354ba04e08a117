package caddyscope

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyapigw/gateway/internal/bearer"
	"github.com/caddyapigw/gateway/internal/dpop"
	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"github.com/caddyapigw/gateway/internal/reqinfo"
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

// processReplay serves routes that trust no local app: one per process,
// so a reload does not forget the proofs seen.
var processReplay = dpop.NewMemoryReplay(0)

// provisionDPoP checks the route's dpop mode and finds where proofs are
// recorded.
func (s *Scope) provisionDPoP() error {
	switch s.DPoP {
	case "", DPoPAllowed:
	case DPoPRequired:
		s.dpopRequired = true
	default:
		return fmt.Errorf("dpop: %q is neither %s nor %s", s.DPoP, DPoPAllowed, DPoPRequired)
	}
	s.dpopAlgs = strings.Join(dpop.Algs, " ")
	s.replay = processReplay
	if a, ok := s.authority.(dpopAuthority); ok {
		s.replay = a.DPoPReplay()
	}
	return nil
}

// dpopChallenge is the DPoP part of a refusal's challenge: none when the
// request did not use DPoP and the route does not require it (the
// Bearer challenge alone, as before DPoP), else a DPoP challenge with
// the algorithms, which carries the error when DPoP was used.
func (s *Scope) dpopChallenge(r *http.Request) *bearer.DPoPChallenge {
	used := usesDPoP(r)
	if !used && !s.dpopRequired {
		return nil
	}
	return &bearer.DPoPChallenge{Algs: s.dpopAlgs, Only: s.dpopRequired, ErrorHere: used || s.dpopRequired}
}

// usesDPoP reports whether the request came with the DPoP scheme or a
// DPoP proof.
func usesDPoP(r *http.Request) bool {
	if len(r.Header.Values("DPoP")) > 0 {
		return true
	}
	a := r.Header.Get("Authorization")
	return len(a) > 4 && strings.EqualFold(a[:5], "dpop ")
}

// checkDPoP applies RFC 9449 §7 to a request whose token verified: a
// DPoP-bound token only with the DPoP scheme and a fresh proof by its key
// for this very request and token; a bearer token only where the route
// allows them.
func (s *Scope) checkDPoP(w http.ResponseWriter, r *http.Request, token, scheme string, claims *oauthjwt.Claims, scope string) *bearer.Error {
	jkt := claims.BoundKey()
	refuse := func(code, desc string) *bearer.Error {
		return &bearer.Error{Status: http.StatusUnauthorized, Code: code, Desc: desc, Scope: scope,
			DPoP: &bearer.DPoPChallenge{Algs: s.dpopAlgs, Only: s.dpopRequired, ErrorHere: true}}
	}
	if scheme != bearer.SchemeDPoP {
		switch {
		case jkt != "":
			// §7.2: a bound token is never a bearer token, else a thief
			// would just drop the proof.
			return refuse(bearer.InvalidToken, "this token is DPoP-bound: send it with the DPoP scheme and a proof")
		case s.dpopRequired:
			return refuse(bearer.InvalidToken, "this resource takes DPoP-bound tokens only")
		}
		return nil
	}
	if jkt == "" {
		return refuse(bearer.InvalidToken, "the DPoP scheme needs a DPoP-bound token")
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return refuse(bearer.InvalidDPoPProof, "exactly one DPoP proof is required") // §4.3 item 1
	}
	now := time.Now()
	p, err := dpop.Check(proofs[0], dpop.Expect{Method: r.Method, URL: reqinfo.URL(r), AccessToken: token, Now: now})
	if err != nil {
		var pe *dpop.Error
		if errors.As(err, &pe) {
			return refuse(bearer.InvalidDPoPProof, pe.Desc)
		}
		return refuse(bearer.InvalidDPoPProof, "DPoP proof refused")
	}
	if p.JKT != jkt {
		return refuse(bearer.InvalidDPoPProof, "the DPoP proof is not signed by the key the token is bound to") // §7.1
	}
	fresh, err := s.replay.Claim(r.Context(), p.JKT, p.JTI, p.IssuedAt.Add(dpop.DefaultWindow))
	if err != nil {
		w.Header().Set("Retry-After", strconv.Itoa((&unavailableError{}).retryAfterSeconds()))
		return &bearer.Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Desc: "DPoP proofs cannot be checked for replay now"}
	}
	if !fresh {
		return refuse(bearer.InvalidDPoPProof, "DPoP proof was already used") // §11.1
	}
	return nil
}
