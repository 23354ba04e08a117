package caddyscope

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// Well-known URI suffixes of the two discovery documents: RFC 8414 §3 and
// OpenID Connect Discovery 1.0 §4.
const (
	wellKnownOAuth  = "/.well-known/oauth-authorization-server"
	wellKnownOpenID = "/.well-known/openid-configuration"
)

// remoteIssuer is the running state of one trusted external issuer: its
// discovered endpoints, its keys (keyfunc: cached, refreshed in the
// background and on an unknown kid at most once per refetch floor) and its
// introspection caches. It is shared by every route that configures the
// same issuer identically, and kept across config reloads (issuerPool), so
// a reload neither refetches the keys nor forgets cached introspections.
type remoteIssuer struct {
	cfg    resolvedIssuer
	client *http.Client
	logger *zap.Logger
	ctx    context.Context // ends the key refresh goroutine
	cancel context.CancelFunc

	mu      sync.Mutex // serialises setup
	lastTry time.Time
	lastErr *unavailableError
	// jwksDown is set while the last fetch of the JWKS failed: a token
	// naming a kid not among the keys already known could be signed by a
	// key the issuer has just published.
	jwksDown atomic.Bool
	// jwksFetched is set once the JWKS was fetched: the issuer is ready.
	jwksFetched atomic.Bool
	unready     func() // removes the readiness check
	state       atomic.Pointer[issuerState]

	positive *oauthjwt.Cache[introspected] // active tokens
	negative *oauthjwt.Cache[struct{}]     // inactive tokens
	flight   singleflight.Group            // one introspection per token at a time
	inflight chan struct{}                 // bounds introspections in flight
	warn     rate.Sometimes                // at most one outage warning a second

	now func() time.Time
}

// issuerState is what setup found: how this issuer's tokens are checked.
type issuerState struct {
	verifier      *oauthjwt.Verifier // nil: the issuer publishes no keys
	introspection string             // "" when tokens are not introspected
}

func newRemoteIssuer(cfg resolvedIssuer, logger *zap.Logger) (*remoteIssuer, error) {
	client, err := newIssuerClient(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	ri := &remoteIssuer{
		cfg:      cfg,
		client:   client,
		logger:   logger.With(zap.String("issuer", cfg.issuer)),
		ctx:      ctx,
		cancel:   cancel,
		positive: oauthjwt.NewCache[introspected](cfg.cacheSize),
		negative: oauthjwt.NewCache[struct{}](cfg.cacheSize),
		inflight: make(chan struct{}, maxIntrospections),
		warn:     rate.Sometimes{Interval: time.Second},
		now:      time.Now,
	}
	return ri, nil
}

// Destruct implements caddy.Destructor: the last route using the issuer
// is gone.
func (ri *remoteIssuer) Destruct() error {
	ri.cancel()
	if ri.unready != nil {
		ri.unready()
	}
	return nil
}

// readyCheck is the issuer's readiness (the admin API's /oauth/ready): set
// up (metadata read, when discovered) and, for an issuer whose JWTs are
// verified here, its keys fetched at least once.
func (ri *remoteIssuer) readyCheck(context.Context) error {
	st, err := ri.ready()
	if err != nil {
		return err
	}
	if st.verifier != nil && !ri.jwksFetched.Load() {
		return errors.New("its keys (JWKS) have not been fetched yet")
	}
	return nil
}

// ready returns the issuer's state, setting it up on first use. A failed
// setup (the issuer is down) is retried at most once per refetch floor;
// meanwhile its tokens are refused with the reason in the log.
func (ri *remoteIssuer) ready() (*issuerState, error) {
	if st := ri.state.Load(); st != nil {
		return st, nil
	}
	ri.mu.Lock()
	defer ri.mu.Unlock()
	if st := ri.state.Load(); st != nil {
		return st, nil
	}
	if !ri.lastTry.IsZero() && time.Since(ri.lastTry) < ri.cfg.refetchFloor {
		e := *ri.lastErr
		e.retryAfter = ri.cfg.refetchFloor - time.Since(ri.lastTry)
		return nil, &e
	}
	ri.lastTry = time.Now()
	st, err := ri.setup()
	if err != nil {
		ri.lastErr = &unavailableError{issuer: ri.cfg.issuer, err: err, retryAfter: ri.cfg.refetchFloor}
		if ri.ctx.Err() != nil {
			return nil, ri.lastErr // the config using it is gone
		}
		ri.logger.Warn("token issuer unavailable: its tokens are refused until it answers", zap.Error(err))
		return nil, ri.lastErr
	}
	ri.state.Store(st)
	return st, nil
}

// setup discovers the endpoints when they are not configured, then starts
// keyfunc on the JWKS.
func (ri *remoteIssuer) setup() (*issuerState, error) {
	jwksURL, introspection := ri.cfg.jwksURL, ri.cfg.introspectionURL
	var metaAlgs []string
	if ri.cfg.discover {
		md, err := ri.discover()
		if err != nil {
			return nil, err
		}
		jwksURL = md.JWKSURI
		if ri.cfg.clientID != "" {
			if md.IntrospectionEndpoint == "" {
				return nil, errors.New("metadata has no introspection_endpoint, and client_id is set to introspect tokens")
			}
			introspection = md.IntrospectionEndpoint
		}
		if jwksURL == "" && introspection == "" {
			return nil, errors.New("metadata has no jwks_uri: the issuer's tokens cannot be verified")
		}
		metaAlgs = md.IDTokenSigningAlgs
	}
	st := &issuerState{introspection: introspection}
	if jwksURL != "" {
		keys, err := ri.startKeys(jwksURL, metaAlgs)
		if err != nil {
			return nil, err
		}
		st.verifier = oauthjwt.NewVerifier(oauthjwt.VerifierConfig{
			Issuer:                 ri.cfg.issuer,
			Keys:                   keys,
			RequireAccessTokenType: true,
			Mapping:                ri.cfg.mapping,
		})
	}
	return st, nil
}

// metadata holds the members of an RFC 8414 §2 (or OpenID Connect
// Discovery §3) document that the gateway uses.
type metadata struct {
	Issuer                string   `json:"issuer"`
	JWKSURI               string   `json:"jwks_uri"`
	IntrospectionEndpoint string   `json:"introspection_endpoint"`
	IDTokenSigningAlgs    []string `json:"id_token_signing_alg_values_supported"`
}

// metadataURLs lists where an issuer's metadata may be: first RFC 8414
// §3.1 (the well-known suffix inserted between the host and the issuer's
// path), then OpenID Connect Discovery §4 (appended to the issuer).
func metadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, err
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	oauth := *u
	oauth.Path, oauth.RawPath = "", ""
	oauth.RawQuery = ""
	oauthURL := oauth.String() + wellKnownOAuth + path
	oidc := strings.TrimSuffix(issuer, "/") + wellKnownOpenID
	return []string{oauthURL, oidc}, nil
}

// discover fetches the issuer's metadata, RFC 8414 first, OpenID Connect
// discovery second, and checks it names this issuer exactly (RFC 8414 §3.3).
func (ri *remoteIssuer) discover() (*metadata, error) {
	urls, err := metadataURLs(ri.cfg.issuer)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, u := range urls {
		md, err := ri.fetchMetadata(u)
		if err == nil {
			ri.logger.Info("discovered token issuer", zap.String("metadata", u),
				zap.String("jwks_uri", md.JWKSURI), zap.String("introspection_endpoint", md.IntrospectionEndpoint))
			return md, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
	}
	return nil, fmt.Errorf("metadata discovery: %w", errors.Join(errs...))
}

// fetchMetadata reads the metadata document at u and checks it is for
// this issuer and names usable endpoints.
func (ri *remoteIssuer) fetchMetadata(u string) (*metadata, error) {
	req, err := http.NewRequestWithContext(ri.ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	body, err := ri.call(req)
	countIssuerCall(ri.cfg.issuer, "metadata", err)
	if err != nil {
		return nil, err
	}
	var md metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, fmt.Errorf("not a metadata document: %v", err)
	}
	if md.Issuer != ri.cfg.issuer {
		// RFC 8414 §3.3: a document for another issuer must not be used.
		return nil, fmt.Errorf("metadata names issuer %q, not %q (RFC 8414 §3.3)", md.Issuer, ri.cfg.issuer)
	}
	for name, v := range map[string]string{"jwks_uri": md.JWKSURI, "introspection_endpoint": md.IntrospectionEndpoint} {
		if v == "" {
			continue
		}
		if err := oauthjwt.CheckEndpointURL(v); err != nil {
			return nil, fmt.Errorf("metadata %s: %v", name, err)
		}
	}
	return &md, nil
}

// startKeys starts keyfunc on the JWKS at u: a first fetch now (an issuer
// that is down does not fail it: the keys come with a later refetch), a
// refresh every refresh interval, and a refetch when a token names an
// unknown kid, at most once per refetch floor. A failed refresh keeps the
// keys already known.
func (ri *remoteIssuer) startKeys(u string, metaAlgs []string) (*remoteKeys, error) {
	wait := ri.cfg.timeout
	client := *ri.client
	client.Transport = jwksHealth{rt: client.Transport, down: &ri.jwksDown, fetched: &ri.jwksFetched, issuer: ri.cfg.issuer}
	kf, err := keyfunc.NewDefaultOverrideCtx(ri.ctx, []string{u}, keyfunc.Override{
		Client:            &client,
		HTTPTimeout:       ri.cfg.timeout,
		RefreshInterval:   ri.cfg.refreshInterval,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(ri.cfg.refetchFloor), 1),
		// A request with an unknown kid waits for a refetch at most this
		// long; when the floor forbids one for longer it is refused at once.
		RateLimitWaitMax: wait,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				ri.logger.Warn("JWKS refresh failed: keys already fetched stay in use", zap.String("jwks_uri", u), zap.Error(err))
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("jwks_uri %s: %v", u, err)
	}
	algs := ri.cfg.algorithms
	var single string
	switch {
	case len(algs) == 1:
		single = algs[0]
	case len(algs) == 0 && len(metaAlgs) == 1 && oauthjwt.CheckAlg(metaAlgs[0]) == nil:
		single = metaAlgs[0]
	}
	return &remoteKeys{ri: ri, kf: kf, allowed: algs, single: single}, nil
}

// jwksHealth records whether the last fetch of the JWKS succeeded.
type jwksHealth struct {
	rt            http.RoundTripper
	down, fetched *atomic.Bool
	issuer        string // for the metrics
}

func (h jwksHealth) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := h.rt.RoundTrip(req)
	ok := err == nil && resp.StatusCode == http.StatusOK
	h.down.Store(!ok)
	if ok {
		countIssuerCall(h.issuer, "jwks", nil)
	} else {
		countIssuerCall(h.issuer, "jwks", errJWKSFetch)
	}
	if ok {
		h.fetched.Store(true)
	}
	return resp, err
}

// remoteKeys is the oauthjwt.KeySet of an external issuer, over keyfunc's
// storage. Each key is pinned to one algorithm: its JWK alg (RFC 7517
// §4.4), or, for a JWK without alg, the one algorithm the configuration or
// the issuer's metadata names. A key that cannot be pinned, a symmetric
// key, a key with private material or a key not for signatures is refused,
// so a token can never be checked with HS256 keyed by a public key.
type remoteKeys struct {
	ri      *remoteIssuer
	kf      keyfunc.Keyfunc
	allowed []string // configured algorithms; empty: any supported
	single  string   // the algorithm for JWKs without alg; "" refuses them
}

// Lookup implements oauthjwt.KeySet.
func (k *remoteKeys) Lookup(kid string) (*oauthjwt.Key, bool) {
	ctx, cancel := context.WithTimeout(k.ri.ctx, k.ri.cfg.timeout)
	defer cancel()
	jwk, err := k.kf.Storage().KeyRead(ctx, kid)
	if err != nil {
		if !errors.Is(err, jwkset.ErrKeyNotFound) {
			k.ri.logger.Debug("JWKS key lookup failed", zap.String("kid", kid), zap.Error(err))
		}
		return nil, false
	}
	key, err := k.pin(kid, jwk)
	if err != nil {
		k.ri.logger.Warn("JWKS key refused", zap.String("kid", kid), zap.Error(err))
		return nil, false
	}
	return key, true
}

// pin turns a JWK into a key pinned to one algorithm (oauthjwt.PinJWK).
func (k *remoteKeys) pin(kid string, jwk jwkset.JWK) (*oauthjwt.Key, error) {
	key, err := oauthjwt.PinJWK(jwk, kid, k.allowed, k.single)
	if err != nil && string(jwk.Marshal().ALG) == "" && k.single == "" {
		return nil, errors.New("key has no alg (RFC 7517 §4.4) and neither algorithms nor the issuer metadata name exactly one")
	}
	return key, err
}

// unavailableError reports an issuer that could not be reached or gave an
// unusable answer: the token is refused with 503 and Retry-After, not 401,
// so the client keeps a token that may well be good, and the log says why.
type unavailableError struct {
	issuer string
	err    error
	// retryAfter is when the issuer is next tried; zero: at the next
	// request (introspection), answered as defaultRetryAfter.
	retryAfter time.Duration
}

// defaultRetryAfter is the Retry-After of an outage with no known end.
const defaultRetryAfter = 5 * time.Second

func (e *unavailableError) Error() string {
	return "token issuer " + e.issuer + " unavailable: " + e.err.Error()
}

func (e *unavailableError) Unwrap() error { return e.err }

// retryAfterSeconds is the Retry-After value (RFC 9110 §10.2.3): whole
// seconds, at least 1, at most an hour.
func (e *unavailableError) retryAfterSeconds() int {
	d := e.retryAfter
	if d <= 0 {
		d = defaultRetryAfter
	}
	return int(min(max((d+time.Second-1)/time.Second, 1), 3600))
}
