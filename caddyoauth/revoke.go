package caddyoauth

import (
	"errors"
	"net/http"

	"go.uber.org/zap"
)

// serveRevoke is RFC 7009 §2: a client revokes one of its own tokens. An
// access token goes on the revocation list until it expires; a refresh
// token ends its family and the family's last access token (§2.1: "SHOULD
// also invalidate all access tokens based on the same authorization
// grant"). An unknown or already invalid token is a success (§2.2).
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	client, tok, _, ok := s.clientTokenRequest(w, r, true)
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
		rt, fam, err := a.rec.Families.Lookup(ctx, tok)
		if errors.Is(err, ErrNotFound) {
			err = nil
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
