package caddyoauth

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/caddyapigw/gateway/internal/oauthstore"
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// Initial access tokens for dynamic client registration (RFC 7591 §3) on
// the admin API:
//
//	GET    /oauth/registration/tokens        the live tokens (never the token)
//	POST   /oauth/registration/tokens        a new token, shown once; body:
//	                                         {"expires_in":"24h","note":"…"}
//	DELETE /oauth/registration/tokens/{id}   withdraw one
//
// The store keeps only the SHA-256 of a token, which is its id.

const (
	defaultInitialTokenTTL = 24 * time.Hour
	maxInitialTokenTTL     = 365 * 24 * time.Hour
	maxTokenNote           = 200
)

type initialTokenRequest struct {
	ExpiresIn caddy.Duration `json:"expires_in,omitempty"`
	Note      string         `json:"note,omitempty"`
}

type initialTokenView struct {
	*oauthstore.InitialAccessToken
	Token string `json:"token,omitempty"`
}

func handleRegistrationTokens(w http.ResponseWriter, r *http.Request) error {
	a, err := runningApp()
	if err != nil {
		return err
	}
	if a.Registration == nil {
		return apiErr(http.StatusConflict, "dynamic client registration is off: add a registration block to the oauth global option")
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/oauth/registration/tokens"), "/")
	if rest != "" {
		if r.Method != http.MethodDelete {
			return methodNotAllowed(w, http.MethodDelete)
		}
		if _, err := a.registrations.InitialAccessToken(r.Context(), rest); errors.Is(err, ErrNotFound) {
			return apiErr(http.StatusNotFound, "no initial access token %q", rest)
		} else if err != nil {
			return storeErr(err)
		}
		if err := a.registrations.DeleteInitialAccessToken(r.Context(), rest); err != nil {
			return storeErr(err)
		}
		a.logger.Info("initial access token withdrawn through the admin API", zap.String("id", rest))
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	switch r.Method {
	case http.MethodGet:
		list, err := a.registrations.InitialAccessTokens(r.Context())
		if err != nil {
			return storeErr(err)
		}
		return writeAdminJSON(w, http.StatusOK, list)
	case http.MethodPost:
		var req initialTokenRequest
		if r.ContentLength != 0 {
			if err := decodeJSONObject(r.Body, &req); err != nil {
				return apiErr(http.StatusBadRequest, "body: %v (fields: expires_in, note)", err)
			}
		}
		ttl := time.Duration(req.ExpiresIn)
		switch {
		case ttl == 0:
			ttl = defaultInitialTokenTTL
		case ttl < time.Minute || ttl > maxInitialTokenTTL:
			return apiErr(http.StatusBadRequest, "expires_in: %s is outside 1m..%s", ttl, maxInitialTokenTTL)
		}
		if len(req.Note) > maxTokenNote {
			return apiErr(http.StatusBadRequest, "note: longer than %d bytes", maxTokenNote)
		}
		tok, err := random256()
		if err != nil {
			return err
		}
		now := a.clock().UTC().Truncate(time.Second)
		t := &oauthstore.InitialAccessToken{ID: tokenID(tok), Note: req.Note, Created: now, Expires: now.Add(ttl)}
		if err := a.registrations.PutInitialAccessToken(r.Context(), t); err != nil {
			return storeErr(err)
		}
		a.logger.Info("initial access token made through the admin API", zap.String("id", t.ID))
		w.Header().Set("Location", "/oauth/registration/tokens/"+t.ID)
		return writeAdminJSON(w, http.StatusCreated, initialTokenView{InitialAccessToken: t, Token: tok})
	}
	return methodNotAllowed(w, "GET, POST")
}
