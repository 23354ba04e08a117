package caddyoauth

import (
	"context"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// Token introspection (RFC 7662) at {prefix}/introspect and revocation
// (RFC 7009) at {prefix}/revoke, for the access tokens (JWTs) and refresh
// tokens this server issues.

// activeAccessToken verifies one of this server's access tokens and checks
// what a signature cannot: that it was not revoked, alone or with all of its
// client's tokens, and that its client is still registered. It returns the
// claims, or the reason the token is not active.
func (a *App) activeAccessToken(tok string) (*oauthjwt.Claims, string) {
	claims, err := a.verifier.Verify(tok)
	if err != nil {
		return nil, oauthjwt.Describe(err)
	}
	client, ok := a.Client(claims.ClientID)
	switch {
	case !ok:
		return nil, "token client is not registered"
	case a.Revoked(claims.ID), client.RevokedToken(claims):
		return nil, "token revoked"
	}
	return claims, ""
}

// looksLikeJWT tells a JWS compact serialization from an opaque refresh
// token (43 base64url characters, no dots).
func looksLikeJWT(tok string) bool { return strings.Count(tok, ".") == 2 }

// lifecycleRequest reads a POST form and authenticates its client the way
// the token endpoint does (RFC 7662 §2.1, RFC 7009 §2.1). On failure it
// has answered.
func (s *Server) lifecycleRequest(w http.ResponseWriter, r *http.Request, allowPublic bool) (*Client, string, string, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, &oauthError{Status: http.StatusMethodNotAllowed, Code: errInvalidRequest, Description: "use POST"})
		return nil, "", "", false
	}
	form, oerr := parseForm(w, r)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return nil, "", "", false
	}
	cc, oerr := readClientCredentials(r, form)
	if oerr == nil && cc.method == authNone && !allowPublic {
		oerr = invalidClient("client authentication required")
	}
	var client *Client
	cc.audiences = s.assertionAud
	if oerr == nil {
		client, oerr = s.app.authenticate(r.Context(), cc)
	}
	if oerr != nil {
		writeOAuthError(w, oerr)
		return nil, "", "", false
	}
	tok := form.Get("token")
	if tok == "" {
		writeOAuthError(w, badRequest(errInvalidRequest, "token is required"))
		return nil, "", "", false
	}
	return client, tok, form.Get("token_type_hint"), true
}

// serveIntrospect is RFC 7662 §2: a confidential client (typically a
// protected resource) asks whether a token is active. Anything not active
// (unknown, expired, revoked, malformed) is {"active": false} and nothing
// else (§2.2).
func (s *Server) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	caller, tok, _, ok := s.lifecycleRequest(w, r, false)
	if !ok {
		return
	}
	resp, err := s.app.introspect(r.Context(), caller, tok)
	if err != nil {
		s.logger.Warn("introspection failed: the store is unavailable", zap.Error(err))
		writeOAuthError(w, unavailable())
		return
	}
	noStore(w.Header())
	writeJSON(w, http.StatusOK, resp)
}

// introspection is an RFC 7662 §2.2 response.
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Aud       string `json:"aud,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Jti       string `json:"jti,omitempty"`
}

// introspect describes tok to caller. The hint is not needed: the two kinds
// of token cannot be mistaken for each other (RFC 7662 §2.1 lets the server
// ignore it). Access tokens are described to any confidential client (a
// resource server); a refresh token only to the client it was issued to
// (RFC 7662 §4: the server decides who may learn what), since it is no
// resource server's business.
func (a *App) introspect(ctx context.Context, caller *Client, tok string) (*introspection, error) {
	if looksLikeJWT(tok) {
		claims, reason := a.activeAccessToken(tok)
		if claims == nil {
			a.logger.Debug("introspection: inactive access token", zap.String("reason", reason))
			return &introspection{}, nil
		}
		out := &introspection{
			Active: true, Scope: claims.ScopeText(), ClientID: claims.ClientID, TokenType: "Bearer",
			Exp: claims.ExpiresAt.Unix(), Sub: claims.Subject, Iss: claims.Issuer, Jti: claims.ID,
		}
		if claims.IssuedAt != nil {
			out.Iat = claims.IssuedAt.Unix()
		}
		if len(claims.Audience) > 0 {
			out.Aud = claims.Audience[0]
		}
		if _, person := claims.Claim("auth_time"); person {
			out.Username = claims.Subject
		}
		return out, nil
	}
	fam, rt, err := a.liveRefreshToken(ctx, tok)
	if err != nil || fam == nil || fam.ClientID != caller.ID {
		return &introspection{}, err
	}
	return &introspection{
		Active: true, Scope: oauthjwt.JoinScope(fam.Scopes), ClientID: fam.ClientID, Username: fam.User,
		Sub: fam.User, Exp: rt.IdleExp, Iss: a.Issuer, Iat: fam.AuthTime,
	}, nil
}

// liveRefreshToken returns the family of a refresh token that would be
// accepted now (not rotated, not revoked, not lapsed), or nil.
func (a *App) liveRefreshToken(ctx context.Context, tok string) (*refreshFamily, *refreshToken, error) {
	rt, err := a.readRefreshToken(ctx, tok)
	if err != nil || rt == nil {
		return nil, nil, err
	}
	fam, err := a.loadFamily(ctx, rt.Family)
	if err != nil || fam == nil {
		return nil, nil, err
	}
	now := a.clock().Unix()
	if fam.Gen != rt.Gen || now >= rt.IdleExp || now >= fam.MaxExp {
		return nil, nil, nil
	}
	if _, ok, err := a.lookupUser(ctx, fam.User); err != nil || !ok {
		return nil, nil, err
	}
	if revoked, err := a.clientRevokedSince(ctx, fam.ClientID, fam.Created); err != nil || revoked {
		return nil, nil, err
	}
	if _, ok := a.Client(fam.ClientID); !ok {
		return nil, nil, nil
	}
	return fam, rt, nil
}

// serveRevoke is RFC 7009 §2: a client revokes one of its own tokens. An
// access token goes on the revocation list until it expires; a refresh
// token ends its family and the family's last access token (§2.1: "SHOULD
// also invalidate all access tokens based on the same authorization
// grant"). An unknown or already invalid token is a success (§2.2).
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	client, tok, _, ok := s.lifecycleRequest(w, r, true)
	if !ok {
		return
	}
	a := s.app
	ctx := r.Context()
	if looksLikeJWT(tok) {
		claims, _ := a.verifier.Verify(tok)
		if claims != nil {
			if claims.ClientID != client.ID {
				// §2.1: the server verifies the token was issued to the
				// requesting client, and refuses otherwise.
				writeOAuthError(w, badRequest(errUnauthorizedClient, "the token was issued to another client"))
				return
			}
			if err := a.revokeAccessToken(ctx, claims.ID, claims.ExpiresAt.Time); err != nil {
				s.logger.Warn("revocation failed: the store is unavailable", zap.Error(err))
				writeOAuthError(w, unavailable())
				return
			}
			s.logger.Info("access token revoked", zap.String("client_id", client.ID), zap.String("jti", claims.ID))
		}
	} else {
		rt, err := a.readRefreshToken(ctx, tok)
		var fam *refreshFamily
		if err == nil && rt != nil {
			fam, err = a.loadFamily(ctx, rt.Family)
		}
		switch {
		case err != nil:
			s.logger.Warn("revocation failed: the store is unavailable", zap.Error(err))
			writeOAuthError(w, unavailable())
			return
		case fam != nil && fam.ClientID != client.ID:
			writeOAuthError(w, badRequest(errUnauthorizedClient, "the token was issued to another client"))
			return
		case fam != nil:
			a.revokeFamily(ctx, rt.Family)
			s.logger.Info("refresh token revoked", zap.String("client_id", client.ID))
		}
	}
	noStore(w.Header())
	w.WriteHeader(http.StatusOK)
}
