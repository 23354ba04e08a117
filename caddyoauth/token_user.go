package caddyoauth

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"time"

	"go.uber.org/zap"
)

// authorizationCode is the authorization code grant's token request (RFC
// 6749 §4.1.3): the code becomes an access token for the person who
// approved it, and a refresh token when the client may refresh.
func (s *Server) authorizationCode(ctx context.Context, client *Client, form url.Values) (*tokenResponse, *oauthError) {
	a := s.app
	rec, key, oerr := a.redeemCode(ctx, client, form)
	if oerr != nil {
		return nil, oerr
	}
	if _, ok, err := a.lookupUser(ctx, rec.User); err != nil {
		return nil, unavailable()
	} else if !ok {
		return nil, badRequest(errInvalidGrant, "the user who approved the request no longer exists")
	}
	now := s.app.clock()
	var scopes []string
	for _, sc := range rec.Scopes { // the client may have lost some since
		if slices.Contains(client.Scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	// Name what the code will issue and record it before issuing, so a
	// replay arriving at any moment after the take revokes it (a jti or a
	// family revoked before it exists is refused once it does).
	jti, err := randomID()
	familyID, err2 := randomID()
	if err != nil || err2 != nil {
		return nil, &oauthError{Status: http.StatusInternalServerError, Code: errServerError}
	}
	exp := now.Add(client.ttl).Unix()
	use := codeUse{JTI: jti, Exp: exp, ExpiresAt: exp + int64(a.leeway()/time.Second)}
	refresh := client.allowsGrant(GrantRefreshToken)
	if refresh {
		use.FamilyID, use.ExpiresAt = familyID, now.Add(time.Duration(a.RefreshTokenMaxTTL)).Unix()
	}
	a.markCodeUsed(ctx, key, use)
	resp, oerr := s.signAccessID(client, rec.User, rec.AuthTime, scopes, now, jti)
	if oerr != nil {
		return nil, oerr
	}
	if refresh {
		fam := &refreshFamily{ClientID: client.ID, User: rec.User, AuthTime: rec.AuthTime, Scopes: scopes, Access: []accessRef{{resp.jti, resp.exp}}}
		_, tok, err := a.newFamily(ctx, familyID, fam, now)
		if err != nil {
			s.logger.Error("storing a refresh token failed", zap.Error(err))
			return nil, unavailable()
		}
		resp.RefreshToken = tok
	}
	return resp, nil
}

// refreshGrant is the refresh token grant (RFC 6749 §6): the presented
// token is rotated and a new access token issued, for the scopes asked
// (never more than first granted).
func (s *Server) refreshGrant(ctx context.Context, client *Client, form url.Values) (*tokenResponse, *oauthError) {
	a := s.app
	now := s.app.clock()
	fam, id, tok, scopes, oerr := a.rotateRefresh(ctx, client, form.Get("refresh_token"), form.Get("scope"), now)
	if oerr != nil {
		return nil, oerr
	}
	resp, oerr := s.signAccess(client, fam.User, fam.AuthTime, scopes, now)
	if oerr != nil {
		return nil, oerr
	}
	a.addFamilyAccess(ctx, id, fam, resp.jti, resp.exp)
	resp.RefreshToken = tok
	return resp, nil
}
