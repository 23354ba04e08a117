package caddyscope

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"

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
// jti), the algorithm pinned to the key, aud checked against Audience.
// Profile relaxes the profile for issuers that make JWTs of their own
// shape (Keycloak, Auth0, Entra ID, Okta, Google), with the claims to read
// the client, the scopes and the roles from (see ProfileRFC9068 and the
// other Profile* constants). A token that
// is not a JWT is introspected (RFC 7662) at the one issuer of
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

	// Profile is the shape of the issuer's JWT access tokens:
	// "rfc9068" (the default: RFC 9068 exactly), "jwt" (a generic JWT
	// access token, read with the claims given below), or a preset for
	// a provider that issues its own shape by default: "keycloak",
	// "auth0", "entra", "okta", "google". See the Profile* constants.
	Profile string `json:"profile,omitempty"`

	// ClientIDClaim lists the claims that may name the client, the first
	// present one winning (Entra ID: azp in v2 tokens, appid in v1).
	// Overrides the profile's. Not with rfc9068.
	ClientIDClaim []string `json:"client_id_claim,omitempty"`

	// ScopeClaim names the claim holding the granted scopes, a
	// space-delimited string or an array of strings (scope, scp).
	// Overrides the profile's. Not with rfc9068.
	ScopeClaim string `json:"scope_claim,omitempty"`

	// RolesClaim is the path of the claim holding the subject's roles,
	// which rules can require: "roles", "groups", "realm_access.roles",
	// "resource_access.<client>.roles" (dots separate nested members), or
	// a namespaced claim such as "https://example.com/roles" (a name
	// with "://" is one claim name, dots included). Overrides the
	// profile's. Not with rfc9068.
	RolesClaim string `json:"roles_claim,omitempty"`
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
	mapping                           *oauthjwt.ClaimMapping // nil: RFC 9068
	key                               string                 // identifies these settings in issuerPool
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
	if r.mapping, err = is.claimMapping(); err != nil {
		return nil, nil, err
	}
	if r.mapping != nil && !verifiesJWTs {
		return nil, nil, fmt.Errorf("profile: %s applies to JWTs verified with the issuer's keys, and this issuer introspects every token (introspection_url without jwks_url); introspection answers keep their RFC 7662 members", is.Profile)
	}
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

// localHasNoOptions reports whether `issuer local` came without options:
// the local app's settings are the app's own.
func localHasNoOptions(is *Issuer) bool {
	zero := Issuer{Issuer: LocalIssuer}
	a, _ := json.Marshal(is)
	b, _ := json.Marshal(zero)
	return string(a) == string(b)
}
