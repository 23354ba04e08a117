package caddyscope

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"github.com/caddyapigw/gateway/internal/oauthready"
)

// trusted is one issuer a route accepts tokens from.
type trusted struct {
	issuer   string
	audience []string // empty: not checked (introspection-only issuers)
	local    bool
	verifier *oauthjwt.Verifier // the local app's
	remote   *remoteIssuer
	poolKey  string
}

// routed is a token already checked for this route, and by whom.
type routed struct {
	claims *oauthjwt.Claims
	by     *trusted
}

// trustSet routes the tokens of a route with issuers to the issuer that
// checks them, and remembers the outcome per token until the token
// expires (or, introspected, until its cache deadline).
type trustSet struct {
	byIssuer map[string]*trusted
	opaque   *trusted // the issuer that introspects tokens that are not JWTs
	all      []*trusted
	cache    *oauthjwt.Cache[routed]
	now      func() time.Time
}

// Errors of routing a token to its issuer.
var (
	errIssuerNotTrusted = errors.New("token issuer not accepted")
	errNoIssuerClaim    = errors.New("token has no iss claim")
	errNotIntrospected  = errors.New("token is not a JWT and no issuer of this route introspects tokens")
)

// newTrustSet provisions the issuers of a route. auth is the local app or
// nil; routeAudience is the route's audience list.
func newTrustSet(issuers []Issuer, auth oauthjwt.Authority, localAudience, routeAudience []string, logger *zap.Logger) (*trustSet, error) {
	ts := &trustSet{byIssuer: make(map[string]*trusted), cache: oauthjwt.NewCache[routed](0), now: time.Now}
	fail := func(err error) (*trustSet, error) {
		ts.cleanup()
		return nil, err
	}
	for i := range issuers {
		is := &issuers[i]
		name := fmt.Sprintf("issuers[%d] (%s)", i, is.Issuer)
		var tr *trusted
		if is.Issuer == LocalIssuer {
			if auth == nil {
				return fail(fmt.Errorf("%s: needs the `oauth` global option (apps.oauth in JSON)", name))
			}
			if !localHasNoOptions(is) {
				return fail(fmt.Errorf("%s: the local issuer takes no options", name))
			}
			tr = &trusted{issuer: auth.Verifier().Issuer(), audience: localAudience, local: true, verifier: auth.Verifier()}
		} else {
			if auth != nil && is.Issuer == auth.Verifier().Issuer() {
				return fail(fmt.Errorf("%s: issuer: this is the local oauth app's issuer; write `issuer local`", name))
			}
			cfg, audience, err := is.resolve(routeAudience)
			if err != nil {
				return fail(fmt.Errorf("%s: %v", name, err))
			}
			key := cfg.key
			v, _, err := issuerPool.LoadOrNew(key, func() (caddy.Destructor, error) {
				ri, err := newRemoteIssuer(*cfg, logger)
				if err != nil {
					return nil, err
				}
				ri.unready = oauthready.Register("issuer "+cfg.issuer, ri.readyCheck)
				// Reach the issuer now, in the background, so that the
				// first request finds its keys; a failure is logged and
				// retried on demand.
				go func() { _, _ = ri.ready() }()
				return ri, nil
			})
			if err != nil {
				return fail(fmt.Errorf("%s: %v", name, err))
			}
			tr = &trusted{issuer: is.Issuer, audience: audience, remote: v.(*remoteIssuer), poolKey: key}
		}
		if _, dup := ts.byIssuer[tr.issuer]; dup {
			if tr.poolKey != "" {
				_, _ = issuerPool.Delete(tr.poolKey)
			}
			return fail(fmt.Errorf("%s: issuer: listed twice", name))
		}
		ts.byIssuer[tr.issuer] = tr
		ts.all = append(ts.all, tr)
		if tr.remote != nil && tr.remote.cfg.clientID != "" {
			if ts.opaque != nil {
				// An opaque token names no issuer: it would be sent to
				// every introspection endpoint, each seeing the others'.
				return fail(fmt.Errorf("%s: client_id: only one issuer of a route may introspect tokens (%s does already)", name, ts.opaque.issuer))
			}
			ts.opaque = tr
		}
	}
	return ts, nil
}

// cleanup releases the route's hold on its running issuers.
func (ts *trustSet) cleanup() {
	if ts == nil {
		return
	}
	for _, tr := range ts.all {
		if tr.poolKey != "" {
			_, _ = issuerPool.Delete(tr.poolKey)
		}
	}
	ts.all = nil
}

// verify checks token with the issuer it belongs to; hit reports that the
// answer came from the cache of checked tokens.
func (ts *trustSet) verify(token string) (claims *oauthjwt.Claims, by *trusted, hit bool, err error) {
	now := ts.now()
	if r, ok := ts.cache.Get(token, now); ok {
		return r.claims, r.by, true, nil
	}
	if len(token) > oauthjwt.MaxTokenSize {
		return nil, nil, false, oauthjwt.ErrTokenTooLarge
	}
	iss, isJWT, err := unverifiedIssuer(token)
	if err != nil {
		return nil, nil, false, err
	}
	var tr *trusted
	if isJWT {
		tr = ts.byIssuer[iss]
		if tr == nil {
			return nil, nil, false, errIssuerNotTrusted
		}
	} else {
		tr = ts.opaque
		if tr == nil {
			return nil, nil, false, errNotIntrospected
		}
	}
	claims, deadline, err := tr.check(token)
	if err != nil {
		return nil, tr, false, err
	}
	ts.cache.Put(token, routed{claims: claims, by: tr}, deadline, now)
	return claims, tr, false, nil
}

// check verifies token with this issuer and says until when the result
// may be reused.
func (tr *trusted) check(token string) (*oauthjwt.Claims, time.Time, error) {
	if tr.local {
		c, err := tr.verifier.Verify(token)
		if err != nil {
			return nil, time.Time{}, err
		}
		return c, c.ExpiresAt.Time, nil
	}
	ri := tr.remote
	st, err := ri.ready()
	if err != nil {
		return nil, time.Time{}, err
	}
	if st.verifier != nil {
		c, err := st.verifier.Verify(token)
		if err != nil {
			if errors.Is(err, oauthjwt.ErrUnknownKey) && ri.jwksDown.Load() {
				// The key may be one the issuer published while its JWKS
				// cannot be fetched: not the token's fault.
				return nil, time.Time{}, &unavailableError{issuer: ri.cfg.issuer, err: fmt.Errorf("%w, and the JWKS cannot be fetched", err), retryAfter: ri.cfg.refetchFloor}
			}
			return nil, time.Time{}, err
		}
		return c, c.ExpiresAt.Time, nil
	}
	if st.introspection == "" {
		return nil, time.Time{}, errIssuerNotTrusted
	}
	e, err := ri.introspect(st.introspection, token)
	if err != nil {
		return nil, time.Time{}, err
	}
	return e.claims, e.deadline, nil
}

// unverifiedIssuer reads the iss claim of a JWS compact serialization
// without verifying it, only to pick the issuer whose keys then verify
// the token. A token that is not three base64url segments with a JSON
// header naming an alg is not a JWT (isJWT false): it is introspected.
func unverifiedIssuer(token string) (iss string, isJWT bool, err error) {
	h, rest, ok := strings.Cut(token, ".")
	if !ok {
		return "", false, nil
	}
	p, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return "", false, nil
	}
	hb, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return "", false, nil
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hb, &header) != nil || header.Alg == "" {
		return "", false, nil
	}
	pb, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return "", true, errors.New("token malformed")
	}
	var payload struct {
		Iss *string `json:"iss"`
	}
	if err := json.Unmarshal(pb, &payload); err != nil {
		return "", true, errors.New("token malformed")
	}
	if payload.Iss == nil || *payload.Iss == "" {
		return "", true, errNoIssuerClaim
	}
	return *payload.Iss, true, nil
}

// describe turns a verification error into an error_description.
func describe(err error) string {
	var ue *unavailableError
	switch {
	case errors.As(err, &ue):
		return "token could not be checked with its issuer"
	case errors.Is(err, errTokenInactive):
		return "token not active"
	case errors.Is(err, errIssuerNotTrusted), errors.Is(err, errIntrospectIss):
		return "token issuer not accepted"
	case errors.Is(err, errNoIssuerClaim):
		return "token lacks a required claim"
	case errors.Is(err, errNotIntrospected):
		return "token malformed"
	}
	return oauthjwt.Describe(err)
}
