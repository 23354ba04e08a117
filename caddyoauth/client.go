package caddyoauth

import (
	"crypto/sha256"
	"encoding/json"
	"regexp"
	"slices"
	"time"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"github.com/caddyserver/caddy/v2"
)

// ClientSettings is how a client is registered (RFC 6749 §2, RFC 7591 §2):
// the one shape of a client's settings, embedded by the Caddyfile/JSON
// client (Client), the client registered through the admin API and kept in
// the store (storedClient), and the admin API's answers (clientView), so a
// client field is added once. Credentials are not here: they are never
// shown back.
type ClientSettings struct {
	// ClientID identifies the client (RFC 6749 §2.2): 1 to 128 of
	// A-Z a-z 0-9 . _ ~ : -
	ID string `json:"client_id"`

	// Name is shown on pages and exposed as {oauth.client_name}.
	Name string `json:"name,omitempty"`

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

	// DPoPBoundAccessTokens requires a DPoP proof (RFC 9449) at the token
	// endpoint for every token of this client (§5.2's client metadata):
	// its access tokens are always sender-constrained. Caddyfile:
	// require_dpop.
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`

	// RequirePushedAuthorizationRequests makes the authorization endpoint
	// take this client's requests only through the PAR endpoint (RFC 9126
	// §6): a request in the browser's URL is refused.
	RequirePushedAuthorizationRequests bool `json:"require_pushed_authorization_requests,omitempty"`

	// Scopes the client may be granted (RFC 6749 §3.3). A token request
	// without `scope` gets all of them.
	Scopes []string `json:"scopes,omitempty"`

	// Resources are the resource indicators (RFC 8707) the client may ask
	// for with the `resource` parameter: absolute URIs without a fragment,
	// each the exact `aud` of a token for that API. A token request
	// without `resource` gets all of them. Without a list, the client may
	// ask for any resource an oauth_scope route of the configuration
	// declares or for the app's audience, and gets the app's audience
	// when it asks for none.
	Resources []string `json:"resources,omitempty"`

	// AccessTokenTTL overrides the app's access-token lifetime.
	AccessTokenTTL caddy.Duration `json:"access_token_ttl,omitempty"`

	// AuthMethod pins how the client authenticates at the token endpoint
	// (RFC 7591 §2 token_endpoint_auth_method): client_secret_basic,
	// client_secret_post, private_key_jwt (needs JWKS or JWKSURI, no
	// secret), client_secret_jwt (needs a plain Secret of 32+ characters,
	// the HMAC key), tls_client_auth (a certificate from a CA the site's
	// TLS client_auth trusts, RFC 8705 §2.1), self_signed_tls_client_auth
	// (a certificate whose key is in JWKS or JWKSURI, §2.2) or none
	// (public clients). Default: basic or post for a
	// client with a secret, none for a public one.
	AuthMethod string `json:"token_endpoint_auth_method,omitempty"`

	// TLSClientAuthSubjectDN, TLSClientAuthSANDNS, TLSClientAuthSANURI,
	// TLSClientAuthSANIP and TLSClientAuthSANEmail say which certificate
	// a tls_client_auth client presents (RFC 8705 §2.1.2): exactly one is
	// set, the subject DN in RFC 4514 form or one subject alternative name.
	TLSClientAuthSubjectDN string `json:"tls_client_auth_subject_dn,omitempty"`
	TLSClientAuthSANDNS    string `json:"tls_client_auth_san_dns,omitempty"`
	TLSClientAuthSANURI    string `json:"tls_client_auth_san_uri,omitempty"`
	TLSClientAuthSANIP     string `json:"tls_client_auth_san_ip,omitempty"`
	TLSClientAuthSANEmail  string `json:"tls_client_auth_san_email,omitempty"`

	// TLSClientCertificateBoundAccessTokens binds the client's access
	// tokens to the TLS client certificate it presents at the token
	// endpoint (RFC 8705 §3.4), also when it does not authenticate with
	// it (a public client, a client with a secret); a token request
	// without a certificate is refused. Tokens of a client that
	// authenticates with a certificate are always bound.
	TLSClientCertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`

	// JWKS is the client's public keys as an inline JWK Set, for
	// private_key_jwt.
	JWKS json.RawMessage `json:"jwks,omitempty"`

	// JWKSURI is where the client publishes its JWK Set (fetched on first
	// use, refreshed hourly and on an unknown kid, at most every 30 s).
	JWKSURI string `json:"jwks_uri,omitempty"`

	// AssertionIssuer is the iss of the assertions the client presents in
	// the JWT bearer grant (RFC 7523 §2.1), whose keys are in JWKS,
	// JWKSFile or JWKSURI. Default: the client_id (the client signs its
	// own assertions, as a service account does).
	AssertionIssuer string `json:"assertion_issuer,omitempty"`

	// AssertionSubjects are the subjects the client may present in the
	// JWT bearer grant; "*" allows any.
	AssertionSubjects []string `json:"assertion_subjects,omitempty"`

	// PostLogoutRedirectURIs are where the end-session endpoint may send
	// the person after signing out at the client's request (OpenID
	// Connect RP-Initiated Logout 1.0 §3), compared as exact strings.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`

	// IDTokenSignedResponseAlg is the alg of the client's OpenID Connect
	// ID tokens (OpenID Connect Dynamic Client Registration §2): RS256 (the
	// default, which every relying party supports) or the algorithm of
	// the app's signing key.
	IDTokenSignedResponseAlg string `json:"id_token_signed_response_alg,omitempty"`

	// Metadata is free-form data exposed as {oauth.client.metadata.<key>},
	// for instance a tier that selects a rate-limit zone.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Client is a registered OAuth client (RFC 6749 §2): its settings and its
// credentials, as the Caddyfile or JSON config gives them.
type Client struct {
	ClientSettings

	// SecretHash is the hash of the client secret: `sha256:<hex>` (for
	// generated high-entropy secrets, see `caddy oauth-secret`), or a bcrypt
	// or argon2id hash as `caddy hash-password` prints it.
	SecretHash string `json:"secret_hash,omitempty"`

	// Secret is the plain client secret, typically `{env.NAME}`. At least 16
	// characters. Use SecretHash to keep secrets out of the config.
	Secret string `json:"secret,omitempty"`

	// JWKSFile is a file holding the client's JWK Set.
	JWKSFile string `json:"jwks_file,omitempty"`

	// AccessTokenKey makes the client's access tokens HS256 under this
	// shared key (32+ bytes, typically {env.NAME}) instead of the server's
	// public-key signature, for APIs that verify them with the key. The
	// kid is "hs256:<client_id>"; the key is never published. The client
	// knows the key, so its tokens are accepted only as its own: sub and
	// client_id are the client, which limits it to client_credentials.
	AccessTokenKey string `json:"access_token_key,omitempty"`

	// Made at provision.
	secret  secretChecker
	ttl     time.Duration
	keys    *clientKeys   // private_key_jwt, self_signed_tls_client_auth
	cert    *certMatch    // tls_client_auth
	hmacKey []byte        // client_secret_jwt
	hsKey   *oauthjwt.Key // HS256 access tokens (AccessTokenKey)
}

var (
	clientIDPattern    = regexp.MustCompile(`^[A-Za-z0-9._~:-]{1,128}$`)
	metadataKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// allowsGrant reports whether the client may use grant type g.
func (c *Client) allowsGrant(g string) bool { return slices.Contains(c.GrantTypes, g) }

// newFakeClient is authenticated against when a request names an unknown
// client, so that both paths cost one hash comparison.
func newFakeClient() *Client {
	return &Client{ClientSettings: ClientSettings{ID: "\x00unknown"}, secret: newDigestChecker(sha256.Sum256([]byte("\x00no client has this secret")))}
}
