package caddyoauth

import (
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"
)

// Revocation on the admin API, besides a client's (POST
// /oauth/clients/{id}/revoke):
//
//	POST /oauth/tokens/revoke          {"token":"…"}: one access token (until
//	                                   it expires) or refresh token (its
//	                                   family and the family's last access
//	                                   token), whichever client it belongs to
//	POST /oauth/users/{name}/revoke    everything a person gave applications:
//	                                   their refresh-token families (and the
//	                                   families' last access tokens) and
//	                                   their remembered consents
//
// The person's sign-in sessions are not ended (sessions are not indexed by
// person yet).

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

type userRevokeResult struct {
	User              string `json:"user"`
	FamiliesRevoked   int    `json:"refresh_token_families_revoked"`
	ConsentsWithdrawn int    `json:"consents_withdrawn"`
}

func handleUsers(w http.ResponseWriter, r *http.Request) error {
	rest := strings.TrimPrefix(r.URL.Path, "/oauth/users/")
	user, action, _ := strings.Cut(rest, "/")
	if user == "" || action != "revoke" {
		return apiErr(http.StatusNotFound, "no such endpoint (POST /oauth/users/{name}/revoke)")
	}
	if r.Method != http.MethodPost {
		return methodNotAllowed(w, http.MethodPost)
	}
	a, err := runningApp()
	if err != nil {
		return err
	}
	ctx := r.Context()
	res := userRevokeResult{User: user}
	ids, err := a.rec.Families.OfUser(ctx, user, "")
	if err != nil {
		return storeErr(err)
	}
	for _, id := range ids {
		fam, err := a.rec.Families.Get(ctx, id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return storeErr(err)
		}
		if fam != nil && fam.User == user {
			a.revokeFamily(ctx, id)
			res.FamiliesRevoked++
		}
		client := ""
		if fam != nil {
			client = fam.ClientID
		}
		if client != "" {
			if err := a.rec.Families.Unindex(ctx, user, client, id); err != nil {
				return storeErr(err)
			}
		}
	}
	consents, err := a.rec.Consents.List(ctx, user)
	if err != nil {
		return storeErr(err)
	}
	for _, c := range consents {
		if err := a.rec.Consents.Delete(ctx, user, c.ClientID); err != nil {
			return storeErr(err)
		}
		res.ConsentsWithdrawn++
	}
	a.logger.Info("a person's grants revoked through the admin API", zap.String("user", user), zap.Int("families", res.FamiliesRevoked))
	a.audit.emit(r, eventConsentWithdrawn, map[string]any{"user": user, "reason": "admin API"})
	return writeAdminJSON(w, http.StatusOK, res)
}
