package caddyoauth

import (
	"context"
	"net/http"
	"strings"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"go.uber.org/zap"
)

// Token introspection (RFC 7662) at {prefix}/introspect, for the access
// tokens (JWTs) and refresh tokens this server issues.

// activeAccessToken verifies one of this server's access tokens and checks
// what a signature cannot: that it was not revoked, alone or with all of its
// client's tokens, and that its client is still registered. It returns the
// claims, or the reason the token is not active; err when its client
// cannot be checked now (the store does not answer).
func (s *Server) activeAccessToken(tok string) (*oauthjwt.Claims, string, error) {
	a := s.app
	claims, err := a.verifier.Verify(tok)
	if err != nil {
		return nil, oauthjwt.Describe(err), nil
	}
	client, ok, err := a.Client(claims.ClientID)
	switch {
	case err != nil:
		return nil, "", err
	case !ok:
		return nil, "token client is not registered", nil
	case a.Revoked(claims.ID), client.RevokedToken(claims):
		return nil, "token revoked", nil
	}
	return claims, "", nil
}

// looksLikeJWT tells a JWS compact serialization from an opaque refresh
// token (43 base64url characters, no dots).
func looksLikeJWT(tok string) bool { return strings.Count(tok, ".") == 2 }

// serveIntrospect is RFC 7662 §2: a confidential client (typically a
// protected resource) asks whether a token is active. Anything not active
// (unknown, expired, revoked, malformed) is {"active": false} and nothing
// else (§2.2).
func (s *Server) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	caller, tok, _, ok := s.clientTokenRequest(w, r, false)
	if !ok {
		return
	}
	resp, err := s.introspect(r.Context(), caller, tok)
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
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Username  string   `json:"username,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       audience `json:"aud,omitempty"` // as in the token (RFC 8707 §2)
	Iss       string   `json:"iss,omitempty"`
	Jti       string   `json:"jti,omitempty"`
	// Cnf is the key a sender-constrained token is bound to (RFC 9449
	// §6.2, RFC 8705 §3.2, RFC 7800 §3.1): a resource server that
	// introspects checks the DPoP proof or the TLS client certificate
	// against it.
	Cnf *oauthjwt.Confirmation `json:"cnf,omitempty"`
}

// introspect describes tok to caller. The hint is not needed: the two kinds
// of token cannot be mistaken for each other (RFC 7662 §2.1 lets the server
// ignore it). Access tokens are described to any confidential client (a
// resource server); a refresh token only to the client it was issued to
// (RFC 7662 §4: the server decides who may learn what), since it is no
// resource server's business.
func (s *Server) introspect(ctx context.Context, caller *Client, tok string) (*introspection, error) {
	a := s.app
	if looksLikeJWT(tok) {
		claims, reason, err := s.activeAccessToken(tok)
		if err != nil {
			return nil, err
		}
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
		out.Aud = audience(claims.Audience)
		if claims.BoundKey() != "" || claims.BoundCert() != "" {
			// RFC 9449 §6.2, RFC 8705 §3.2: the resource server checks
			// the proof or the connection's certificate against it.
			out.Cnf = &oauthjwt.Confirmation{JKT: claims.BoundKey(), X5TS256: claims.BoundCert()}
		}
		if claims.BoundKey() != "" {
			out.TokenType = "DPoP"
		}
		if _, person := claims.Claim("auth_time"); person {
			out.Username = claims.Subject
		}
		return out, nil
	}
	fam, rt, err := s.liveRefreshToken(ctx, tok)
	if err != nil || fam == nil || fam.ClientID != caller.ID {
		return &introspection{}, err
	}
	return &introspection{
		Active: true, Scope: oauthjwt.JoinScope(fam.Scopes), ClientID: fam.ClientID, Username: fam.User,
		Sub: fam.User, Exp: rt.IdleExp, Iss: a.Issuer, Iat: fam.AuthTime,
	}, nil
}
