package caddyscope

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// Introspection outcomes that are the token's fault, not the issuer's.
var (
	errTokenInactive  = errors.New("token not active")
	errIntrospectIss  = errors.New("introspection response names another issuer")
	errIntrospectTime = errors.New("introspected token expired or not yet valid")
)

// introspected is a cached RFC 7662 answer for an active token.
type introspected struct {
	claims   *oauthjwt.Claims
	deadline time.Time // the earlier of the token's exp and now + cache TTL
}

// introspect asks the issuer's RFC 7662 endpoint about token, with the
// answers cached: an active token until the earlier of its exp and the
// configured cache TTL, an inactive one for the negative TTL. Concurrent
// requests with the same uncached token share one call.
func (ri *remoteIssuer) introspect(endpoint, token string) (introspected, error) {
	now := ri.now()
	if e, ok := ri.positive.Get(token, now); ok {
		return e, nil
	}
	if _, ok := ri.negative.Get(token, now); ok {
		return introspected{}, errTokenInactive
	}
	v, err, _ := ri.flight.Do(token, func() (any, error) {
		return ri.introspectRemote(endpoint, token)
	})
	if err != nil {
		return introspected{}, err
	}
	return v.(introspected), nil
}

// maxIntrospections bounds the calls in flight to one introspection
// endpoint: tokens that are not cached (new ones, or random ones an
// attacker makes up) cannot turn the gateway into a flood of requests at
// the issuer. A call that waits longer than the timeout for a slot fails.
const maxIntrospections = 32

func (ri *remoteIssuer) introspectRemote(endpoint, token string) (introspected, error) {
	wait := time.NewTimer(ri.cfg.timeout)
	select {
	case ri.inflight <- struct{}{}:
		wait.Stop()
	case <-wait.C:
		return introspected{}, &unavailableError{issuer: ri.cfg.issuer, err: fmt.Errorf("introspection: more than %d calls in flight for %v", maxIntrospections, ri.cfg.timeout)}
	}
	defer func() { <-ri.inflight }()
	body, err := ri.postIntrospection(endpoint, token)
	if err != nil {
		return introspected{}, &unavailableError{issuer: ri.cfg.issuer, err: fmt.Errorf("introspection: %w", err)}
	}
	active, claims, err := parseIntrospection(body)
	if err != nil {
		return introspected{}, &unavailableError{issuer: ri.cfg.issuer, err: fmt.Errorf("introspection response: %w", err)}
	}
	now := ri.now()
	if active {
		err = checkIntrospected(claims, ri.cfg.issuer, now)
	}
	if !active || errors.Is(err, errIntrospectTime) {
		ri.negative.Put(token, struct{}{}, now.Add(ri.cfg.negativeTTL), now)
		return introspected{}, errTokenInactive
	}
	if err != nil {
		return introspected{}, err
	}
	deadline := now.Add(ri.cfg.cacheTTL)
	if claims.ExpiresAt != nil && claims.ExpiresAt.Before(deadline) {
		deadline = claims.ExpiresAt.Time
	}
	e := introspected{claims: claims, deadline: deadline}
	ri.positive.Put(token, e, deadline, now)
	return e, nil
}

// postIntrospection sends the RFC 7662 §2.1 request: a form POST of the
// token, authenticated with the gateway's client credentials by HTTP Basic
// (RFC 6749 §2.3.1: id and secret form-urlencoded first).
func (ri *remoteIssuer) postIntrospection(endpoint, token string) ([]byte, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ri.ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(ri.cfg.clientID), url.QueryEscape(ri.cfg.clientSecret))
	body, err := ri.call(req)
	countIssuerCall(ri.cfg.issuer, "introspection", err)
	var status *statusError
	if errors.As(err, &status) {
		// 401 here means the gateway's own credentials were refused
		// (RFC 7662 §2.3), not the token.
		return nil, fmt.Errorf("%s answered %w", endpoint, err)
	}
	return body, err
}

// parseIntrospection reads an RFC 7662 §2.2 response. active is required
// and must be a JSON boolean; an inactive answer carries nothing else of
// use. For an active token the other members become claims (exp, iat, nbf
// as NumericDate, aud as a string or array, scope space-delimited or an
// array). Any member of the wrong type makes the whole answer unusable.
func parseIntrospection(body []byte) (active bool, claims *oauthjwt.Claims, err error) {
	body = bytes.TrimSpace(body)
	var head struct {
		Active json.RawMessage `json:"active"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return false, nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if len(body) == 0 || body[0] != '{' {
		return false, nil, errors.New("not a JSON object")
	}
	switch string(head.Active) {
	case "true":
	case "false":
		return false, nil, nil
	case "":
		return false, nil, errors.New("no active member (RFC 7662 §2.2)")
	default:
		return false, nil, errors.New("active is not a boolean (RFC 7662 §2.2)")
	}
	c, err := oauthjwt.ClaimsFromJSON(body)
	if err != nil {
		return false, nil, err
	}
	return true, c, nil
}

// checkIntrospected applies what the gateway requires of an active
// token's claims: the issuer, when named, is the one asked (RFC 7662 §4
// leaves it to the resource server); exp and nbf, when present, hold now,
// with the usual leeway on nbf.
func checkIntrospected(c *oauthjwt.Claims, issuer string, now time.Time) error {
	if c.Issuer != "" && c.Issuer != issuer {
		return errIntrospectIss
	}
	if c.ExpiresAt != nil && !now.Before(c.ExpiresAt.Time) {
		return errIntrospectTime
	}
	if c.NotBefore != nil && now.Add(oauthjwt.DefaultLeeway).Before(c.NotBefore.Time) {
		return errIntrospectTime
	}
	return nil
}

// logUnavailable records why a token was refused because of its issuer,
// at most once a second per issuer so an outage does not flood the log.
func (ri *remoteIssuer) logUnavailable(err error) {
	ri.warn.Do(func() {
		ri.logger.Warn("token refused: its issuer could not check it (401 to the client)", zap.Error(err))
	})
}
