package caddyoauth

import (
	"context"
	"errors"
	"net/url"
	"slices"

	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"github.com/caddyapigw/gateway/internal/oauthstore"
)

// The refresh token grant (RFC 6749 §6, RFC 9700 §4.14). Each use rotates
// the token (oauthstore.Families): of two concurrent uses, on any
// instances, one wins. A token used again, or one from an earlier
// generation, revokes the whole family and its access tokens (RFC 9700
// §4.14.2).

// errRefreshInvalid is the one answer for a refresh token that does not
// work, whatever the reason (RFC 6749 §5.2 invalid_grant).
var errRefreshInvalid = badRequest(errInvalidGrant, "refresh token is invalid, expired or revoked")

// refreshGrant is the token request: the presented token is rotated and a
// new access token issued, for the scopes asked (never more than first
// granted).
func (s *Server) refreshGrant(ctx context.Context, client *Client, form url.Values) (*tokenResponse, *oauthError) {
	a := s.app
	now := a.clock()
	fam, id, tok, scopes, oerr := s.rotateRefresh(ctx, client, form.Get("refresh_token"), form.Get("scope"))
	if oerr != nil {
		return nil, oerr
	}
	resp, oerr := s.signAccess(client, fam.User, fam.AuthTime, scopes, now)
	if oerr != nil {
		return nil, oerr
	}
	if err := a.rec.Families.AddAccess(ctx, id, fam, oauthstore.AccessRef{JTI: resp.jti, Exp: resp.exp}); err != nil {
		a.logger.Warn("recording a family's access token failed", zap.Error(err))
	}
	resp.RefreshToken = tok
	return resp, nil
}

// rotateRefresh checks the presented token and the requested scope,
// rotates the token and returns the family at its new generation, the
// family id, the new refresh token and the scopes of the new access token.
// Nothing is rotated when the request fails for another reason than reuse.
func (s *Server) rotateRefresh(ctx context.Context, c *Client, presented, requested string) (*oauthstore.Family, string, string, []string, *oauthError) {
	a := s.app
	if presented == "" {
		return nil, "", "", nil, badRequest(errInvalidRequest, "refresh_token is required")
	}
	rt, fam, err := a.rec.Families.Lookup(ctx, presented)
	if errors.Is(err, ErrNotFound) {
		return nil, "", "", nil, errRefreshInvalid
	}
	if err != nil {
		return nil, "", "", nil, unavailable()
	}
	// RFC 6749 §6: the token must have been issued to the authenticated
	// client. Another client presenting it does not burn it.
	if fam.ClientID != c.ID {
		return nil, "", "", nil, errRefreshInvalid
	}
	// An administrator revoked the client's tokens after this sign-in.
	if revoked, err := a.registry.revokedSince(ctx, c.ID, fam.Created); err != nil {
		return nil, "", "", nil, unavailable()
	} else if revoked {
		a.revokeFamily(ctx, rt.Family)
		return nil, "", "", nil, errRefreshInvalid
	}
	// Everything that can fail without the token being reused is checked
	// before the use is claimed, so a retry after a store hiccup or an
	// invalid_scope is not mistaken for theft.
	if _, ok, err := a.directory.lookup(ctx, fam.User); err != nil {
		return nil, "", "", nil, unavailable()
	} else if !ok {
		return nil, "", "", nil, errRefreshInvalid
	}
	scopes, oerr := narrowScopes(c, fam, requested)
	if oerr != nil {
		return nil, "", "", nil, oerr
	}
	claimed, err := a.rec.Families.Claim(ctx, presented, fam)
	if err != nil {
		return nil, "", "", nil, unavailable()
	}
	if !claimed || rt.Gen != fam.Gen {
		a.logger.Warn("refresh token reused: revoking its family", zap.String("client_id", c.ID), zap.String("sub", fam.User))
		a.revokeFamily(ctx, rt.Family)
		return nil, "", "", nil, errRefreshInvalid
	}
	if now := a.clock().Unix(); now >= rt.IdleExp || now >= fam.MaxExp {
		return nil, "", "", nil, errRefreshInvalid
	}
	tok, err := a.rec.Families.Rotate(ctx, rt.Family, fam)
	if err != nil {
		a.logger.Error("storing a rotated refresh token failed", zap.Error(err))
		// Give the claim back, so the client's retry is not taken for
		// reuse (best effort: the store just failed).
		_ = a.rec.Families.Unclaim(ctx, presented)
		return nil, "", "", nil, unavailable()
	}
	return fam, rt.Family, tok, scopes, nil
}

// narrowScopes applies RFC 6749 §6 to a refresh request: no scope means the
// family's scopes; a requested scope must be among them (never widened).
// Scopes the client has since lost are dropped either way.
func narrowScopes(c *Client, fam *oauthstore.Family, requested string) ([]string, *oauthError) {
	granted := make([]string, 0, len(fam.Scopes))
	for _, sc := range fam.Scopes {
		if slices.Contains(c.Scopes, sc) {
			granted = append(granted, sc)
		}
	}
	if requested == "" {
		return granted, nil
	}
	scopes, err := oauthjwt.ParseScope(requested)
	if err != nil {
		return nil, badRequest(errInvalidScope, "scope is malformed")
	}
	for _, sc := range scopes {
		if !slices.Contains(granted, sc) {
			return nil, badRequest(errInvalidScope, "scope "+safeParam(sc)+" exceeds the scope originally granted")
		}
	}
	return scopes, nil
}

// liveRefreshToken returns the family of a refresh token that would be
// accepted now (not rotated, not revoked, not lapsed), or nil.
func (s *Server) liveRefreshToken(ctx context.Context, tok string) (*oauthstore.Family, *oauthstore.RefreshToken, error) {
	a := s.app
	rt, fam, err := a.rec.Families.Lookup(ctx, tok)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	now := a.clock().Unix()
	if fam.Gen != rt.Gen || now >= rt.IdleExp || now >= fam.MaxExp {
		return nil, nil, nil
	}
	if _, ok, err := a.directory.lookup(ctx, fam.User); err != nil || !ok {
		return nil, nil, err
	}
	if revoked, err := a.registry.revokedSince(ctx, fam.ClientID, fam.Created); err != nil || revoked {
		return nil, nil, err
	}
	if _, ok := a.Client(fam.ClientID); !ok {
		return nil, nil, nil
	}
	return fam, rt, nil
}
