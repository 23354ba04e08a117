package caddyscope

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// LocalIssuer in Issuers stands for the `oauth` app of this Caddy.
const LocalIssuer = "local"

// Issuer trusts the access tokens of one authorization server. A route
// with no issuers trusts the local `oauth` app only; a route that lists
// issuers trusts exactly those, the local app only if one of them is
// "local".
//
// A JWT is routed by its iss claim (read before verification only to pick
// the issuer), then verified with that issuer's keys: RFC 9068 profile
// (typ at+jwt, iss equal to Issuer exactly, exp, sub, client_id, aud, iat,
// jti), the algorithm pinned to the key, aud checked against Audience. A
// token that is not a JWT is introspected (RFC 7662) at the one issuer of
// the route that has client credentials.
//
// Keys come from JWKSURL, or else from the jwks_uri of the issuer's
// metadata, discovered at RFC 8414 §3.1's well-known location and, failing
// that, OpenID Connect Discovery's. With IntrospectionURL and no JWKSURL
// there is no discovery and every token, JWTs included, is introspected.
type Issuer struct {
	// Issuer is the issuer identifier (RFC 8414 §2): an https URL (http
	// for loopback hosts), compared exactly with the tokens' iss and the
	// metadata's issuer. "local" is the `oauth` app of this Caddy.
	Issuer string `json:"issuer"`

	// Audience requires the token's aud to contain one of these. Default:
	// the route's audience. Required for an issuer whose JWTs are
	// verified locally (RFC 9068 §4); for introspection, checked when set
	// (an answer without aud is then refused).
	Audience []string `json:"audience,omitempty"`

	// JWKSURL is where the issuer's keys are (RFC 7517 §5), instead of
	// the jwks_uri of its metadata.
	JWKSURL string `json:"jwks_url,omitempty"`

	// IntrospectionURL is the issuer's RFC 7662 endpoint, instead of the
	// introspection_endpoint of its metadata. Needs ClientID.
	IntrospectionURL string `json:"introspection_url,omitempty"`

	// ClientID and ClientSecret are the gateway's credentials at the
	// introspection endpoint, sent with HTTP Basic (RFC 7662 §2.1). A
	// client_id turns introspection on. The secret may be a placeholder
	// such as {env.INTROSPECTION_SECRET}.
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`

	// TLSTrustedCACerts are PEM files of the CA certificates trusted for
	// the issuer's endpoints, instead of the system's roots.
	TLSTrustedCACerts []string `json:"tls_trusted_ca_certs,omitempty"`

	// Algorithms restricts the keys' algorithms (ES256, ES384, RS256,
	// PS256, EdDSA). A JWK without alg is used only when exactly one is
	// listed here or, without this list, when the metadata's
	// id_token_signing_alg_values_supported lists exactly one.
	Algorithms []string `json:"algorithms,omitempty"`

	// Timeout bounds each call to the issuer. Default 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// JWKSRefreshInterval is how often the keys are fetched again.
	// Default 1h.
	JWKSRefreshInterval caddy.Duration `json:"jwks_refresh_interval,omitempty"`

	// JWKSRefetchFloor is the least time between two fetches of the keys
	// caused by tokens with an unknown kid, and between two attempts to
	// reach an issuer whose metadata could not be fetched. Default 30s.
	JWKSRefetchFloor caddy.Duration `json:"jwks_refetch_floor,omitempty"`

	// IntrospectionCacheTTL is the longest an active introspection answer
	// is used; never past the token's exp. Default 1m.
	IntrospectionCacheTTL caddy.Duration `json:"introspection_cache_ttl,omitempty"`

	// IntrospectionCacheSize bounds the cached answers (active and
	// inactive each). Default 10000.
	IntrospectionCacheSize int `json:"introspection_cache_size,omitempty"`

	// IntrospectionNegativeTTL is how long an inactive answer is used.
	// Default 30s.
	IntrospectionNegativeTTL caddy.Duration `json:"introspection_negative_ttl,omitempty"`
}

// resolvedIssuer is an Issuer checked, with defaults and secrets filled in.
type resolvedIssuer struct {
	issuer, jwksURL, introspectionURL string
	discover                          bool // no endpoint configured: read the metadata
	clientID, clientSecret            string
	caPool                            *x509.CertPool
	algorithms                        []string
	timeout, refreshInterval          time.Duration
	refetchFloor, cacheTTL            time.Duration
	negativeTTL                       time.Duration
	cacheSize                         int
	key                               string // identifies these settings in issuerPool
}

// durationOption applies a default and a range to a duration field.
func durationOption(name string, v caddy.Duration, def, lo, hi time.Duration) (time.Duration, error) {
	d := time.Duration(v)
	if d == 0 {
		return def, nil
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("%s: %v is out of range (%v to %v)", name, d, lo, hi)
	}
	return d, nil
}

// resolve checks the configuration of an external issuer. routeAudience
// is the route's audience list, the default for the issuer's.
func (is *Issuer) resolve(routeAudience []string) (*resolvedIssuer, []string, error) {
	if err := oauthjwt.CheckIssuerURL(is.Issuer); err != nil {
		return nil, nil, fmt.Errorf("issuer: %v", err)
	}
	r := &resolvedIssuer{issuer: is.Issuer, jwksURL: is.JWKSURL, introspectionURL: is.IntrospectionURL, clientID: is.ClientID}
	for name, u := range map[string]string{"jwks_url": is.JWKSURL, "introspection_url": is.IntrospectionURL} {
		if u == "" {
			continue
		}
		if err := oauthjwt.CheckEndpointURL(u); err != nil {
			return nil, nil, fmt.Errorf("%s: %v", name, err)
		}
	}
	r.discover = is.JWKSURL == "" && is.IntrospectionURL == ""
	if is.IntrospectionURL != "" && is.ClientID == "" {
		return nil, nil, errors.New("client_id: required with introspection_url: the gateway authenticates to the introspection endpoint (RFC 7662 §2.1)")
	}
	if is.ClientID != "" && is.IntrospectionURL == "" && !r.discover {
		return nil, nil, errors.New("introspection_url: required with client_id when jwks_url is given (no metadata discovery then)")
	}
	if is.ClientSecret != "" && is.ClientID == "" {
		return nil, nil, errors.New("client_secret: given without client_id")
	}
	if is.ClientID != "" {
		r.clientSecret = caddy.NewReplacer().ReplaceKnown(is.ClientSecret, "")
		if r.clientSecret == "" {
			return nil, nil, errors.New("client_secret: required with client_id (empty: is its {env.…} variable set?)")
		}
	}
	for _, alg := range is.Algorithms {
		if err := oauthjwt.CheckAlg(alg); err != nil {
			return nil, nil, fmt.Errorf("algorithms: %v", err)
		}
	}
	r.algorithms = slices.Clone(is.Algorithms)
	var err error
	if r.timeout, err = durationOption("timeout", is.Timeout, 5*time.Second, 100*time.Millisecond, time.Minute); err != nil {
		return nil, nil, err
	}
	if r.refreshInterval, err = durationOption("jwks_refresh_interval", is.JWKSRefreshInterval, time.Hour, time.Minute, 24*time.Hour); err != nil {
		return nil, nil, err
	}
	if r.refetchFloor, err = durationOption("jwks_refetch_floor", is.JWKSRefetchFloor, 30*time.Second, time.Second, time.Hour); err != nil {
		return nil, nil, err
	}
	if r.cacheTTL, err = durationOption("introspection_cache_ttl", is.IntrospectionCacheTTL, time.Minute, time.Second, time.Hour); err != nil {
		return nil, nil, err
	}
	if r.negativeTTL, err = durationOption("introspection_negative_ttl", is.IntrospectionNegativeTTL, 30*time.Second, time.Second, time.Hour); err != nil {
		return nil, nil, err
	}
	switch n := is.IntrospectionCacheSize; {
	case n == 0:
		r.cacheSize = 10000
	case n < 16 || n > 1_000_000:
		return nil, nil, fmt.Errorf("introspection_cache_size: %d is out of range (16 to 1000000)", n)
	default:
		r.cacheSize = n
	}
	var pems []byte
	if len(is.TLSTrustedCACerts) > 0 {
		r.caPool = x509.NewCertPool()
		for _, f := range is.TLSTrustedCACerts {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, nil, fmt.Errorf("tls_trusted_ca_certs: %v", err)
			}
			if !r.caPool.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("tls_trusted_ca_certs: %s holds no PEM certificate", f)
			}
			pems = append(pems, pem...)
		}
	}
	audience := is.Audience
	if len(audience) == 0 {
		audience = routeAudience
	}
	verifiesJWTs := is.IntrospectionURL == "" || is.JWKSURL != ""
	if verifiesJWTs && len(audience) == 0 {
		return nil, nil, errors.New("audience: required to accept this issuer's JWTs (RFC 9068 §4): set it in the issuer block or on the route")
	}
	r.key = is.poolKey(r.clientSecret, pems)
	return r, slices.Clone(audience), nil
}

// poolKey identifies the running issuer for these settings: identical
// settings (the secret and the CA files' contents as read now) share one
// across routes and reloads.
func (is *Issuer) poolKey(secret string, pems []byte) string {
	c := *is
	c.ClientSecret = secret
	b, _ := json.Marshal(c)
	h := sha256.New()
	h.Write(b)
	h.Write(pems)
	return "oauth_scope.issuer." + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// issuerPool keeps running issuers across config reloads (the pattern of
// reverseproxy's hosts and caddy-ratelimit's zones).
var issuerPool = caddy.NewUsagePool()

// newIssuerClient makes the HTTP client for an issuer's endpoints: its
// timeout, its trusted CAs, no redirects (a key or an introspection answer
// comes from the URL configured or discovered, nowhere else), and bodies
// bounded in size.
func newIssuerClient(r resolvedIssuer) (*http.Client, error) {
	tr, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("http.DefaultTransport is not an *http.Transport")
	}
	tr = tr.Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: r.caPool, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{
		Transport:     boundedBodies{tr},
		Timeout:       r.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// boundedBodies fails the read of a response body past maxDocumentSize.
type boundedBodies struct{ rt http.RoundTripper }

func (b boundedBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.rt.RoundTrip(req)
	if err == nil {
		resp.Body = &boundedBody{rc: resp.Body, left: maxDocumentSize}
	}
	return resp, err
}

type boundedBody struct {
	rc   io.ReadCloser
	left int64
}

var errBodyTooLarge = fmt.Errorf("response larger than %d bytes", maxDocumentSize)

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }

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

// localHasNoOptions reports whether `issuer local` came without options:
// the local app's settings are the app's own.
func localHasNoOptions(is *Issuer) bool {
	zero := Issuer{Issuer: LocalIssuer}
	a, _ := json.Marshal(is)
	b, _ := json.Marshal(zero)
	return string(a) == string(b)
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

// verify checks token with the issuer it belongs to.
func (ts *trustSet) verify(token string) (*oauthjwt.Claims, *trusted, error) {
	now := ts.now()
	if r, ok := ts.cache.Get(token, now); ok {
		return r.claims, r.by, nil
	}
	if len(token) > oauthjwt.MaxTokenSize {
		return nil, nil, oauthjwt.ErrTokenTooLarge
	}
	iss, isJWT, err := unverifiedIssuer(token)
	if err != nil {
		return nil, nil, err
	}
	var tr *trusted
	if isJWT {
		tr = ts.byIssuer[iss]
		if tr == nil {
			return nil, nil, errIssuerNotTrusted
		}
	} else {
		tr = ts.opaque
		if tr == nil {
			return nil, nil, errNotIntrospected
		}
	}
	claims, deadline, err := tr.check(token)
	if err != nil {
		return nil, tr, err
	}
	ts.cache.Put(token, routed{claims: claims, by: tr}, deadline, now)
	return claims, tr, nil
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
