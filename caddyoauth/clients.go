package caddyoauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// Grant types (RFC 6749 §4, RFC 7523 §2.1).
const (
	GrantClientCredentials = "client_credentials"
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
)

// supportedGrants are the grant types this version implements. The
// implicit and resource-owner password grants are not: RFC 9700 §2.1.2
// and §2.4 say they must not be used.
var supportedGrants = []string{GrantClientCredentials, GrantAuthorizationCode, GrantRefreshToken, GrantJWTBearer}

// minSecretLen is the shortest plain `secret` accepted. Generated secrets
// (`caddy oauth-secret`) have 43 characters, 256 bits.
const minSecretLen = 16

// secretCacheTTL bounds how long a slow-hash verification is remembered.
const secretCacheTTL = 10 * time.Minute

var (
	clientIDPattern    = regexp.MustCompile(`^[A-Za-z0-9._~:-]{1,128}$`)
	metadataKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// Client is a registered OAuth client (RFC 6749 §2).
type Client struct {
	// ClientID identifies the client (RFC 6749 §2.2): 1 to 128 of
	// A-Z a-z 0-9 . _ ~ : -
	ID string `json:"client_id"`

	// Name is shown on pages and exposed as {oauth.client_name}.
	Name string `json:"name,omitempty"`

	// SecretHash is the hash of the client secret: `sha256:<hex>` (for
	// generated high-entropy secrets, see `caddy oauth-secret`), or a bcrypt
	// or argon2id hash as `caddy hash-password` prints it.
	SecretHash string `json:"secret_hash,omitempty"`

	// Secret is the plain client secret, typically `{env.NAME}`. At least 16
	// characters. Use SecretHash to keep secrets out of the config.
	Secret string `json:"secret,omitempty"`

	// Public marks a client that cannot keep a secret (RFC 6749 §2.1).
	Public bool `json:"public,omitempty"`

	// GrantTypes the client may use. Default: client_credentials.
	GrantTypes []string `json:"grant_types,omitempty"`

	// RedirectURIs are where the authorization endpoint may send the
	// person back (RFC 6749 §3.1.2), compared as exact strings (RFC 9700
	// §4.1.3). Required with the authorization_code grant.
	RedirectURIs []string `json:"redirect_uris,omitempty"`

	// RequirePKCE makes PKCE (RFC 7636, S256) mandatory for a confidential
	// client too. It is always mandatory for public clients.
	RequirePKCE bool `json:"require_pkce,omitempty"`

	// Scopes the client may be granted (RFC 6749 §3.3). A token request
	// without `scope` gets all of them.
	Scopes []string `json:"scopes,omitempty"`

	// AccessTokenTTL overrides the app's access-token lifetime.
	AccessTokenTTL caddy.Duration `json:"access_token_ttl,omitempty"`

	// AuthMethod pins how the client authenticates at the token endpoint
	// (RFC 7591 §2 token_endpoint_auth_method): client_secret_basic,
	// client_secret_post, private_key_jwt (needs JWKS or JWKSURI, no
	// secret), client_secret_jwt (needs a plain Secret of 32+ characters,
	// the HMAC key) or none (public clients). Default: basic or post for a
	// client with a secret, none for a public one.
	AuthMethod string `json:"token_endpoint_auth_method,omitempty"`

	// JWKS is the client's public keys as an inline JWK Set, for
	// private_key_jwt.
	JWKS json.RawMessage `json:"jwks,omitempty"`

	// JWKSFile is a file holding the client's JWK Set.
	JWKSFile string `json:"jwks_file,omitempty"`

	// JWKSURI is where the client publishes its JWK Set (fetched on first
	// use, refreshed hourly and on an unknown kid, at most every 30 s).
	JWKSURI string `json:"jwks_uri,omitempty"`

	// AccessTokenKey makes the client's access tokens HS256 under this
	// shared key (32+ bytes, typically {env.NAME}) instead of the server's
	// public-key signature, for APIs that verify them with the key. The
	// kid is "hs256:<client_id>"; the key is never published. The client
	// knows the key, so its tokens are accepted only as its own: sub and
	// client_id are the client, which limits it to client_credentials.
	AccessTokenKey string `json:"access_token_key,omitempty"`

	// AssertionIssuer is the iss of the assertions the client presents in
	// the JWT bearer grant (RFC 7523 §2.1), whose keys are in JWKS,
	// JWKSFile or JWKSURI. Default: the client_id (the client signs its
	// own assertions, as a service account does).
	AssertionIssuer string `json:"assertion_issuer,omitempty"`

	// AssertionSubjects are the subjects the client may present in the
	// JWT bearer grant; "*" allows any.
	AssertionSubjects []string `json:"assertion_subjects,omitempty"`

	// Metadata is free-form data exposed as {oauth.client.metadata.<key>},
	// for instance a tier that selects a rate-limit zone.
	Metadata map[string]string `json:"metadata,omitempty"`

	secret  secretChecker
	ttl     time.Duration
	keys    *clientKeys   // private_key_jwt
	hmacKey []byte        // client_secret_jwt
	hsKey   *oauthjwt.Key // HS256 access tokens (AccessTokenKey)
}

func (c *Client) provision(repl *caddy.Replacer, a *App) error {
	if !clientIDPattern.MatchString(c.ID) {
		return errors.New("client_id: must be 1 to 128 of A-Z a-z 0-9 . _ ~ : -")
	}
	secret := repl.ReplaceKnown(c.Secret, "")
	if err := c.provisionAuthMethod(secret, a); err != nil {
		return err
	}
	switch {
	case c.AuthMethod == authPrivateKeyJWT:
		c.secret = nil
	case c.Public && (c.SecretHash != "" || c.Secret != ""):
		return errors.New("public: a public client has no secret; remove secret/secret_hash or public")
	case c.Public:
		c.secret = nil
	case c.SecretHash != "" && c.Secret != "":
		return errors.New("secret_hash and secret: set one, not both")
	case c.SecretHash != "":
		if slices.Contains(demoSecretHashes, strings.ToLower(c.SecretHash)) && !issuerIsLoopback(a.Issuer) {
			return errors.New("secret_hash: this is a demo secret published in the README; generate a real one with `caddy oauth-secret` (demo secrets work only with a localhost issuer)")
		}
		chk, err := parseSecretHash(c.SecretHash)
		if err != nil {
			return fmt.Errorf("secret_hash: %v", err)
		}
		c.secret = chk
	case c.Secret != "":
		if secret == "" {
			return fmt.Errorf("secret: %q is empty after placeholders are replaced", c.Secret)
		}
		if len(secret) < minSecretLen {
			return fmt.Errorf("secret: shorter than %d characters; generate one with `caddy oauth-secret`", minSecretLen)
		}
		c.secret = newDigestChecker(sha256.Sum256([]byte(secret)))
	default:
		return errors.New("secret_hash: a confidential client needs secret_hash or secret (or mark it public)")
	}

	if err := c.checkGrants(); err != nil {
		return err
	}
	if err := c.provisionJWTBearer(); err != nil {
		return err
	}
	if err := c.provisionHS256(repl); err != nil {
		return err
	}
	if len(c.Scopes) == 0 {
		return errors.New("scopes: at least one scope is required")
	}
	for _, s := range c.Scopes {
		if !oauthjwt.ValidScopeToken(s) {
			return fmt.Errorf("scopes: %q is not a valid scope token (RFC 6749 §3.3)", s)
		}
	}
	for k := range c.Metadata {
		if !metadataKeyPattern.MatchString(k) {
			return fmt.Errorf("metadata: key %q must be 1 to 64 of A-Z a-z 0-9 _ . -", k)
		}
	}
	c.ttl = time.Duration(a.AccessTokenTTL)
	if c.AccessTokenTTL != 0 {
		if c.AccessTokenTTL < caddy.Duration(minAccessTokenTTL) || c.AccessTokenTTL > caddy.Duration(maxAccessTokenTTL) {
			return fmt.Errorf("access_token_ttl: %s is outside 1m..24h", time.Duration(c.AccessTokenTTL))
		}
		c.ttl = time.Duration(c.AccessTokenTTL)
	}
	return nil
}

// allowsGrant reports whether the client may use grant type g.
func (c *Client) allowsGrant(g string) bool { return slices.Contains(c.GrantTypes, g) }

// checkSecret compares a presented secret with the client's, in constant
// time for the fast hashes.
func (c *Client) checkSecret(presented string) bool {
	if c.secret == nil {
		return false
	}
	return c.secret.check(presented)
}

// secretChecker verifies a presented client secret.
type secretChecker interface {
	check(presented string) bool
}

// digestChecker compares SHA-256 digests in constant time.
type digestChecker struct{ digest [32]byte }

func newDigestChecker(d [32]byte) *digestChecker { return &digestChecker{digest: d} }

func (d *digestChecker) check(presented string) bool {
	got := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(got[:], d.digest[:]) == 1
}

// slowHashChecker verifies bcrypt or argon2id hashes and remembers the
// digest of the last secret that matched for a while, so the token endpoint
// pays for the slow hash once per secret, not once per request. Only a
// successful comparison is remembered; a wrong secret always pays in full.
type slowHashChecker struct {
	hash     []byte
	comparer caddyauth.Comparer

	mu     sync.Mutex
	good   [32]byte
	expiry time.Time
}

func (s *slowHashChecker) check(presented string) bool {
	digest := sha256.Sum256([]byte(presented))
	now := time.Now()
	s.mu.Lock()
	cached := now.Before(s.expiry) && subtle.ConstantTimeCompare(digest[:], s.good[:]) == 1
	s.mu.Unlock()
	if cached {
		return true
	}
	if !acquireSlowHashSlot() {
		return false
	}
	ok, err := s.comparer.Compare(s.hash, []byte(presented))
	releaseSlowHashSlot()
	if err != nil || !ok {
		return false
	}
	s.mu.Lock()
	s.good, s.expiry = digest, now.Add(secretCacheTTL)
	s.mu.Unlock()
	return true
}

// slowHashSlots bounds how many bcrypt or argon2id comparisons run at once.
// Client ids are not secret, so anyone can send wrong secrets for a client
// with a slow hash; unbounded, a few hundred concurrent guesses would take
// every core (bcrypt) or gigabytes (argon2id at 46 MiB each). A request
// that finds no slot within slowHashWait fails authentication; secrets
// already verified are served from the cache without a slot.
var slowHashSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

const slowHashWait = time.Second

func acquireSlowHashSlot() bool {
	select {
	case slowHashSlots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(slowHashWait)
	defer t.Stop()
	select {
	case slowHashSlots <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

func releaseSlowHashSlot() { <-slowHashSlots }

// parseSecretHash reads `sha256:<64 hex>`, a bcrypt hash ($2a$, $2b$, $2y$)
// or an argon2id hash ($argon2id$), each optionally base64-encoded as older
// `caddy hash-password` versions printed them.
func parseSecretHash(h string) (secretChecker, error) {
	if chk, err := parseSecretHashText(h); err == nil || strings.HasPrefix(h, "sha256:") || strings.HasPrefix(h, "$") {
		return chk, err
	}
	if dec, err := base64.StdEncoding.DecodeString(h); err == nil && len(dec) > 0 && dec[0] == '$' {
		return parseSecretHashText(string(dec))
	}
	return nil, errors.New("not a recognized hash: use sha256:<hex> (`caddy oauth-secret`) or a bcrypt/argon2id hash (`caddy hash-password`)")
}

func parseSecretHashText(h string) (secretChecker, error) {
	switch {
	case strings.HasPrefix(h, "sha256:"):
		raw, err := hex.DecodeString(strings.TrimPrefix(h, "sha256:"))
		if err != nil || len(raw) != sha256.Size {
			return nil, errors.New("sha256: needs 64 hex digits")
		}
		return newDigestChecker([32]byte(raw)), nil
	case strings.HasPrefix(h, "$"):
		ph, err := parseSlowHash(h)
		if err != nil {
			return nil, err
		}
		return &slowHashChecker{hash: ph.hash, comparer: ph.comparer}, nil
	}
	return nil, errors.New("not a recognized hash: use sha256:<hex> (`caddy oauth-secret`) or a bcrypt/argon2id hash (`caddy hash-password`)")
}

// demoSecretHashes are the secret hashes of the demo clients in
// Caddyfile.example, whose secrets the README publishes. They are refused
// unless the issuer is a loopback address, so a copied example cannot serve
// tokens to anyone who read the README. A test keeps this list in step
// with the example.
var demoSecretHashes = []string{
	"sha256:6fdd8e6008f83508d05d0878666ffb26f70af13148bf21dff63f2c918bcb190b", // reports-demo-secret-not-for-production
	"sha256:09407dba61308017ab8e85a26126f7477c2d796eafe986a30001e0e33ae1c4f1", // provisioning-demo-secret-not-for-production
	"sha256:9b7b7a49182930707a9ba543c0ea8c417a01a04b44c8ac256cf0a58771f4732a", // partner-demo-secret-not-for-production
	"sha256:b8d5967ef8785ed5c840febc4bc51bbc9d8ac143d06d6941fd52e02485b72375", // notes-web-demo-secret-not-for-production
}

// demoPasswordHashes are the password hashes of the demo users in
// Caddyfile.example, whose passwords the README publishes; refused unless
// the issuer is a loopback address, as demoSecretHashes are.
var demoPasswordHashes = []string{
	"$2a$10$rUPoffQ7gPKBtaMxw6kwCOLBLmjci2.BfVxiYhffvXiszgq6HivWC", // alice-demo-password
}

// newFakeClient is authenticated against when a request names an unknown
// client, so that both paths cost one hash comparison.
func newFakeClient() *Client {
	return &Client{ID: "\x00unknown", secret: newDigestChecker(sha256.Sum256([]byte("\x00no client has this secret")))}
}

// hs256KidPrefix starts the kid of a client's HS256 access tokens.
const hs256KidPrefix = "hs256:"

// provisionHS256 sets up the client's HS256 access-token key.
func (c *Client) provisionHS256(repl *caddy.Replacer) error {
	if c.AccessTokenKey == "" {
		return nil
	}
	for _, g := range c.GrantTypes {
		if g != GrantClientCredentials {
			return fmt.Errorf("access_token_key: HS256 tokens are the client's own (sub is the client), so only the client_credentials grant fits, not %s", g)
		}
	}
	key := repl.ReplaceKnown(c.AccessTokenKey, "")
	k, err := oauthjwt.NewHMACKey(hs256KidPrefix+c.ID, c.ID, []byte(key))
	if err != nil {
		return fmt.Errorf("access_token_key: %v", err)
	}
	c.hsKey = k
	return nil
}
