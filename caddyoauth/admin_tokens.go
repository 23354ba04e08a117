package caddyoauth

import (
	"errors"
	"net/http"

	"go.uber.org/zap"
)

// Revocation on the admin API, besides a client's (POST
// /oauth/clients/{id}/revoke):
//
//	POST /oauth/tokens/revoke          {"token":"…"}: one access token (until
//	                                   it expires) or refresh token (its
//	                                   family and the family's last access
//	                                   token), whichever client it belongs to
//
// A person's grants are revoked at /oauth/users/{name}/revoke
// (admin_users.go).

type tokenRevokeRequest struct {
	Token string `json:"token"`
}

func handleTokenRevoke(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return methodNotAllowed(w, http.MethodPost)
	}
	a, err := runningApp()
	if err != nil {
		return err
	}
	var req tokenRevokeRequest
	if err := decodeJSONObject(r.Body, &req); err != nil || req.Token == "" {
		return apiErr(http.StatusBadRequest, "body: {\"token\":\"…\"}, an access or refresh token this server issued")
	}
	ctx := r.Context()
	if looksLikeJWT(req.Token) {
		claims, err := a.verifier.Verify(req.Token)
		if err != nil || claims == nil {
			return apiErr(http.StatusNotFound, "not an access token of this server that is still valid")
		}
		if err := a.revokeAccessToken(ctx, claims.ID, claims.ExpiresAt.Time); err != nil {
			return storeErr(err)
		}
		a.logger.Info("access token revoked through the admin API", zap.String("client_id", claims.ClientID), zap.String("jti", claims.ID))
		return writeAdminJSON(w, http.StatusOK, map[string]string{"revoked": "access_token", "client_id": claims.ClientID, "jti": claims.ID})
	}
	rt, fam, err := a.rec.Families.Lookup(ctx, req.Token)
	if errors.Is(err, ErrNotFound) || err == nil && fam == nil {
		return apiErr(http.StatusNotFound, "not a refresh token of this server that is still valid")
	}
	if err != nil {
		return storeErr(err)
	}
	a.revokeFamily(ctx, rt.Family)
	a.logger.Info("refresh token revoked through the admin API", zap.String("client_id", fam.ClientID))
	return writeAdminJSON(w, http.StatusOK, map[string]string{"revoked": "refresh_token", "client_id": fam.ClientID, "user": fam.User})
}
