package caddyoauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// JWT client authentication (RFC 7523 §2.2; OpenID Connect Core §9
// private_key_jwt and client_secret_jwt). The client sends
// client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
// and a JWT it signed, whose iss and sub are its client_id, whose aud is
// this server's token endpoint or issuer, which expires soon, and whose jti
// is never seen twice: each is remembered in the store until the
// assertion expires, so a replay is refused on every gateway sharing it.

const (
	assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

	authPrivateKeyJWT   = "private_key_jwt"
	authClientSecretJWT = "client_secret_jwt"

	// maxAssertionLifetime bounds exp - now: an assertion is for one
	// request, so a long-lived one is refused (RFC 7523 §3 item 4 lets the
	// server reject exp "unreasonably far in the future").
	maxAssertionLifetime = 5 * time.Minute
)

// tokenAuthMethods are the values of Client.AuthMethod.
var tokenAuthMethods = []string{authBasic, authPost, authPrivateKeyJWT, authClientSecretJWT, authTLS, authSelfSignedTLS, authNone}

// assertionClaims are the claims of a client assertion (RFC 7523 §3).
type assertionClaims struct {
	jwt.RegisteredClaims
}

// authenticateAssertion checks a client assertion and returns its client.
// Every failure is invalid_client (RFC 7523 §3.2); a store that does not
// answer is 503.
func (a *App) authenticateAssertion(ctx context.Context, assertion string, audiences []string) (*Client, *oauthError) {
	if len(assertion) > oauthjwt.MaxTokenSize {
		return nil, invalidClient("client assertion too large")
	}
	// The client is named by the unverified sub; the signature check that
	// follows uses that client's own keys, so naming another client gains
	// nothing.
	var unverified assertionClaims
	if _, _, err := jwt.NewParser().ParseUnverified(assertion, &unverified); err != nil || unverified.Subject == "" {
		return nil, invalidClient("client assertion is malformed")
	}
	c, _, ok, err := a.registry.lookup(ctx, unverified.Subject)
	if err != nil {
		return nil, unavailable()
	}
	if !ok || (c.AuthMethod != authPrivateKeyJWT && c.AuthMethod != authClientSecretJWT) {
		return nil, invalidClient("client authentication failed")
	}
	claims, err := a.verifyAssertion(c, assertion, c.ID, c.ID, audiences, maxAssertionLifetime)
	if err != nil {
		a.logger.Info("client assertion refused", zap.String("client_id", c.ID), zap.Error(err))
		return nil, invalidClient("client assertion is invalid: " + err.Error())
	}
	if claims.ID == "" {
		return nil, invalidClient("client assertion needs a jti")
	}
	if oerr := a.claimAssertionID(ctx, c, claims, invalidClient("client assertion was already used")); oerr != nil {
		return nil, oerr
	}
	return c, nil
}

// verifyAssertion checks a JWT assertion (RFC 7523 §3) with c's keys (or
// its HMAC secret for client_secret_jwt): signature with the key's pinned
// algorithm, iss, sub (when sub is not ""), aud naming one of audiences,
// exp present and at most maxLife ahead. Errors are short and safe to show.
func (a *App) verifyAssertion(c *Client, assertion, iss, sub string, audiences []string, maxLife time.Duration) (*assertionClaims, error) {
	var claims assertionClaims
	opts := []jwt.ParserOption{
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(iss), // RFC 7523 §3 item 1
		jwt.WithLeeway(a.leeway()),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(a.clock),
	}
	if sub != "" {
		opts = append(opts, jwt.WithSubject(sub))
	}
	_, err := jwt.NewParser(opts...).ParseWithClaims(assertion, &claims, func(t *jwt.Token) (any, error) {
		if oauthjwt.HasForbiddenHeader(t.Header) {
			return nil, oauthjwt.ErrForbiddenHeader
		}
		if c.AuthMethod == authClientSecretJWT && c.keys == nil {
			if t.Method != jwt.SigningMethodHS256 {
				return nil, errors.New("client_secret_jwt assertions are HS256")
			}
			return c.hmacKey, nil
		}
		if c.keys == nil {
			return nil, errors.New("the client has no keys")
		}
		kid, _ := t.Header["kid"].(string)
		key, err := c.keys.lookup(kid)
		if err != nil {
			return nil, err
		}
		if t.Method.Alg() != key.Alg {
			return nil, oauthjwt.ErrAlgMismatch
		}
		if a.fapi2() && !slices.Contains(fapiAlgs, key.Alg) {
			return nil, errors.New("profile fapi2: the key's algorithm is not PS256, ES256 or EdDSA")
		}
		return key.Public, nil
	})
	if err != nil {
		return nil, errors.New("signature, issuer, subject or lifetime check failed")
	}
	// RFC 7523 §3 item 3: aud identifies this server.
	if !slices.ContainsFunc(claims.Audience, func(aud string) bool { return slices.Contains(audiences, aud) }) {
		return nil, errors.New("audience is not this server")
	}
	if claims.ExpiresAt.Sub(a.clock()) > maxLife+a.leeway() {
		return nil, fmt.Errorf("expires too far in the future (at most %s)", maxLife)
	}
	return &claims, nil
}

// claimAssertionID records an assertion's jti until it expires and answers
// replayed if it was seen before (RFC 7523 §3 item 7), on any instance
// sharing the store.
func (a *App) claimAssertionID(ctx context.Context, c *Client, claims *assertionClaims, replayed *oauthError) *oauthError {
	fresh, err := a.rec.Assertions.Claim(ctx, c.ID, claims.ID, claims.ExpiresAt.Add(a.leeway()))
	if err != nil {
		return unavailable()
	}
	if !fresh {
		a.logger.Warn("assertion replayed", zap.String("client_id", c.ID))
		return replayed
	}
	return nil
}

// readAssertion reads client_assertion_type and client_assertion (RFC 7521
// §4.2). It reports whether the request uses them.
func readAssertion(r *http.Request, form url.Values) (string, bool, *oauthError) {
	typ, assertion := form.Get("client_assertion_type"), form.Get("client_assertion")
	if typ == "" && assertion == "" {
		return "", false, nil
	}
	if len(r.Header.Values("Authorization")) > 0 || form.Get("client_secret") != "" {
		return "", true, badRequest(errInvalidRequest, "more than one client authentication method")
	}
	if typ != assertionType {
		return "", true, invalidClient("unsupported client_assertion_type")
	}
	if assertion == "" {
		return "", true, badRequest(errInvalidRequest, "client_assertion is required with client_assertion_type")
	}
	return assertion, true, nil
}
