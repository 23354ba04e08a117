// Package caddyoauth is an OAuth 2.0 authorization server inside Caddy.
//
// The `oauth` app holds what outlives a request and a config reload: the
// issuer, the signing keyring (kept in Caddy storage), the registered
// clients. The `oauth_server` HTTP handler serves the app's endpoints (token,
// JWKS, RFC 8414 metadata) on a site. Access tokens are RFC 9068 JWTs; the
// `oauth_scope` handler of package caddyscope accepts them in-process.
package caddyoauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"github.com/caddyapigw/gateway/internal/oauthstore"
)

func init() {
	caddy.RegisterModule(App{})
}

// Token lifetimes and clock leeway: defaults and bounds.
const (
	DefaultAccessTokenTTL = time.Hour
	minAccessTokenTTL     = time.Minute
	maxAccessTokenTTL     = 24 * time.Hour
	maxLeeway             = 5 * time.Minute
)

// App is the `oauth` Caddy app: an OAuth 2.0 authorization server's
// long-lived state. Configure it with the Caddyfile global option `oauth`
// or under `apps.oauth` in JSON.
type App struct {
	// Issuer is the authorization server's identifier (RFC 8414 §2): an
	// absolute https URL without query or fragment; http is accepted for
	// localhost only. It is the `iss` of every token and the base of the
	// endpoint URLs in the metadata document.
	Issuer string `json:"issuer"`

	// SigningKey selects the algorithm and, optionally, a PEM file for the
	// key that signs access tokens. Default: ES256 with a key generated on
	// first start and kept in Caddy storage.
	SigningKey *SigningKeyConfig `json:"signing_key,omitempty"`

	// AccessTokenTTL is the default access-token lifetime. Default: 1h.
	AccessTokenTTL caddy.Duration `json:"access_token_ttl,omitempty"`

	// Audience is the `aud` of issued access tokens (RFC 9068 §3). Default:
	// the issuer.
	Audience string `json:"audience,omitempty"`

	// Leeway is the clock skew allowed when tokens are verified. Default 30s.
	Leeway caddy.Duration `json:"leeway,omitempty"`

	// TokenCacheSize bounds how many verified access tokens of this app
	// oauth_scope remembers, until each expires, so that a token's
	// signature is checked once, not on every request. Tokens this app
	// issues enter it at issuance. Each costs about 800 bytes of heap
	// (docs/performance.md). Default 16384 (about 13 MB full); -1 turns
	// the cache off (every request checks a signature).
	TokenCacheSize int `json:"token_cache_size,omitempty"`

	// Clients are the registered OAuth clients.
	Clients []*Client `json:"clients,omitempty"`

	// Registration turns on dynamic client registration (RFC 7591) and
	// management (RFC 7592) under this policy. Off when nil.
	Registration *RegistrationConfig `json:"registration,omitempty"`

	// Users are the people who may sign in on the login page.
	Users []*User `json:"users,omitempty"`

	// RefreshTokenTTL is how long an unused refresh token stays valid;
	// each use rotates it and starts the period again. Default: 14 days.
	RefreshTokenTTL caddy.Duration `json:"refresh_token_ttl,omitempty"`

	// RefreshTokenMaxTTL bounds a chain of rotated refresh tokens from the
	// sign-in that started it. Default: 30 days.
	RefreshTokenMaxTTL caddy.Duration `json:"refresh_token_max_ttl,omitempty"`

	// RefreshTokenReuseGrace is how long after a refresh token's rotation
	// a retry with the same token gets the same successor instead of
	// being taken for reuse (RFC 9700 §4.14.2): a lost answer, two browser
	// tabs refreshing at once. 0 turns it off; at most 1m. Default: 5s.
	// A rotation that a crash or a failed write left unfinished is always
	// finished by the retry, whatever this says.
	RefreshTokenReuseGrace *caddy.Duration `json:"refresh_token_reuse_grace,omitempty"`

	// Profile turns on a security profile: "fapi2", the FAPI 2.0 Security
	// Profile (docs/fapi2.md), which requires PAR, PKCE, sender-constrained
	// tokens, private_key_jwt or mTLS client authentication and PS256,
	// ES256 or EdDSA, and refuses a configuration that does not meet it.
	Profile string `json:"profile,omitempty"`

	// RequirePushedAuthorizationRequests makes every client use the PAR
	// endpoint (RFC 9126 §5): authorization requests in the browser's URL
	// are refused.
	RequirePushedAuthorizationRequests bool `json:"require_pushed_authorization_requests,omitempty"`

	// DPoP tunes sender-constrained tokens (RFC 9449). A token request
	// with a DPoP proof gets a DPoP-bound token whether or not this is
	// set; it adds server nonces and the proof window.
	DPoP *DPoPConfig `json:"dpop,omitempty"`

	// MTLSEndpointBase is where a site with TLS client authentication
	// serves this app's endpoints, when it is not the issuer's site (RFC
	// 8705 §5): the URL of its oauth_server prefix, such as
	// https://mtls.auth.example.com/oauth2. The metadata then names its
	// token, revocation, introspection, userinfo and PAR endpoints in
	// mtls_endpoint_aliases, where clients that use certificates go.
	MTLSEndpointBase string `json:"mtls_endpoint_base,omitempty"`

	// SessionTTL is how long a login session lasts without use. Default: 1h.
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`

	// SessionMaxTTL bounds a login session from sign-in. Default: 12h.
	SessionMaxTTL caddy.Duration `json:"session_max_ttl,omitempty"`

	// ScopeDescriptions are shown on the consent page next to each scope,
	// e.g. {"notes:read": "Read your notes"}. A scope without one is shown
	// by name.
	ScopeDescriptions map[string]string `json:"scope_descriptions,omitempty"`

	// Signup turns on the self-service sign-up page ({prefix}/signup),
	// linked from the login page. Off when absent.
	Signup *SignupConfig `json:"signup,omitempty"`

	// UserinfoScope is the scope a token needs at the userinfo endpoint.
	// Default: profile.
	UserinfoScope string `json:"userinfo_scope,omitempty"`

	// Store keeps state that must survive reloads, restarts and, with a
	// shared backend, instances: signing keys today. Default: Caddy storage
	// (`oauth.stores.caddy`); `oauth.stores.redis` for a cluster.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=oauth.stores inline_key=module"`

	// RateLimitMemoryBudget bounds, in bytes, the worst-case memory of
	// the http app's rate_limit zones (caddy-ratelimit: 24 B × events
	// per key, see ratelimit_budget.go): a config whose zones may take
	// more is refused at load. Unset: a warning above 256 MiB.
	RateLimitMemoryBudget int64 `json:"rate_limit_memory_budget,omitempty"`

	// RateLimitKeys is how many distinct keys per window a rate_limit
	// zone keyed on anything but {oauth.client_id} or a constant (a
	// remote address, a header) is assumed to see, for the budget.
	// Default: 10000.
	RateLimitKeys int `json:"rate_limit_keys,omitempty"`

	// ConfigSource is "caddyfile" when the Caddyfile adapter made this
	// config (it sets it), so the admin API can report where the
	// configured clients come from; empty for a JSON config. Last, so
	// adapted configs differ from before only by a final member.
	ConfigSource string `json:"config_source,omitempty"`

	clients   map[string]*Client
	users     map[string]*User
	throttle  *loginThrottle
	directory *userDirectory
	keys      *signingKeys
	idKeys    *idKeyring // RS256 ID tokens beside another alg (keys_id_token.go); nil when RS256
	verifier  *oauthjwt.Verifier
	logger    *zap.Logger
	fake      *Client // authenticated against when the client is unknown

	// store is the key-value store; rec and registry own its records.
	store Store
	rec   *oauthstore.Records

	registry *clientRegistry
	revoked  *revocationList
	clock    func() time.Time // time.Now; tests move it
	// registrations keeps initial access tokens and registration slots
	// (RFC 7591).
	registrations oauthstore.Registrations
	ctx           context.Context // the Caddy context: ends every loop and fetcher
	caddyCtx      *caddy.Context  // the same, to find the http app at Start; nil in unit tests

	declared *resourceSet // resources oauth_scope routes guard (DeclareResource)
	audit    *auditor     // security events: Caddy events and the oauth.audit log
	dpop     *dpopSettings
}

// DPoPConfig tunes DPoP at the token endpoint (RFC 9449).
type DPoPConfig struct {
	// Nonce makes the token endpoint require a server nonce in every
	// proof (§8): a proof without the current one gets use_dpop_nonce
	// and the nonce in the DPoP-Nonce header. It limits how long a proof
	// made ahead of time can be used.
	Nonce bool `json:"nonce,omitempty"`
	// NonceLifetime is how long a nonce stays current; one is accepted
	// for up to twice that. Default: 5m.
	NonceLifetime caddy.Duration `json:"nonce_lifetime,omitempty"`
	// ProofWindow is how far a proof's iat may be from now, either way
	// (§11.1). Default: 60s; at most 5m.
	ProofWindow caddy.Duration `json:"proof_window,omitempty"`
}

// SigningKeyConfig chooses how access tokens are signed.
type SigningKeyConfig struct {
	// Algorithm is one of ES256 (default), ES384, RS256, PS256, EdDSA.
	Algorithm string `json:"algorithm,omitempty"`
	// File is a PEM private key (PKCS #8, SEC 1 or PKCS #1). Without it a
	// key is generated once and kept in Caddy storage, shared by every
	// instance that shares the storage.
	File string `json:"file,omitempty"`
	// RotateEvery makes a new signing key when the active one is this old
	// (at least 24h6m, the longest token lifetime plus leeway); the old
	// key stays published until the tokens it signed have expired.
	// Default: no automatic rotation (the admin API rotates on demand).
	RotateEvery caddy.Duration `json:"rotate_every,omitempty"`
	// KeyEncryptionKey, the base64 of 32 random bytes, encrypts the
	// private keys kept in the store with AES-256-GCM (keys_seal.go).
	// Placeholders such as {env.OAUTH_KEK} are replaced. Default: the
	// keys are stored in the clear.
	KeyEncryptionKey string `json:"key_encryption_key,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "oauth",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision checks the configuration and loads or creates the keyring.
func (a *App) Provision(ctx caddy.Context) error {
	if len(a.StoreRaw) > 0 {
		mod, err := ctx.LoadModule(a, "StoreRaw")
		if err != nil {
			return fmt.Errorf("store: %v", err)
		}
		a.store = mod.(Store)
	}
	if err := a.provision(ctx, ctx.Storage(), ctx.Logger()); err != nil {
		return err
	}
	a.caddyCtx = &ctx
	if err := registerAppMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("metrics: %v", err)
	}
	return a.audit.attach(ctx)
}

// provision is Provision with its dependencies passed in, for tests. The
// store defaults to one on storage.
func (a *App) provision(ctx context.Context, storage certmagic.Storage, logger *zap.Logger) error {
	a.logger = logger
	a.audit = &auditor{log: logger.Named("audit")}
	a.declared = new(resourceSet) // before any route declares (they provision after the app)
	if a.clock == nil {
		a.clock = time.Now
	}
	a.ctx = ctx
	if a.store == nil {
		a.store = NewCaddyStore(storage, storePrefix, logger)
	}

	if err := validateIssuer(a.Issuer); err != nil {
		return fmt.Errorf("issuer: %v", err)
	}
	if a.AccessTokenTTL == 0 {
		a.AccessTokenTTL = caddy.Duration(DefaultAccessTokenTTL)
	}
	if a.AccessTokenTTL < caddy.Duration(minAccessTokenTTL) || a.AccessTokenTTL > caddy.Duration(maxAccessTokenTTL) {
		return fmt.Errorf("access_token_ttl: %s is outside 1m..24h", time.Duration(a.AccessTokenTTL))
	}
	if a.Audience == "" {
		a.Audience = a.Issuer
	}
	if a.RateLimitMemoryBudget < 0 {
		return fmt.Errorf("rate_limit_memory_budget: %d is negative", a.RateLimitMemoryBudget)
	}
	if a.RateLimitKeys < 0 {
		return fmt.Errorf("rate_limit_keys: %d is negative", a.RateLimitKeys)
	}
	if a.Leeway < 0 || a.Leeway > caddy.Duration(maxLeeway) {
		return fmt.Errorf("leeway: %s is outside 0..5m", time.Duration(a.Leeway))
	}
	if a.TokenCacheSize < -1 {
		return fmt.Errorf("token_cache_size: %d is neither a size nor -1 (off)", a.TokenCacheSize)
	}
	if a.SigningKey == nil {
		a.SigningKey = new(SigningKeyConfig)
	}
	if a.SigningKey.Algorithm == "" {
		a.SigningKey.Algorithm = oauthjwt.ES256
	}
	if err := a.SigningKey.checkRotateEvery(); err != nil {
		return fmt.Errorf("signing_key: %v", err)
	}
	kek, err := a.SigningKey.parseKeyEncryptionKey()
	if err != nil {
		return fmt.Errorf("signing_key: %v", err)
	}

	if err := a.provisionProfile(); err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	a.clients = make(map[string]*Client, len(a.Clients))
	for i, c := range a.Clients {
		if c == nil {
			return fmt.Errorf("clients[%d]: empty", i)
		}
		if err := c.provision(repl, a); err != nil {
			return fmt.Errorf("client %q: %v", c.ID, err)
		}
		if _, dup := a.clients[c.ID]; dup {
			return fmt.Errorf("client %q: client_id: defined twice", c.ID)
		}
		a.clients[c.ID] = c
	}
	a.fake = newFakeClient()
	if err := a.provisionPersonSettings(); err != nil {
		return err
	}
	if err := checkMTLSEndpointBase(a.MTLSEndpointBase); err != nil {
		return err
	}
	if err := a.provisionDPoP(); err != nil {
		return err
	}
	if a.Registration != nil {
		if err := a.Registration.provision(); err != nil {
			return fmt.Errorf("registration: %v", err)
		}
	}
	if err := a.provisionUsers(); err != nil {
		return err
	}
	a.throttle = newLoginThrottle()
	a.directory = &userDirectory{static: a.users, logger: a.logger, dummy: pickDummyPassword(a.users, a.Signup != nil)}
	a.useStore(a.store)

	a.keys = &signingKeys{issuer: a.Issuer, cfg: a.SigningKey, rings: a.rec.Keyrings, clock: a.clock, logger: a.logger,
		rotated: func(kid, reason string) {
			a.audit.emit(nil, eventKeyRotated, map[string]any{"kid": kid, "reason": reason})
		},
		restored: a.keysRestored, kek: kek}
	kr, err := a.keys.load(ctx)
	if err != nil {
		return fmt.Errorf("signing_key: %v", err)
	}
	a.keys.current.Store(kr)
	if !a.fapi2() { // under fapi2 ID tokens use the signing key, never RS256
		a.idKeys = a.newIDKeyring()
	}
	if a.idKeys != nil && a.anyOpenIDClient() {
		if _, err := a.idKeys.get(ctx); err != nil {
			return fmt.Errorf("ID token signing key: %v", err)
		}
	}
	a.verifier = oauthjwt.NewVerifier(oauthjwt.VerifierConfig{
		Issuer:                 a.Issuer,
		Keys:                   keySet{a},
		Leeway:                 a.leeway(),
		RequireAccessTokenType: true,
		AllowHS256:             a.anyHS256Client(),
		CacheSize:              a.TokenCacheSize,
	})
	// A restart knows every revocation before it serves a request; a store
	// that does not answer now is retried by the refresh loop.
	a.revoked = newRevocationList(a.rec.Revocations, a.clock, a.logger)
	if err := a.revoked.refresh(ctx); err != nil {
		a.logger.Warn("reading the revocation list from the store failed; will retry", zap.Error(err))
	}
	return nil
}

// anyHS256Client reports whether some client gets HS256 access tokens.
func (a *App) anyHS256Client() bool {
	for _, c := range a.clients {
		if c.hsKey != nil {
			return true
		}
	}
	return false
}

// leeway is the clock skew allowed when tokens are verified.
func (a *App) leeway() time.Duration {
	if a.Leeway == 0 {
		return oauthjwt.DefaultLeeway
	}
	return time.Duration(a.Leeway)
}

// activeApp is the running oauth app, for the admin API (Caddy's admin
// endpoints live outside any config). On a reload the new app starts
// before the old one stops.
var activeApp atomic.Pointer[App]

// Start implements caddy.App: it publishes the app to the admin API and
// starts the background loops, which end with the Caddy context (when this
// config is unloaded): keeping the keyring and the revocation list in step
// with the store, where another instance may have changed them, rotating
// the signing key on schedule, and sweeping expired entries out of a Caddy
// storage store.
func (a *App) Start() error {
	if err := a.checkRateLimitMemoryAtStart(); err != nil {
		return err
	}
	if a.SigningKey.File == "" {
		go a.every(keyringRefreshInterval, "keyring refresh", a.keys.refreshOnce)
	}
	if a.idKeys != nil {
		go a.every(keyringRefreshInterval, "ID token keyring refresh", a.refreshIDKeys)
	}
	if a.SigningKey.RotateEvery > 0 {
		every := time.Duration(a.SigningKey.RotateEvery)
		go a.every(rotationCheckInterval(every), "scheduled key rotation", a.keys.rotateOnce)
		if a.idKeys != nil {
			go a.every(rotationCheckInterval(every), "scheduled ID token key rotation", a.rotateIDKeys)
		}
	}
	go a.every(revocationRefresh, "revocation list refresh", a.revoked.refreshOnce)
	a.registry.prime(context.Background())
	if sw, ok := a.store.(sweeper); ok {
		go a.every(oauthstore.SweepEvery, "store sweep", func(ctx context.Context) { a.sweep(ctx, sw) })
	}
	activeApp.Store(a)
	return nil
}

// Stop implements caddy.App. The loops end with the Caddy context, which
// Caddy cancels once the config is unloaded.
func (a *App) Stop() error {
	activeApp.CompareAndSwap(a, nil)
	return nil
}

// reuseGrace is refresh_token_reuse_grace, its default when unset.
func (a *App) reuseGrace() time.Duration {
	if a.RefreshTokenReuseGrace == nil {
		return DefaultRefreshReuseGrace
	}
	return time.Duration(*a.RefreshTokenReuseGrace)
}

// useStore makes s the app's store and the owners of its records.
func (a *App) useStore(s Store) {
	a.store = s
	metered := meterStore(s)
	a.rec = oauthstore.New(metered, a.clock, a.logger, oauthstore.Lifetimes{
		RefreshIdle:  time.Duration(a.RefreshTokenTTL),
		RefreshMax:   time.Duration(a.RefreshTokenMaxTTL),
		RefreshGrace: a.reuseGrace(),
		SessionIdle:  time.Duration(a.SessionTTL),
		SessionMax:   time.Duration(a.SessionMaxTTL),
	})
	if a.keys != nil {
		a.keys.rings = a.rec.Keyrings
	}
	if a.idKeys != nil {
		a.idKeys.keys.rings = a.rec.Keyrings
	}
	if a.revoked != nil {
		a.revoked.store = a.rec.Revocations
	}
	a.directory.store = a.rec.Users
	a.registrations = oauthstore.NewRegistrations(metered, func() time.Time { return a.clock() }, a.logger)
	a.registry = &clientRegistry{
		static: a.clients,
		store:  oauthstore.NewClients(metered, a.clock, a.logger, func(c *storedClient) string { return c.ID }),
		provision: func(c *Client) error {
			return c.provision(caddy.NewReplacer(), a)
		},
		markTTL:   max(maxAccessTokenTTL, time.Duration(a.RefreshTokenMaxTTL)) + maxLeeway + time.Minute,
		logger:    a.logger,
		clock:     func() time.Time { return a.clock() }, // tests move a.clock
		known:     make(map[string]*clientEntry),
		others:    make(map[string]*clientEntry),
		maxOthers: clientCacheMax,
	}
}

// Verifier returns the verifier for tokens this app issues. It implements
// oauthjwt.Authority for caddyscope.
func (a *App) Verifier() *oauthjwt.Verifier { return a.verifier }

// TokenAudience returns the aud of issued tokens. It implements
// oauthjwt.Authority.
func (a *App) TokenAudience() string { return a.Audience }

// Client describes a registered client. It implements oauthjwt.Authority.
func (a *App) Client(id string) (oauthjwt.ClientInfo, bool, error) {
	// A client this instance cannot judge now (a store-kept client it has
	// not read, any client whose revocation mark it never read) is an
	// error: its tokens get 503, neither accepted nor thrown away.
	c, revokedBefore, ok, err := a.registry.issued(context.Background(), id)
	if err != nil || !ok {
		return oauthjwt.ClientInfo{}, false, err
	}
	return oauthjwt.ClientInfo{ID: c.ID, Name: c.Name, Metadata: c.Metadata, Scopes: c.Scopes, RevokedBefore: revokedBefore}, true, nil
}

// Keyring returns the current signing keyring.
func (a *App) Keyring() *oauthjwt.Keyring { return a.keys.current.Load() }

// RotateSigningKey makes a new active signing key, keeps the previous ones
// for verification until the tokens they signed have expired, saves the
// keyring in the store for every instance, and returns the new kid.
// The RS256 ID-token keyring, when there is one, is rotated with it.
func (a *App) RotateSigningKey(ctx context.Context) (string, error) {
	kid, err := a.keys.rotate(ctx)
	if err != nil {
		return kid, err
	}
	a.audit.emit(nil, eventKeyRotated, map[string]any{"kid": kid, "reason": "admin API"})
	if a.idKeys.loaded() == nil {
		return kid, nil
	}
	idKid, err := a.idKeys.keys.rotate(ctx)
	if err != nil {
		return kid, fmt.Errorf("the access-token key rotated (%s); the ID token key did not: %v", kid, err)
	}
	a.audit.emit(nil, eventKeyRotated, map[string]any{"kid": idKid, "reason": "admin API (ID token key)"})
	return kid, nil
}

// keySet resolves kids against the app's current keyring, so a keyring swap
// is seen by the verifier at once.
type keySet struct{ a *App }

func (k keySet) Lookup(kid string) (*oauthjwt.Key, bool) {
	if id, ok := strings.CutPrefix(kid, hs256KidPrefix); ok {
		// A client's HS256 key: Caddyfile clients only, never the keyring.
		if c, ok := k.a.clients[id]; ok && c.hsKey != nil {
			return c.hsKey, true
		}
		return nil, false
	}
	if key, ok := k.a.keys.current.Load().Lookup(kid); ok {
		return key, true
	}
	// Another instance may have rotated the key: read the keyring again,
	// at most once per keyringMissRefresh whatever kids are sent.
	if k.a.keys.refreshOnMiss() {
		return k.a.keys.current.Load().Lookup(kid)
	}
	return nil, false
}

// validateIssuer applies RFC 8414 §2: https, no query, no fragment. Plain
// http is allowed for loopback hosts, for local development.
func validateIssuer(iss string) error { return oauthjwt.CheckIssuerURL(iss) }

// issuerIsLoopback reports whether the issuer's host is a loopback name or
// address.
func issuerIsLoopback(iss string) bool {
	u, err := url.Parse(iss)
	return err == nil && isLoopback(u.Hostname())
}

func isLoopback(host string) bool { return oauthjwt.IsLoopbackHost(host) }

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ oauthjwt.Authority = (*App)(nil)
	_ oauthjwt.KeySet    = keySet{}
)
