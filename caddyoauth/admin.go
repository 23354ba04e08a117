package caddyoauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI is the `admin.api.oauth` module: endpoints of the `oauth` app on
// Caddy's admin API, under its access control (localhost or the configured
// admin listener and origins).
//
//	GET  /oauth/keys         the signing keys (public) and the active kid
//	POST /oauth/keys/rotate  a new active signing key; old keys stay for
//	                         verification until their tokens expire
//	/oauth/clients…          clients, see admin_clients.go
//	/oauth/registration/tokens…  initial access tokens for dynamic client
//	                         registration, see admin_registration.go
//	/oauth/tokens/revoke     see admin_tokens.go
//	/oauth/users…            people, see admin_users.go
//	GET  /oauth/openapi.json  the OpenAPI 3.1 description of all of these
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.oauth",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes implements caddy.AdminRouter.
func (adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/oauth/keys", Handler: caddy.AdminHandlerFunc(handleKeys)},
		{Pattern: "/oauth/keys/rotate", Handler: caddy.AdminHandlerFunc(handleRotate)},
		{Pattern: "/oauth/clients", Handler: caddy.AdminHandlerFunc(handleClients)},
		{Pattern: "/oauth/clients/", Handler: caddy.AdminHandlerFunc(handleClients)},
		{Pattern: "/oauth/registration/tokens", Handler: caddy.AdminHandlerFunc(handleRegistrationTokens)},
		{Pattern: "/oauth/registration/tokens/", Handler: caddy.AdminHandlerFunc(handleRegistrationTokens)},
		{Pattern: "/oauth/tokens/revoke", Handler: caddy.AdminHandlerFunc(handleTokenRevoke)},
		{Pattern: "/oauth/users", Handler: caddy.AdminHandlerFunc(handleUsers)},
		{Pattern: "/oauth/users/", Handler: caddy.AdminHandlerFunc(handleUsers)},
		{Pattern: "/oauth/ready", Handler: caddy.AdminHandlerFunc(handleReady)},
		{Pattern: "/oauth/openapi.json", Handler: caddy.AdminHandlerFunc(handleOpenAPI)},
	}
}

// errNoApp reports an admin call while no oauth app runs.
var errNoApp = errors.New("the oauth app is not running: configure the `oauth` global option")

func runningApp() (*App, error) {
	a := activeApp.Load()
	if a == nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errNoApp}
	}
	return a, nil
}

func methodNotAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed; use %s", allow)}
}

type keysResponse struct {
	ActiveKid string         `json:"active_kid"`
	Keys      []oauthjwt.JWK `json:"keys"`
}

func handleKeys(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return methodNotAllowed(w, http.MethodGet)
	}
	a, err := runningApp()
	if err != nil {
		return err
	}
	kr := a.Keyring()
	return writeAdminJSON(w, http.StatusOK, keysResponse{ActiveKid: kr.Active().ID, Keys: kr.JWKS().Keys})
}

func handleRotate(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return methodNotAllowed(w, http.MethodPost)
	}
	a, err := runningApp()
	if err != nil {
		return err
	}
	kid, err := a.RotateSigningKey(r.Context())
	if errors.Is(err, errKeyFromFile) {
		return caddy.APIError{HTTPStatus: http.StatusConflict, Err: err}
	}
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("rotating the signing key: %v", err)}
	}
	a.logger.Info("signing key rotated through the admin API", zapKid(kid))
	kr := a.Keyring()
	return writeAdminJSON(w, http.StatusOK, keysResponse{ActiveKid: kid, Keys: kr.JWKS().Keys})
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

var _ caddy.AdminRouter = adminAPI{}

func zapKid(kid string) zap.Field { return zap.String("kid", kid) }
