package caddyoauth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"github.com/caddyserver/caddy/v2"
)

// minSecretLen is the shortest plain `secret` accepted. Generated secrets
// (`caddy oauth-secret`) have 43 characters, 256 bits.
const minSecretLen = 16

func (c *Client) provision(repl *caddy.Replacer, a *App) error {
	if !clientIDPattern.MatchString(c.ID) {
		return errors.New("client_id: must be 1 to 128 of A-Z a-z 0-9 . _ ~ : -")
	}
	secret := repl.ReplaceKnown(c.Secret, "")
	if err := c.provisionAuthMethod(secret, a); err != nil {
		return err
	}
	switch {
	case c.AuthMethod == authPrivateKeyJWT, c.usesMTLS():
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
	if err := c.checkIDTokenAlg(a.SigningKey.Algorithm); err != nil {
		return err
	}
	if err := c.provisionJWTBearer(); err != nil {
		return err
	}
	if err := c.provisionHS256(repl); err != nil {
		return err
	}
	if len(c.Scopes) == 0 {
		return errNoScopes
	}
	for _, s := range c.Scopes {
		if !oauthjwt.ValidScopeToken(s) {
			return fmt.Errorf("scopes: %q is not a valid scope token (RFC 6749 §3.3)", s)
		}
	}
	if err := checkClientResources(c.Resources); err != nil {
		return err
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
	if a.fapi2() {
		// Also for clients added at run time: the profile holds for all.
		if err := fapiClient(c, a.SigningKey.Algorithm); err != nil {
			return fmt.Errorf("profile fapi2: %v", err)
		}
	}
	return nil
}

// errNoScopes refuses a client that could be granted nothing.
var errNoScopes = errors.New("scopes: at least one scope is required")

// checkGrants sets the default grant types and checks that the client's
// registration fits them: the authorization code grant needs redirect
// URIs; a public client may not use client credentials (RFC 6749 §4.4:
// confidential clients only); refresh tokens come only with a grant that
// issues them.
func (c *Client) checkGrants() error {
	if len(c.GrantTypes) == 0 {
		switch {
		case c.Public || len(c.RedirectURIs) > 0:
			c.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
		default:
			c.GrantTypes = []string{GrantClientCredentials}
		}
	}
	for i, g := range c.GrantTypes {
		if !slices.Contains(supportedGrants(), g) {
			hint := ""
			if g == "implicit" || g == "password" {
				hint = "; RFC 9700 §2.1.2 and §2.4 say not to use the implicit and password grants: use authorization_code with PKCE"
			}
			return fmt.Errorf("grant_types: unknown or unsupported grant type %q (supported: %s)%s", g, strings.Join(supportedGrants(), ", "), hint)
		}
		if slices.Contains(c.GrantTypes[:i], g) {
			return fmt.Errorf("grant_types: %q listed twice", g)
		}
	}
	code := c.allowsGrant(GrantAuthorizationCode)
	switch {
	case c.Public && c.allowsGrant(GrantClientCredentials):
		return errors.New("grant_types: a public client cannot use client_credentials (RFC 6749 §4.4)")
	case c.Public && !code && !c.allowsGrant(GrantJWTBearer):
		return errors.New("grant_types: a public client needs authorization_code or " + GrantJWTBearer)
	case code && len(c.RedirectURIs) == 0:
		return errors.New("redirect_uris: the authorization_code grant needs at least one redirect URI")
	case !code && len(c.RedirectURIs) > 0:
		return errors.New("redirect_uris: only used with the authorization_code grant; add it to grant_types")
	case c.allowsGrant(GrantRefreshToken) && !code:
		return errors.New("grant_types: refresh_token is issued with authorization_code; add it or remove refresh_token")
	case c.RequirePKCE && !code:
		return errors.New("require_pkce: only applies to the authorization_code grant")
	}
	for i, u := range c.RedirectURIs {
		if err := validateRedirectURI(u); err != nil {
			return fmt.Errorf("redirect_uris: %v", err)
		}
		if slices.Contains(c.RedirectURIs[:i], u) {
			return fmt.Errorf("redirect_uris: %q listed twice", u)
		}
	}
	return c.checkPostLogoutRedirectURIs(code)
}

// provisionAuthMethod checks AuthMethod against the rest of the client's
// registration and loads what JWT client authentication needs.
func (c *Client) provisionAuthMethod(secret string, a *App) error {
	if c.AuthMethod != "" && !slices.Contains(tokenAuthMethods, c.AuthMethod) {
		return fmt.Errorf("token_endpoint_auth_method: %q is not one of %v", c.AuthMethod, tokenAuthMethods)
	}
	hasKeys := len(c.JWKS) > 0 || c.JWKSFile != "" || c.JWKSURI != ""
	switch {
	case c.Public && c.AuthMethod != "" && c.AuthMethod != authNone:
		return errors.New("token_endpoint_auth_method: a public client authenticates with none")
	case !c.Public && c.AuthMethod == authNone:
		return errors.New("token_endpoint_auth_method: none is for public clients; mark the client public")
	case hasKeys && c.AuthMethod != authPrivateKeyJWT && c.AuthMethod != authSelfSignedTLS && !slices.Contains(c.GrantTypes, GrantJWTBearer):
		return errors.New("jwks: keys are for token_endpoint_auth_method private_key_jwt or " + authSelfSignedTLS + ", or the " + GrantJWTBearer + " grant")
	case c.AuthMethod == authPrivateKeyJWT && !hasKeys:
		return errors.New("token_endpoint_auth_method: private_key_jwt needs jwks, jwks_file or jwks_uri")
	case c.AuthMethod == authPrivateKeyJWT && (c.Secret != "" || c.SecretHash != ""):
		return errors.New("token_endpoint_auth_method: a private_key_jwt client has no secret")
	case c.AuthMethod == authClientSecretJWT && c.SecretHash != "":
		return errors.New("token_endpoint_auth_method: client_secret_jwt needs the plain secret (the HMAC key), not secret_hash")
	case c.AuthMethod == authClientSecretJWT && len(secret) < 32:
		return errors.New("secret: client_secret_jwt needs at least 32 characters (RFC 7518 §3.2: an HS256 key is 256 bits or more)")
	}
	if err := c.provisionMTLS(c.Secret != "" || c.SecretHash != "", hasKeys); err != nil {
		return err
	}
	if c.AuthMethod == authClientSecretJWT {
		c.hmacKey = []byte(secret)
	}
	if !hasKeys {
		return nil
	}
	if c.JWKSFile != "" {
		if len(c.JWKS) > 0 {
			return errors.New("jwks and jwks_file: set one, not both")
		}
		b, err := os.ReadFile(c.JWKSFile)
		if err != nil {
			return fmt.Errorf("jwks_file: %v", err)
		}
		c.JWKS = b
	}
	return c.provisionClientKeys(a.ctx, a.logger)
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
