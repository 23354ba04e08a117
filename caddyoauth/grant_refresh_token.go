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
// the token (oauthstore.Families.Use): of two concurrent uses, on any
// instances, one claims it and fixes the successor. A retry of the same
// token gets that successor when the rotation never completed (a crash or
// failed write) or within refresh_token_reuse_grace of it (a lost answer,
// two tabs). Any other use again, or a token from an earlier generation,
// revokes the whole family and its access tokens (RFC 9700 §4.14.2).

// errRefreshInvalid is the one answer for a refresh token that does not
// work, whatever the reason (RFC 6749 §5.2 invalid_grant).
var errRefreshInvalid = badRequest(errInvalidGrant, "refresh token is invalid, expired or revoked")

// refreshGrant is the token request: the presented token is rotated and a
// new access token issued, for the scopes asked (never more than first
// granted).
func (s *Server) refreshGrant(ctx context.Context, client *Client, form url.Values) (*tokenResponse, *oauthError) {
	a := s.app
	now := a.clock()
	resources, oerr := parseResources(form["resource"])
	if oerr != nil {
		return nil, oerr
	}
	r, oerr := s.rotateRefresh(ctx, client, form.Get("refresh_token"), refreshAsk{scope: form.Get("scope"), resources: resources})
	if oerr != nil {
		return nil, oerr
	}
	resp, oerr := s.signAccess(client, r.access, now)
	if oerr != nil {
		return nil, oerr
	}
	// OpenID Connect Core §12.2: same sub and auth_time, no nonce.
	if oerr := s.attachIDToken(ctx, resp, client, idGrant{user: r.fam.User, authTime: r.fam.AuthTime, scopes: r.access.scopes, sid: r.fam.SID}, now); oerr != nil {
		return nil, oerr
	}
	if err := a.rec.Families.AddAccess(ctx, r.id, r.fam, oauthstore.AccessRef{JTI: resp.jti, Exp: resp.exp}); err != nil {
		a.logger.Warn("recording a family's access token failed", zap.Error(err))
	}
	resp.RefreshToken = r.token
	return resp, nil
}

// refreshAsk is what a refresh request asks for: a scope ("" for the
// family's) and resources (nil for the family's).
type refreshAsk struct {
	scope     string
	resources []string
}

// rotated is a refresh token's successful rotation.
type rotated struct {
	fam    *oauthstore.Family // at its new generation
	id     string             // the family id
	token  string             // the new refresh token
	access accessGrant        // what the new access token is for
}

// rotateRefresh checks the presented token and what the request asks for,
// rotates the token and returns the family at its new generation and the
// new access token's grant. Nothing is rotated when the request fails for
// another reason than reuse.
func (s *Server) rotateRefresh(ctx context.Context, c *Client, presented string, ask refreshAsk) (*rotated, *oauthError) {
	a := s.app
	if presented == "" {
		return nil, badRequest(errInvalidRequest, "refresh_token is required")
	}
	rt, fam, err := a.rec.Families.Lookup(ctx, presented)
	if errors.Is(err, ErrNotFound) {
		return nil, errRefreshInvalid
	}
	if err != nil {
		return nil, unavailable()
	}
	// RFC 6749 §6: the token must have been issued to the authenticated
	// client. Another client presenting it does not burn it.
	if fam.ClientID != c.ID {
		return nil, errRefreshInvalid
	}
	// An administrator revoked the client's tokens after this sign-in.
	if revoked, err := a.registry.revokedSince(ctx, c.ID, fam.Created); err != nil {
		return nil, unavailable()
	} else if revoked {
		a.revokeFamily(ctx, rt.Family)
		return nil, errRefreshInvalid
	}
	// Everything that can fail without the token being reused is checked
	// before the use is claimed, so a retry after a store hiccup, an
	// invalid_scope or an invalid_target is not mistaken for theft.
	if _, ok, err := a.directory.lookup(ctx, fam.User); err != nil {
		return nil, unavailable()
	} else if !ok {
		return nil, errRefreshInvalid
	}
	scopes, oerr := narrowScopes(c, fam, ask.scope)
	if oerr != nil {
		return nil, oerr
	}
	// RFC 8705 §4 and RFC 9449 §5: a family bound to a certificate or a
	// DPoP key (a public client's) needs that certificate on the
	// connection, a proof by that key; without, the token is not burnt.
	if oerr := checkBoundFamilyCert(ctx, fam.X5T); oerr != nil {
		return nil, oerr
	}
	if oerr := checkBoundFamily(ctx, fam.JKT); oerr != nil {
		return nil, oerr
	}
	// RFC 8707 §2.2: a subset of the grant's resources, never more.
	aud, oerr := a.grantAudience(c, fam.Resources, ask.resources)
	if oerr != nil {
		return nil, oerr
	}
	// The claim fixes the successor: a retry after a crash, a failed
	// write or a lost answer, or a second tab within the grace window,
	// gets the same one (RFC 9700 §4.14.2); anything else is reuse.
	tok, err := a.rec.Families.Use(ctx, presented, rt, fam)
	switch {
	case errors.Is(err, oauthstore.ErrReused):
		a.logger.Warn("refresh token reused: revoking its family", zap.String("client_id", c.ID), zap.String("sub", fam.User))
		refreshes.Inc(refreshReuse)
		a.audit.emit(nil, eventRefreshReuseDetected, map[string]any{"client_id": c.ID, "user": fam.User})
		a.revokeFamily(ctx, rt.Family)
		return nil, errRefreshInvalid
	case errors.Is(err, ErrNotFound):
		return nil, errRefreshInvalid
	case err != nil:
		a.logger.Error("rotating a refresh token failed; a retry finishes it", zap.Error(err))
		return nil, unavailable()
	}
	refreshes.Inc(refreshRotated)
	access := accessGrant{sub: fam.User, authTime: fam.AuthTime, scopes: scopes, aud: aud, jkt: boundKey(ctx), x5t: boundCert(ctx)}
	return &rotated{fam: fam, id: rt.Family, token: tok, access: access}, nil
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
	if rt.Gen < fam.Gen || now >= rt.IdleExp || now >= fam.MaxExp {
		return nil, nil, nil
	}
	if used, err := a.rec.Families.Used(ctx, tok); err != nil || used {
		return nil, nil, err
	}
	if _, ok, err := a.directory.lookup(ctx, fam.User); err != nil || !ok {
		return nil, nil, err
	}
	if revoked, err := a.registry.revokedSince(ctx, fam.ClientID, fam.Created); err != nil || revoked {
		return nil, nil, err
	}
	if _, ok, err := a.Client(fam.ClientID); err != nil || !ok {
		return nil, nil, err
	}
	return fam, rt, nil
}
