package oauthjwt

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenSize bounds the length of a token accepted for verification. Longer
// input is refused before any decoding, so a client cannot make the gateway
// parse megabytes of base64 per request.
const MaxTokenSize = 8 << 10

// DefaultLeeway is the clock skew allowed on exp, nbf and iat.
const DefaultLeeway = 30 * time.Second

// Verification errors. Each wraps the golang-jwt error when there is one.
var (
	ErrTokenTooLarge   = errors.New("token too large")
	ErrUnknownKey      = errors.New("token signed by an unknown key")
	ErrAlgMismatch     = errors.New("token algorithm does not match its key")
	ErrForbiddenHeader = errors.New("token header names a key source that is never trusted")
	ErrNotAccessToken  = errors.New("token is not an access token")
	ErrNoIssuer        = errors.New("verifier has no issuer configured")
)

// KeySet finds verification keys by kid.
type KeySet interface {
	Lookup(kid string) (*Key, bool)
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Issuer is the exact iss value required.
	Issuer string
	// Keys resolves the kid of a token to a key pinned to one algorithm.
	Keys KeySet
	// Leeway is the clock skew allowed; zero means DefaultLeeway, and a
	// negative value means none.
	Leeway time.Duration
	// RequireAccessTokenType requires the RFC 9068 profile: typ "at+jwt"
	// (§4 item 1) and the claims §2.2 makes REQUIRED (sub, client_id, aud,
	// iat, jti, besides iss and exp).
	RequireAccessTokenType bool
	// Mapping, when set, accepts the JWT access tokens an issuer makes in
	// its own shape instead of the RFC 9068 profile, and takes precedence
	// over RequireAccessTokenType. The header typ may be "JWT" (or its
	// full form "application/jwt", RFC 7515 §4.1.9), "at+jwt",
	// "application/at+jwt" or absent; any other typ (an ID token's, a DPoP
	// proof's, a logout token's…) is refused. aud and exp are required,
	// and so is the client id the mapping reads; sub, iat and jti are
	// not. The algorithm stays pinned to the key, iss is compared exactly
	// and the forbidden header parameters stay forbidden. The client id,
	// scopes and roles of the claims come from the mapping, once per
	// token, before the cache. Nil: client_id, and the scopes of scope and
	// scp, as RFC 9068 §2.2 names them.
	Mapping *ClaimMapping
	// CacheSize bounds the verified-token cache; zero means a default size
	// and a negative value turns the cache off.
	CacheSize int
	// AllowHS256 accepts HS256 tokens whose kid resolves to an HS256 key
	// (NewHMACKey). Off, HS256 is refused whatever the kid.
	AllowHS256 bool
}

// Verifier checks JWT access tokens: signature with a key pinned to its
// algorithm, issuer, expiry, not-before and issued-at with a small leeway,
// and the header parameters it refuses (jku, x5u, jwk, x5c, crit).
// Verified tokens are kept in a bounded cache keyed by the exact token text
// until they expire, so a token is verified once, not on every request.
type Verifier struct {
	cfg    VerifierConfig
	parser *jwt.Parser
	cache  *tokenCache
	// issued holds the tokens Remember was given until their first use,
	// which moves them to cache: tokens issued and never used (a client
	// that fetches a token per job, a flood of token requests) then evict
	// only each other, oldest first, never the tokens requests are using.
	// A quarter of cache's size.
	issued *issuedTokens
	// intern shares the strings and lists the cached claims repeat.
	intern *interner
	now    func() time.Time
}

// NewVerifier builds a Verifier.
func NewVerifier(cfg VerifierConfig) *Verifier {
	leeway := cfg.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	cfg.Leeway = leeway
	methods := SupportedAlgs
	if cfg.AllowHS256 {
		methods = append(slices.Clone(SupportedAlgs), HS256)
	}
	v := &Verifier{
		cfg: cfg,
		parser: jwt.NewParser(
			jwt.WithValidMethods(methods),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(leeway),
			jwt.WithStrictDecoding(),
		),
		now: time.Now,
	}
	if cfg.CacheSize >= 0 {
		v.cache = newTokenCache(cfg.CacheSize)
		v.issued = newIssuedTokens(max(v.cache.Cap()/4, cacheShards))
		v.intern = newInterner()
	}
	return v
}

// CacheCap is the most verified tokens the verifier keeps; 0 without a
// cache.
func (v *Verifier) CacheCap() int {
	if v.cache == nil {
		return 0
	}
	return v.cache.Cap()
}

// Issuer returns the issuer this verifier accepts.
func (v *Verifier) Issuer() string { return v.cfg.Issuer }

// Verify checks token and returns its claims. The claims are shared with
// other callers through the cache and must not be modified.
func (v *Verifier) Verify(token string) (*Claims, error) {
	c, _, err := v.VerifyCached(token)
	return c, err
}

// VerifyCached is Verify that also reports whether the claims came from
// the cache of verified tokens (no signature was checked).
func (v *Verifier) VerifyCached(token string) (*Claims, bool, error) {
	if len(token) > MaxTokenSize {
		return nil, false, ErrTokenTooLarge
	}
	if v.cfg.Issuer == "" {
		// golang-jwt skips the iss check when none is expected.
		return nil, false, ErrNoIssuer
	}
	if v.cache == nil {
		c, err := v.verify(token, nil)
		return c, false, err
	}
	// One digest of the token for every lookup and the insert.
	key := cacheKey(token)
	now := v.now()
	if c, ok := v.cache.getKey(&key, now); ok {
		return c, true, nil
	}
	if c, ok := v.issued.Take(&key, now); ok {
		v.cache.putKey(&key, c, c.ExpiresAt.Time, now)
		return c, true, nil
	}
	c, err := v.verify(token, &key)
	return c, false, err
}

// Remember puts the claims of a token this process has just signed into
// the cache of verified tokens (its area for issued tokens not used yet,
// see Verifier.issued), so the token's first use skips the
// signature check (a gateway that issues and checks tokens in one process
// knows they are valid). Nothing is checked: only the signer may call it,
// with the claims it signed into token, which neither it nor anyone
// may change afterwards, their lists included (the cached claims share
// them). The payload is read from token for Claim. Tokens too large to verify, tokens without exp, and a
// verifier without a cache or with a ClaimMapping (its claims are read
// another way) remember nothing.
func (v *Verifier) Remember(token string, c *Claims) {
	if v.cache == nil || v.cfg.Mapping != nil || c == nil || c.ExpiresAt == nil || len(token) > MaxTokenSize {
		return
	}
	c.setPayload(token)
	c.scopes = c.mergeScopes()
	c.scopeText = JoinScope(c.scopes)
	c.finish(v.cfg.Issuer, v.intern)
	key := cacheKey(token)
	v.issued.Put(&key, c, c.ExpiresAt.Time)
}

// verify checks a token that is not in the cache, and caches it under key
// (its cacheKey) when the verifier has a cache.
func (v *Verifier) verify(token string, key *CacheKey) (*Claims, error) {
	claims := new(Claims)
	var used *Key
	if _, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		k, err := v.key(t)
		used = k
		if err != nil {
			return nil, err
		}
		return k.Public, nil
	}); err != nil {
		return nil, err
	}
	if used != nil && used.hmac != nil {
		if err := checkHMACClaims(used, claims, v.now()); err != nil {
			return nil, err
		}
	}
	switch {
	case v.cfg.Mapping != nil:
		if len(claims.Audience) == 0 {
			return nil, fmt.Errorf("%w: aud", jwt.ErrTokenRequiredClaimMissing)
		}
	case v.cfg.RequireAccessTokenType:
		if err := checkProfileClaims(claims); err != nil {
			return nil, err
		}
	}
	claims.setPayload(token)
	if v.cfg.Mapping != nil {
		if err := v.cfg.Mapping.apply(claims); err != nil {
			return nil, err
		}
	} else {
		claims.scopes = claims.mergeScopes()
		claims.scopeText = JoinScope(claims.scopes)
	}
	claims.finish(v.cfg.Issuer, v.intern)
	if key != nil {
		v.cache.putKey(key, claims, claims.ExpiresAt.Time, v.now())
	}
	return claims, nil
}

// checkProfileClaims requires the claims RFC 9068 §2.2 makes REQUIRED
// beyond iss and exp, which the parser checks. An empty client_id would
// otherwise put every such token in one rate-limit bucket.
func checkProfileClaims(c *Claims) error {
	missing := ""
	switch {
	case c.Subject == "":
		missing = "sub"
	case c.ClientID == "":
		missing = "client_id"
	case len(c.Audience) == 0:
		missing = "aud"
	case c.IssuedAt == nil:
		missing = "iat"
	case c.ID == "":
		missing = "jti"
	default:
		return nil
	}
	return fmt.Errorf("%w: %s", jwt.ErrTokenRequiredClaimMissing, missing)
}

// forbiddenHeaders are JOSE header parameters that point at keys or demand
// extensions; an access token of ours never carries them (RFC 8725 §3.10).
var forbiddenHeaders = []string{"jku", "x5u", "jwk", "x5c", "crit"}

// HasForbiddenHeader reports whether a JWS header carries a key reference
// or a critical extension (forbiddenHeaders), which no token or assertion
// this project accepts may use.
func HasForbiddenHeader(header map[string]any) bool {
	for _, h := range forbiddenHeaders {
		if _, ok := header[h]; ok {
			return true
		}
	}
	return false
}

// key finds the key a token names, pinned to its algorithm.
func (v *Verifier) key(t *jwt.Token) (*Key, error) {
	if HasForbiddenHeader(t.Header) {
		return nil, ErrForbiddenHeader
	}
	switch {
	case v.cfg.Mapping != nil:
		if !mappedTokenType(t.Header) {
			return nil, ErrNotAccessToken
		}
	case v.cfg.RequireAccessTokenType:
		typ, _ := t.Header["typ"].(string)
		if !strings.EqualFold(typ, AccessTokenType) && !strings.EqualFold(typ, "application/"+AccessTokenType) {
			return nil, ErrNotAccessToken
		}
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" || v.cfg.Keys == nil {
		return nil, ErrUnknownKey
	}
	k, ok := v.cfg.Keys.Lookup(kid)
	if !ok {
		return nil, ErrUnknownKey
	}
	if t.Method.Alg() != k.Alg {
		return nil, ErrAlgMismatch
	}
	return k, nil
}

// mappedTokenType reports whether a header's typ is one a token read with
// a ClaimMapping may carry: none, the generic JWT (RFC 7519 §5.1), or the
// access-token type of RFC 9068 §2.1. Media types compare ignoring case,
// and "application/" may be left out (RFC 7515 §4.1.9).
func mappedTokenType(header map[string]any) bool {
	v, ok := header["typ"]
	if !ok {
		return true
	}
	typ, ok := v.(string)
	if !ok {
		return false
	}
	if len(typ) > len("application/") && strings.EqualFold(typ[:len("application/")], "application/") {
		typ = typ[len("application/"):]
	}
	return strings.EqualFold(typ, "JWT") || strings.EqualFold(typ, AccessTokenType)
}

// Describe turns a verification error into a short error_description for a
// WWW-Authenticate header (RFC 6750 §3): no token content, no quotes.
func Describe(err error) string {
	switch {
	case errors.Is(err, ErrTokenTooLarge):
		return "token too large"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token not yet valid"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, ErrNoIssuer):
		return "token issuer not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "token audience not accepted"
	case errors.Is(err, ErrUnknownKey):
		return "token signed by an unknown key"
	case errors.Is(err, ErrNotAccessToken):
		return "token is not an access token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, ErrAlgMismatch),
		errors.Is(err, ErrForbiddenHeader), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token signature invalid"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token lacks a required claim"
	}
	return "token malformed"
}
