package caddyoauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// The JWT bearer grant (RFC 7523 §2.1): a client presents a JWT, signed by
// an issuer it is configured to trust, that names a subject; it gets an
// access token for that subject. The issuer is the client itself by default
// (a service account that asserts which user it acts for, as
// golang.org/x/oauth2/jwt does), or another party whose keys the client's
// jwks/jwks_uri hold. Which subjects a client may present is configured.

// maxBearerAssertionLifetime bounds exp - now for the grant: one hour, as
// the service-account libraries that use this grant make them.
const maxBearerAssertionLifetime = time.Hour

// provisionJWTBearer checks the grant's settings.
func (c *Client) provisionJWTBearer() error {
	uses := c.allowsGrant(GrantJWTBearer)
	switch {
	case !uses && (c.AssertionIssuer != "" || len(c.AssertionSubjects) > 0):
		return errors.New("assertion_issuer, assertion_subjects: only used with the " + GrantJWTBearer + " grant")
	case !uses:
		return nil
	case len(c.JWKS) == 0 && c.JWKSFile == "" && c.JWKSURI == "":
		return errors.New("grant_types: " + GrantJWTBearer + " needs the assertion issuer's keys in jwks, jwks_file or jwks_uri")
	case len(c.AssertionSubjects) == 0:
		return errors.New("assertion_subjects: say which subjects the client may present (or * for any)")
	}
	// A public client may use the grant: client authentication is optional
	// for it (RFC 7521 §4.1, RFC 7523 §3.1), the signed assertion is what
	// is checked, and a public client names itself with client_id (RFC
	// 6749 §3.2.1), as openid-client does.
	if c.AssertionIssuer == "" {
		c.AssertionIssuer = c.ID
	}
	return nil
}

// jwtBearerClient finds the client of a JWT bearer request that carries
// neither client authentication nor client_id (RFC 7523 §3.1: client
// authentication is optional): the one configured for the assertion's
// issuer, which must hold no secret (a client that has one
// authenticates). A request with client_id alone goes through
// authenticate, which serves a public client only (RFC 6749 §3.2.1).
func (a *App) jwtBearerClient(form url.Values) (*Client, *oauthError) {
	var unverified jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(form.Get("assertion"), &unverified); err != nil || unverified.Issuer == "" {
		return nil, badRequest(errInvalidGrant, "assertion is malformed")
	}
	var found *Client
	for _, c := range a.clients {
		if c.allowsGrant(GrantJWTBearer) && c.AssertionIssuer == unverified.Issuer {
			if found != nil {
				return nil, invalidClient("several clients trust this issuer; authenticate the client")
			}
			found = c
		}
	}
	if found == nil || found.secret != nil || found.AuthMethod == authClientSecretJWT {
		return nil, invalidClient("client authentication required")
	}
	return found, nil
}

// jwtBearer is the token request of the grant (RFC 7523 §2.1, §3.1).
func (s *Server) jwtBearer(ctx context.Context, client *Client, form url.Values) (*tokenResponse, *oauthError) {
	a := s.app
	assertion := form.Get("assertion")
	if assertion == "" {
		return nil, badRequest(errInvalidRequest, "assertion is required")
	}
	claims, err := a.verifyAssertion(client, assertion, client.AssertionIssuer, "", s.assertionAud, maxBearerAssertionLifetime)
	if err != nil {
		a.logger.Info("JWT bearer assertion refused", zap.String("client_id", client.ID), zap.Error(err))
		return nil, badRequest(errInvalidGrant, "assertion is invalid: "+err.Error())
	}
	sub := claims.Subject
	if sub == "" || len(sub) > 256 {
		return nil, badRequest(errInvalidGrant, "assertion needs a subject (RFC 7523 section 3)")
	}
	if !slices.Contains(client.AssertionSubjects, "*") && !slices.Contains(client.AssertionSubjects, sub) {
		return nil, badRequest(errInvalidGrant, fmt.Sprintf("the client may not present subject %s", safeParam(sub)))
	}
	// Checked before the jti is claimed, so a corrected retry with the
	// same assertion is not taken for a replay.
	scopes, oerr := grantedScopes(client, form.Get("scope"))
	if oerr != nil {
		return nil, oerr
	}
	aud, oerr := s.requestAudience(client, form)
	if oerr != nil {
		return nil, oerr
	}
	if claims.ID != "" {
		if oerr := a.claimAssertionID(ctx, client, claims, badRequest(errInvalidGrant, "assertion was already used")); oerr != nil {
			return nil, oerr
		}
	}
	s.logger.Info("JWT bearer grant", zap.String("client_id", client.ID), zap.String("sub", sub))
	return s.signAccess(client, accessGrant{sub: sub, scopes: scopes, aud: aud, jkt: boundKey(ctx), x5t: boundCert(ctx)}, a.clock())
}
