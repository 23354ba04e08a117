package caddyoauth

import (
	"context"
	"encoding/json"
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
	ClientSettings
	Source string `json:"source"` // caddyfile or store
	// AccessTokenTTL is the lifetime the client's tokens get (shadows the
	// settings' override).
	AccessTokenTTL string     `json:"access_token_ttl"`
	TokensRevoked  *time.Time `json:"tokens_revoked_before,omitempty"`
	Created        *time.Time `json:"created,omitempty"`
	Updated        *time.Time `json:"updated,omitempty"`
	ClientSecret   string     `json:"client_secret,omitempty"`
}

// clientRequest is the body of POST and PUT: the client's settings, of
// which the admin API takes those of a client-credentials client today.
type clientRequest struct {
	ClientSettings
}

// adminClientFields are the settings the admin API takes.
const adminClientFields = "client_id, name, grant_types, scopes, resources, access_token_ttl, metadata"

// check refuses settings the admin API does not take yet, naming the field.
func (req *clientRequest) check() error {
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"public", req.Public},
		{"redirect_uris", len(req.RedirectURIs) > 0},
		{"require_pkce", req.RequirePKCE},
		{"id_token_signed_response_alg", req.IDTokenSignedResponseAlg != ""},
		{"post_logout_redirect_uris", len(req.PostLogoutRedirectURIs) > 0},
		{"token_endpoint_auth_method", req.AuthMethod != ""},
		{"jwks", len(req.JWKS) > 0},
		{"jwks_uri", req.JWKSURI != ""},
		{"assertion_issuer", req.AssertionIssuer != ""},
		{"assertion_subjects", len(req.AssertionSubjects) > 0},
	} {
		if f.set {
			return apiErr(http.StatusBadRequest, "body: %s cannot be set through the admin API yet (fields: %s; secrets are made by the server)", f.name, adminClientFields)
		}
	}
	return nil
}

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
		case http.MethodDelete:
			return a.delete(w, r, id)
		}
		return methodNotAllowed(w, "GET, PUT, DELETE")
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

func (a clientsAPI) view(c *Client, source string, revoked time.Time, sc *storedClient) clientView {
	v := clientView{ClientSettings: c.ClientSettings, Source: source, AccessTokenTTL: c.ttl.String()}
	if !revoked.IsZero() {
		v.TokensRevoked = &revoked
	}
	if sc != nil {
		v.Created, v.Updated = &sc.Created, &sc.Updated
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
		out = append(out, a.view(c, "caddyfile", e.revokedBefore, nil))
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
		return c, "caddyfile", nil, e.revokedBefore, nil
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

func decodeClientRequest(r *http.Request) (clientRequest, error) {
	var req clientRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, apiErr(http.StatusBadRequest, "body: %v (fields: %s; secrets are made by the server)", err, adminClientFields)
	}
	// One JSON object and nothing after it (RFC 8259 §2: a JSON text is
	// one value): `{…}{…}` or `{…} x` is refused, not half read.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, apiErr(http.StatusBadRequest, "body: trailing data after the JSON object")
	}
	return req, req.check()
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

func (a clientsAPI) create(w http.ResponseWriter, r *http.Request) error {
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
	now := a.clock().UTC().Truncate(time.Second)
	sc := &storedClient{ClientSettings: req.ClientSettings, SecretHash: HashSecret(secret), Created: now, Updated: now}
	c, err := a.validate(sc)
	if err != nil {
		return err
	}
	ok, err := a.registry.store.Create(r.Context(), sc)
	if err != nil {
		return storeErr(err)
	}
	if !ok {
		return apiErr(http.StatusConflict, "client %q exists", sc.ID)
	}
	a.registry.forget(sc.ID)
	a.logger.Info("client created through the admin API", zap.String("client_id", sc.ID))
	v := a.view(c, "store", time.Time{}, sc)
	v.ClientSecret = secret
	w.Header().Set("Location", "/oauth/clients/"+sc.ID)
	return writeAdminJSON(w, http.StatusCreated, v)
}

// storeKept returns the stored record of a store-kept client, refusing
// Caddyfile clients with 409.
func (a clientsAPI) storeKept(ctx context.Context, id string) (*storedClient, error) {
	if _, static := a.clients[id]; static {
		return nil, apiErr(http.StatusConflict, "client %q is defined in the Caddyfile; change it there", id)
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
	req.ID = id
	sc.ClientSettings = req.ClientSettings
	c, err := a.saveStoredClient(r.Context(), sc, "client replaced through the admin API")
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, a.view(c, "store", time.Time{}, sc))
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
	// Mark its tokens revoked first: a client created again under the
	// same id must not inherit them.
	if err := a.registry.revokeTokens(r.Context(), id); err != nil {
		return storeErr(err)
	}
	if err := a.registry.store.Delete(r.Context(), id); err != nil {
		return storeErr(err)
	}
	a.registry.forget(id)
	a.logger.Info("client deleted through the admin API", zap.String("client_id", id))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a clientsAPI) rotateSecret(w http.ResponseWriter, r *http.Request, id string) error {
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
