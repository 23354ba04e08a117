package caddyoauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// Clients on the admin API:
//
//	GET    /oauth/clients                 every client, configured and store-kept
//	POST   /oauth/clients                 create a store-kept client; a secret,
//	                                      when it has one, is in this answer only
//	GET    /oauth/clients/{id}            one client
//	PUT    /oauth/clients/{id}            replace a store-kept client's settings
//	PATCH  /oauth/clients/{id}            change some (JSON merge patch, RFC 7396)
//	DELETE /oauth/clients/{id}            delete a store-kept client and its tokens
//	POST   /oauth/clients/{id}/secret     a new secret (shown once); the old one
//	                                      stops working now or at a given time
//	POST   /oauth/clients/{id}/revoke     refuse every token the client holds now
//
// The bodies are client metadata (admin_client_wire.go), checked by
// Client.provision as a configured client is. Configured clients (Caddyfile
// or JSON config) are listed and can have their tokens revoked, but are
// changed in the configuration, not here (409).

// maxSecretOverlap bounds how long a replaced secret may keep working.
const maxSecretOverlap = 30 * 24 * time.Hour

const maxAdminBody = 64 << 10

// clientsAPI is the admin API's /oauth/clients endpoints on the running
// app.
type clientsAPI struct{ *App }

// handleClients routes /oauth/clients and /oauth/clients/<id>[/<action>].
func handleClients(w http.ResponseWriter, r *http.Request) error {
	app, err := runningApp()
	if err != nil {
		return err
	}
	a := clientsAPI{app}
	rest := strings.TrimPrefix(r.URL.Path, "/oauth/clients")
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" {
		switch r.Method {
		case http.MethodGet:
			return a.list(w, r)
		case http.MethodPost:
			return a.create(w, r)
		}
		return methodNotAllowed(w, "GET, POST")
	}
	id, action, _ := strings.Cut(rest, "/")
	if !clientIDPattern.MatchString(id) {
		return apiErr(http.StatusNotFound, "no client %q", id)
	}
	switch action {
	case "":
		switch r.Method {
		case http.MethodGet:
			return a.get(w, r, id)
		case http.MethodPut:
			return a.replace(w, r, id)
		case http.MethodPatch:
			return a.patch(w, r, id)
		case http.MethodDelete:
			return a.delete(w, r, id)
		}
		return methodNotAllowed(w, "GET, PUT, PATCH, DELETE")
	case "secret", "revoke":
		if r.Method != http.MethodPost {
			return methodNotAllowed(w, http.MethodPost)
		}
		if action == "secret" {
			return a.rotateSecret(w, r, id)
		}
		return a.revoke(w, r, id)
	}
	return apiErr(http.StatusNotFound, "no such endpoint")
}

func apiErr(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

func storeErr(err error) error {
	return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("the store is unavailable: %v", err)}
}

// configSource is the source of the configured clients: caddyfile when
// the Caddyfile adapter made the config, else json.
func (a clientsAPI) configSource() string {
	if a.ConfigSource == configSourceCaddyfile {
		return configSourceCaddyfile
	}
	return "json"
}

func (a clientsAPI) view(c *Client, source string, revoked time.Time, sc *storedClient) clientView {
	v := clientView{ClientSettings: c.ClientSettings, Source: source, AccessTokenTTL: c.ttl.String(),
		ClientName: c.Name, Scope: strings.Join(c.Scopes, " ")}
	if !revoked.IsZero() {
		v.TokensRevoked = &revoked
	}
	if sc != nil {
		v.Created, v.Updated = &sc.Created, &sc.Updated
		if sc.PreviousSecretHash != "" && a.clock().Before(sc.PreviousSecretUntil) {
			v.PreviousSecretValidUntil = &sc.PreviousSecretUntil
		}
	}
	return v
}

func (a clientsAPI) list(w http.ResponseWriter, r *http.Request) error {
	out := []clientView{}
	for _, c := range a.Clients {
		e, err := a.registry.read(r.Context(), c.ID)
		if err != nil {
			return storeErr(err)
		}
		out = append(out, a.view(c, a.configSource(), e.revokedBefore, nil))
	}
	stored, err := a.registry.store.List(r.Context())
	if err != nil {
		return storeErr(err)
	}
	for _, sc := range stored {
		if _, static := a.clients[sc.ID]; static {
			continue
		}
		e, err := a.registry.read(r.Context(), sc.ID)
		if err != nil {
			return storeErr(err)
		}
		if e.client != nil {
			out = append(out, a.view(e.client, "store", e.revokedBefore, sc))
		}
	}
	slices.SortFunc(out, func(x, y clientView) int { return strings.Compare(x.ID, y.ID) })
	return writeAdminJSON(w, http.StatusOK, out)
}

// findClient returns the client, its source and, for a store-kept one,
// the stored record.
func (a clientsAPI) findClient(ctx context.Context, id string) (*Client, string, *storedClient, time.Time, error) {
	e, err := a.registry.read(ctx, id)
	if err != nil {
		return nil, "", nil, time.Time{}, storeErr(err)
	}
	if c, ok := a.clients[id]; ok {
		return c, a.configSource(), nil, e.revokedBefore, nil
	}
	if e.client == nil {
		return nil, "", nil, time.Time{}, apiErr(http.StatusNotFound, "no client %q", id)
	}
	sc, err := a.registry.store.Get(ctx, id)
	if err != nil {
		return nil, "", nil, time.Time{}, storeErr(err)
	}
	return e.client, "store", sc, e.revokedBefore, nil
}

func (a clientsAPI) get(w http.ResponseWriter, r *http.Request, id string) error {
	c, src, sc, revoked, err := a.findClient(r.Context(), id)
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, a.view(c, src, revoked, sc))
}

// validate provisions sc as a client would be, so the admin API refuses
// exactly what a Caddyfile would.
func (a clientsAPI) validate(sc *storedClient) (*Client, error) {
	c := sc.client()
	if err := c.provision(caddy.NewReplacer(), a.App); err != nil {
		return nil, apiErr(http.StatusBadRequest, "client %q: %v", sc.ID, err)
	}
	return c, nil
}

// hasSecret reports whether a client with these settings authenticates
// with a secret the server makes: confidential clients using
// client_secret_basic or client_secret_post. Public and private_key_jwt
// clients have none; client_secret_jwt needs the plain secret as its HMAC
// key, which the store does not keep, so it is configured in the
// Caddyfile.
func hasSecret(cs ClientSettings) (bool, error) {
	switch {
	case cs.Public:
		return false, nil
	case cs.AuthMethod == authClientSecretJWT:
		return false, apiErr(http.StatusBadRequest, "token_endpoint_auth_method: client_secret_jwt uses the plain secret as its HMAC key, which the store does not keep; use private_key_jwt or client_secret_basic, or configure the client in the Caddyfile")
	case cs.AuthMethod == "" || cs.AuthMethod == authBasic || cs.AuthMethod == authPost:
		return true, nil
	}
	return false, nil
}

// credentials gives sc the secret its settings call for: a new one (returned,
// to be shown once) when it needs one and has none, none when it needs none.
func credentials(sc *storedClient) (string, error) {
	need, err := hasSecret(sc.ClientSettings)
	if err != nil {
		return "", err
	}
	if !need {
		sc.SecretHash, sc.PreviousSecretHash, sc.PreviousSecretUntil = "", "", time.Time{}
		return "", nil
	}
	if sc.SecretHash != "" {
		return "", nil
	}
	secret, err := GenerateSecret()
	if err != nil {
		return "", err
	}
	sc.SecretHash = HashSecret(secret)
	return secret, nil
}

func (a clientsAPI) create(w http.ResponseWriter, r *http.Request) error {
	cs, err := decodeClientRequest(r)
	if err != nil {
		return err
	}
	v, err := a.createClient(r.Context(), cs, "", "client created through the admin API")
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/oauth/clients/"+v.ID)
	return writeAdminJSON(w, http.StatusCreated, v)
}

// createClient makes a store-kept client from cs (the admin API's POST and
// dynamic registration, whose registration access token's hash is
// regHash): an id when cs has none, a secret when it needs one (in the
// answer only).
func (a clientsAPI) createClient(ctx context.Context, cs ClientSettings, regHash, logMsg string) (clientView, error) {
	if cs.ID == "" {
		id, err := randomID()
		if err != nil {
			return clientView{}, err
		}
		cs.ID = "client-" + id[:16]
	}
	if _, static := a.clients[cs.ID]; static {
		return clientView{}, apiErr(http.StatusConflict, "client %q is defined in the configuration (%s)", cs.ID, a.configSource())
	}
	now := a.clock().UTC().Truncate(time.Second)
	sc := &storedClient{ClientSettings: cs, RegistrationTokenHash: regHash, Created: now, Updated: now}
	secret, err := credentials(sc)
	if err != nil {
		return clientView{}, err
	}
	c, err := a.validate(sc)
	if err != nil {
		return clientView{}, err
	}
	ok, err := a.registry.store.Create(ctx, sc)
	if err != nil {
		return clientView{}, storeErr(err)
	}
	if !ok {
		return clientView{}, apiErr(http.StatusConflict, "client %q exists", sc.ID)
	}
	a.registry.forget(sc.ID)
	a.logger.Info(logMsg, zap.String("client_id", sc.ID))
	v := a.view(c, "store", time.Time{}, sc)
	v.ClientSecret = secret
	return v, nil
}

// storeKept returns the stored record of a store-kept client, refusing
// configured clients with 409.
func (a clientsAPI) storeKept(ctx context.Context, id string) (*storedClient, error) {
	if _, static := a.clients[id]; static {
		return nil, apiErr(http.StatusConflict, "client %q is defined in the configuration (%s); change it there", id, a.configSource())
	}
	sc, err := a.registry.store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, apiErr(http.StatusNotFound, "no client %q", id)
	}
	if err != nil {
		return nil, storeErr(err)
	}
	return sc, nil
}

func (a clientsAPI) replace(w http.ResponseWriter, r *http.Request, id string) error {
	cs, err := decodeClientRequest(r)
	if err != nil {
		return err
	}
	return a.update(w, r, id, func(*storedClient) (ClientSettings, error) { return cs, nil })
}

func (a clientsAPI) patch(w http.ResponseWriter, r *http.Request, id string) error {
	return a.update(w, r, id, func(sc *storedClient) (ClientSettings, error) {
		return patchClientSettings(r, sc.ClientSettings)
	})
}

// update replaces a store-kept client's settings with what change makes of
// the stored ones (PUT, PATCH), keeping its secret when it still needs one.
func (a clientsAPI) update(w http.ResponseWriter, r *http.Request, id string, change func(*storedClient) (ClientSettings, error)) error {
	sc, err := a.storeKept(r.Context(), id)
	if err != nil {
		return err
	}
	cs, err := change(sc)
	if err != nil {
		return err
	}
	if cs.ID != "" && cs.ID != id {
		return apiErr(http.StatusBadRequest, "client_id %q in the body differs from the path", cs.ID)
	}
	cs.ID = id
	v, err := a.updateClient(r.Context(), sc, cs, "client changed through the admin API")
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, v)
}

// updateClient saves cs as sc's settings (the admin API's PUT and PATCH,
// RFC 7592's PUT).
func (a clientsAPI) updateClient(ctx context.Context, sc *storedClient, cs ClientSettings, logMsg string) (clientView, error) {
	sc.ClientSettings = cs
	secret, err := credentials(sc)
	if err != nil {
		return clientView{}, err
	}
	c, err := a.saveStoredClient(ctx, sc, logMsg)
	if err != nil {
		return clientView{}, err
	}
	v := a.view(c, "store", time.Time{}, sc)
	v.ClientSecret = secret
	return v, nil
}

// saveStoredClient validates a changed store-kept client, saves it and
// drops this instance's cached copy.
func (a clientsAPI) saveStoredClient(ctx context.Context, sc *storedClient, logMsg string) (*Client, error) {
	sc.Updated = a.clock().UTC().Truncate(time.Second)
	c, err := a.validate(sc)
	if err != nil {
		return nil, err
	}
	if err := a.registry.store.Put(ctx, sc); err != nil {
		return nil, storeErr(err)
	}
	a.registry.forget(sc.ID)
	a.logger.Info(logMsg, zap.String("client_id", sc.ID))
	return c, nil
}

func (a clientsAPI) delete(w http.ResponseWriter, r *http.Request, id string) error {
	if _, err := a.storeKept(r.Context(), id); err != nil {
		return err
	}
	if err := a.deleteClient(r.Context(), id, "client deleted through the admin API"); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteClient deletes a store-kept client and refuses its tokens.
func (a clientsAPI) deleteClient(ctx context.Context, id, logMsg string) error {
	// Mark its tokens revoked first: a client created again under the
	// same id must not inherit them.
	if err := a.registry.revokeTokens(ctx, id); err != nil {
		return storeErr(err)
	}
	if err := a.registry.store.Delete(ctx, id); err != nil {
		return storeErr(err)
	}
	a.registry.forget(id)
	a.logger.Info(logMsg, zap.String("client_id", id))
	return nil
}

// rotateRequest is the optional body of POST /oauth/clients/{id}/secret:
// how long the replaced secret keeps working, as a duration from now or
// as a time. Without either it stops working at once.
type rotateRequest struct {
	Overlap                  caddy.Duration `json:"overlap,omitempty"`
	PreviousSecretValidUntil *time.Time     `json:"previous_secret_valid_until,omitempty"`
}

// until returns when the replaced secret stops working (zero: now).
func (req rotateRequest) until(now time.Time) (time.Time, error) {
	var until time.Time
	switch {
	case req.Overlap != 0 && req.PreviousSecretValidUntil != nil:
		return until, apiErr(http.StatusBadRequest, "body: overlap and previous_secret_valid_until: set one, not both")
	case req.Overlap < 0:
		return until, apiErr(http.StatusBadRequest, "body: overlap is negative")
	case req.Overlap > 0:
		until = now.Add(time.Duration(req.Overlap))
	case req.PreviousSecretValidUntil != nil:
		until = *req.PreviousSecretValidUntil
		if !until.After(now) {
			return time.Time{}, apiErr(http.StatusBadRequest, "body: previous_secret_valid_until %s is not in the future", until.Format(time.RFC3339))
		}
	}
	if until.Sub(now) > maxSecretOverlap {
		return time.Time{}, apiErr(http.StatusBadRequest, "body: the old secret may keep working for at most %s", maxSecretOverlap)
	}
	return until.UTC(), nil
}

func (a clientsAPI) rotateSecret(w http.ResponseWriter, r *http.Request, id string) error {
	var req rotateRequest
	if r.ContentLength != 0 {
		if err := decodeJSONObject(r.Body, &req); err != nil && !errors.Is(err, io.EOF) {
			return apiErr(http.StatusBadRequest, "body: %v (fields: overlap, previous_secret_valid_until)", err)
		}
	}
	until, err := req.until(a.clock())
	if err != nil {
		return err
	}
	sc, err := a.storeKept(r.Context(), id)
	if err != nil {
		return err
	}
	if sc.SecretHash == "" {
		return apiErr(http.StatusConflict, "client %q has no secret (public or private_key_jwt)", id)
	}
	secret, err := GenerateSecret()
	if err != nil {
		return err
	}
	sc.PreviousSecretHash, sc.PreviousSecretUntil = "", time.Time{}
	if !until.IsZero() {
		sc.PreviousSecretHash, sc.PreviousSecretUntil = sc.SecretHash, until
	}
	sc.SecretHash = HashSecret(secret)
	c, err := a.saveStoredClient(r.Context(), sc, "client secret rotated through the admin API")
	if err != nil {
		return err
	}
	v := a.view(c, "store", time.Time{}, sc)
	v.ClientSecret = secret
	return writeAdminJSON(w, http.StatusOK, v)
}

func (a clientsAPI) revoke(w http.ResponseWriter, r *http.Request, id string) error {
	if _, _, _, _, err := a.findClient(r.Context(), id); err != nil {
		return err
	}
	if err := a.registry.revokeTokens(r.Context(), id); err != nil {
		return storeErr(err)
	}
	a.registry.forget(id)
	a.logger.Info("client tokens revoked through the admin API", zap.String("client_id", id))
	a.audit.emit(r, eventClientRevoked, map[string]any{"client_id": id, "reason": "admin API"})
	return a.get(w, r, id)
}
