package caddyoauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// Clients on the admin API:
//
//	GET    /oauth/clients                 every client, Caddyfile and store-kept
//	POST   /oauth/clients                 create a store-kept client; the
//	                                      secret is in this answer only
//	GET    /oauth/clients/{id}            one client
//	PUT    /oauth/clients/{id}            replace a store-kept client's settings
//	DELETE /oauth/clients/{id}            delete a store-kept client and its tokens
//	POST   /oauth/clients/{id}/secret     a new secret (shown once); the old one stops working
//	POST   /oauth/clients/{id}/revoke     refuse every token the client holds now
//
// Caddyfile clients are listed and can have their tokens revoked, but are
// changed in the Caddyfile, not here (409).

// clientView is a client as the admin API shows it: never a secret or its
// hash, except the secret once when it is made.
type clientView struct {
	ID             string            `json:"client_id"`
	Name           string            `json:"name,omitempty"`
	Source         string            `json:"source"` // caddyfile or store
	Public         bool              `json:"public,omitempty"`
	GrantTypes     []string          `json:"grant_types"`
	Scopes         []string          `json:"scopes"`
	AccessTokenTTL string            `json:"access_token_ttl"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	TokensRevoked  *time.Time        `json:"tokens_revoked_before,omitempty"`
	Created        *time.Time        `json:"created,omitempty"`
	Updated        *time.Time        `json:"updated,omitempty"`
	ClientSecret   string            `json:"client_secret,omitempty"`
}

// clientRequest is the body of a create or replace.
type clientRequest struct {
	ID             string            `json:"client_id"`
	Name           string            `json:"name"`
	GrantTypes     []string          `json:"grant_types"`
	Scopes         []string          `json:"scopes"`
	AccessTokenTTL caddy.Duration    `json:"access_token_ttl"`
	Metadata       map[string]string `json:"metadata"`
}

const maxAdminBody = 64 << 10

func handleClients(w http.ResponseWriter, r *http.Request) error {
	a, err := runningApp()
	if err != nil {
		return err
	}
	rest := strings.TrimPrefix(r.URL.Path, "/oauth/clients")
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" {
		switch r.Method {
		case http.MethodGet:
			return a.adminListClients(w, r)
		case http.MethodPost:
			return a.adminCreateClient(w, r)
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
			return a.adminGetClient(w, r, id)
		case http.MethodPut:
			return a.adminReplaceClient(w, r, id)
		case http.MethodDelete:
			return a.adminDeleteClient(w, r, id)
		}
		return methodNotAllowed(w, "GET, PUT, DELETE")
	case "secret", "revoke":
		if r.Method != http.MethodPost {
			return methodNotAllowed(w, http.MethodPost)
		}
		if action == "secret" {
			return a.adminRotateSecret(w, r, id)
		}
		return a.adminRevokeClient(w, r, id)
	}
	return apiErr(http.StatusNotFound, "no such endpoint")
}

func apiErr(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

func storeErr(err error) error {
	return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("the store is unavailable: %v", err)}
}

func (a *App) view(c *Client, source string, revoked time.Time, sc *storedClient) clientView {
	v := clientView{
		ID: c.ID, Name: c.Name, Source: source, Public: c.Public,
		GrantTypes: c.GrantTypes, Scopes: c.Scopes, AccessTokenTTL: c.ttl.String(), Metadata: c.Metadata,
	}
	if !revoked.IsZero() {
		v.TokensRevoked = &revoked
	}
	if sc != nil {
		v.Created, v.Updated = &sc.Created, &sc.Updated
	}
	return v
}

func (a *App) adminListClients(w http.ResponseWriter, r *http.Request) error {
	out := []clientView{}
	for _, c := range a.Clients {
		e, err := a.readClientEntry(r.Context(), c.ID)
		if err != nil {
			return storeErr(err)
		}
		out = append(out, a.view(c, "caddyfile", e.revokedBefore, nil))
	}
	keys, err := a.store.List(r.Context(), "clients/")
	if err != nil {
		return storeErr(err)
	}
	for _, k := range keys {
		sc, err := a.loadStoredClient(r.Context(), k)
		if err != nil {
			continue // logged by loadStoredClient; not listable
		}
		if _, static := a.clients[sc.ID]; static {
			continue
		}
		e, err := a.readClientEntry(r.Context(), sc.ID)
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

func (a *App) loadStoredClient(ctx context.Context, key string) (*storedClient, error) {
	b, err := a.store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	var sc storedClient
	if err := json.Unmarshal(b, &sc); err != nil {
		a.logger.Error("corrupt stored client", zap.String("key", key))
		return nil, err
	}
	return &sc, nil
}

// findClient returns the client, its source and, for a store-kept one,
// the stored record.
func (a *App) findClient(ctx context.Context, id string) (*Client, string, *storedClient, time.Time, error) {
	e, err := a.readClientEntry(ctx, id)
	if err != nil {
		return nil, "", nil, time.Time{}, storeErr(err)
	}
	if c, ok := a.clients[id]; ok {
		return c, "caddyfile", nil, e.revokedBefore, nil
	}
	if e.client == nil {
		return nil, "", nil, time.Time{}, apiErr(http.StatusNotFound, "no client %q", id)
	}
	sc, err := a.loadStoredClient(ctx, clientStoreKey(id))
	if err != nil {
		return nil, "", nil, time.Time{}, storeErr(err)
	}
	return e.client, "store", sc, e.revokedBefore, nil
}

func (a *App) adminGetClient(w http.ResponseWriter, r *http.Request, id string) error {
	c, src, sc, revoked, err := a.findClient(r.Context(), id)
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, a.view(c, src, revoked, sc))
}

func decodeClientRequest(r *http.Request) (clientRequest, error) {
	var req clientRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, apiErr(http.StatusBadRequest, "body: %v (fields: client_id, name, grant_types, scopes, access_token_ttl, metadata; secrets are made by the server)", err)
	}
	return req, nil
}

// validate provisions sc as a client would be, so the admin API refuses
// exactly what a Caddyfile would.
func (a *App) validate(sc *storedClient) (*Client, error) {
	c := sc.client()
	if err := c.provision(caddy.NewReplacer(), a); err != nil {
		return nil, apiErr(http.StatusBadRequest, "client %q: %v", sc.ID, err)
	}
	return c, nil
}

func (a *App) adminCreateClient(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeClientRequest(r)
	if err != nil {
		return err
	}
	if req.ID == "" {
		id, err := randomID()
		if err != nil {
			return err
		}
		req.ID = "client-" + id[:16]
	}
	if _, static := a.clients[req.ID]; static {
		return apiErr(http.StatusConflict, "client %q is defined in the Caddyfile", req.ID)
	}
	secret, err := GenerateSecret()
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	sc := &storedClient{
		ID: req.ID, Name: req.Name, SecretHash: HashSecret(secret), GrantTypes: req.GrantTypes,
		Scopes: req.Scopes, AccessTokenTTL: req.AccessTokenTTL, Metadata: req.Metadata, Created: now, Updated: now,
	}
	c, err := a.validate(sc)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(sc)
	ok, err := a.store.PutIfAbsent(r.Context(), clientStoreKey(sc.ID), body, 0)
	if err != nil {
		return storeErr(err)
	}
	if !ok {
		return apiErr(http.StatusConflict, "client %q exists", sc.ID)
	}
	a.forgetClient(sc.ID)
	a.logger.Info("client created through the admin API", zap.String("client_id", sc.ID))
	v := a.view(c, "store", time.Time{}, sc)
	v.ClientSecret = secret
	w.Header().Set("Location", "/oauth/clients/"+sc.ID)
	return writeAdminJSON(w, http.StatusCreated, v)
}

// storeKept returns the stored record of a store-kept client, refusing
// Caddyfile clients with 409.
func (a *App) storeKept(ctx context.Context, id string) (*storedClient, error) {
	if _, static := a.clients[id]; static {
		return nil, apiErr(http.StatusConflict, "client %q is defined in the Caddyfile; change it there", id)
	}
	sc, err := a.loadStoredClient(ctx, clientStoreKey(id))
	if errors.Is(err, ErrNotFound) {
		return nil, apiErr(http.StatusNotFound, "no client %q", id)
	}
	if err != nil {
		return nil, storeErr(err)
	}
	return sc, nil
}

func (a *App) adminReplaceClient(w http.ResponseWriter, r *http.Request, id string) error {
	req, err := decodeClientRequest(r)
	if err != nil {
		return err
	}
	if req.ID != "" && req.ID != id {
		return apiErr(http.StatusBadRequest, "client_id %q in the body differs from the path", req.ID)
	}
	sc, err := a.storeKept(r.Context(), id)
	if err != nil {
		return err
	}
	sc.Name, sc.GrantTypes, sc.Scopes, sc.AccessTokenTTL, sc.Metadata = req.Name, req.GrantTypes, req.Scopes, req.AccessTokenTTL, req.Metadata
	c, err := a.saveStoredClient(r.Context(), sc, "client replaced through the admin API")
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, a.view(c, "store", time.Time{}, sc))
}

// saveStoredClient validates a changed store-kept client, saves it and
// drops this instance's cached copy.
func (a *App) saveStoredClient(ctx context.Context, sc *storedClient, logMsg string) (*Client, error) {
	sc.Updated = time.Now().UTC().Truncate(time.Second)
	c, err := a.validate(sc)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(sc)
	if err := a.store.Put(ctx, clientStoreKey(sc.ID), body, 0); err != nil {
		return nil, storeErr(err)
	}
	a.forgetClient(sc.ID)
	a.logger.Info(logMsg, zap.String("client_id", sc.ID))
	return c, nil
}

func (a *App) adminDeleteClient(w http.ResponseWriter, r *http.Request, id string) error {
	if _, err := a.storeKept(r.Context(), id); err != nil {
		return err
	}
	// Mark its tokens revoked first: a client created again under the
	// same id must not inherit them.
	if err := a.revokeClientTokens(r.Context(), id); err != nil {
		return storeErr(err)
	}
	if err := a.store.Delete(r.Context(), clientStoreKey(id)); err != nil {
		return storeErr(err)
	}
	a.forgetClient(id)
	a.logger.Info("client deleted through the admin API", zap.String("client_id", id))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *App) adminRotateSecret(w http.ResponseWriter, r *http.Request, id string) error {
	sc, err := a.storeKept(r.Context(), id)
	if err != nil {
		return err
	}
	secret, err := GenerateSecret()
	if err != nil {
		return err
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

func (a *App) adminRevokeClient(w http.ResponseWriter, r *http.Request, id string) error {
	if _, _, _, _, err := a.findClient(r.Context(), id); err != nil {
		return err
	}
	if err := a.revokeClientTokens(r.Context(), id); err != nil {
		return storeErr(err)
	}
	a.forgetClient(id)
	a.logger.Info("client tokens revoked through the admin API", zap.String("client_id", id))
	return a.adminGetClient(w, r, id)
}

// revokeClientTokens refuses every token of id issued up to now: access
// tokens, refresh-token families and codes, and it voids remembered
// consents given before it. The mark outlives every token that could
// predate it (the longest refresh-token family), then expires.
func (a *App) revokeClientTokens(ctx context.Context, id string) error {
	now := strconv.FormatInt(time.Now().Unix(), 10)
	ttl := max(maxAccessTokenTTL, time.Duration(a.RefreshTokenMaxTTL)) + maxLeeway + time.Minute
	return a.store.Put(ctx, revocationStoreKey(id), []byte(now), ttl)
}
