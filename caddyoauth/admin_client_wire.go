package caddyoauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// The client metadata as the admin API (and dynamic registration, RFC
// 7591) speaks it: ClientSettings, with the two names RFC 7591 §2 spells
// differently from the configuration: client_name (the configuration's
// name) and scope, a space-separated string (the configuration's scopes
// list). The old names are still accepted on input; answers use RFC
// 7591's. Everything else is ClientSettings' own JSON, and every request
// is checked by Client.provision, as a configured client is.

// clientRequest is the body of POST, PUT and PATCH.
type clientRequest struct {
	ClientSettings
	// ClientName and Scope are RFC 7591 §2's client_name and scope.
	ClientName *string `json:"client_name,omitempty"`
	Scope      *string `json:"scope,omitempty"`
	// OldName and OldScopes shadow ClientSettings' name and scopes (the
	// configuration's spelling), still taken on input.
	OldName   *string  `json:"name,omitempty"`
	OldScopes []string `json:"scopes,omitempty"`
}

// settings returns the request's ClientSettings, refusing a field given
// under both of its names.
func (req *clientRequest) settings() (ClientSettings, error) {
	cs := req.ClientSettings
	switch {
	case req.ClientName != nil && req.OldName != nil:
		return cs, apiErr(http.StatusBadRequest, "body: client_name and name are the same field; send client_name")
	case req.ClientName != nil:
		cs.Name = *req.ClientName
	case req.OldName != nil:
		cs.Name = *req.OldName
	}
	switch {
	case req.Scope != nil && req.OldScopes != nil:
		return cs, apiErr(http.StatusBadRequest, "body: scope and scopes are the same field; send scope (space-separated, RFC 7591 §2)")
	case req.Scope != nil:
		cs.Scopes = strings.Fields(*req.Scope)
	case req.OldScopes != nil:
		cs.Scopes = req.OldScopes
	}
	return cs, nil
}

// wireSettings is cs in the request's shape, the document a PATCH is
// applied to.
func wireSettings(cs ClientSettings) clientRequest {
	name, scope := cs.Name, strings.Join(cs.Scopes, " ")
	req := clientRequest{ClientSettings: cs}
	if name != "" {
		req.ClientName = &name
	}
	if scope != "" {
		req.Scope = &scope
	}
	return req
}

// clientView is a client as the admin API shows it: never a secret or its
// hash, except the secret once when it is made.
type clientView struct {
	ClientSettings
	ClientName string `json:"client_name,omitempty"`
	Scope      string `json:"scope"`
	// HideName and HideScopes shadow ClientSettings' name and scopes,
	// which the answer spells as RFC 7591 does; always nil.
	HideName   *struct{} `json:"name,omitempty"`
	HideScopes *struct{} `json:"scopes,omitempty"`

	// Source is where the client is defined: caddyfile, json (a JSON
	// config, through a file or Caddy's /config API) or store (the admin
	// API or dynamic registration).
	Source string `json:"source"`
	// AccessTokenTTL is the lifetime the client's tokens get (shadows the
	// settings' override).
	AccessTokenTTL string `json:"access_token_ttl"`
	// PreviousSecretValidUntil is when the secret replaced by the last
	// rotation stops working, while it still works.
	PreviousSecretValidUntil *time.Time `json:"previous_secret_valid_until,omitempty"`
	TokensRevoked            *time.Time `json:"tokens_revoked_before,omitempty"`
	Created                  *time.Time `json:"created,omitempty"`
	Updated                  *time.Time `json:"updated,omitempty"`
	ClientSecret             string     `json:"client_secret,omitempty"`
	// RegistrationClientURI is where a dynamically registered client
	// manages itself (RFC 7592).
	RegistrationClientURI string `json:"registration_client_uri,omitempty"`
}

// decodeJSONObject reads one JSON object of at most maxAdminBody bytes
// into v, refusing unknown fields and anything after the object.
func decodeJSONObject(body io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	// One JSON object and nothing after it (RFC 8259 §2: a JSON text is
	// one value): `{…}{…}` or `{…} x` is refused, not half read.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errTrailingData
	}
	return nil
}

var errTrailingData = errors.New("trailing data after the JSON object")

// decodeClientRequest reads a POST or PUT body as client settings.
func decodeClientRequest(r *http.Request) (ClientSettings, error) {
	return decodeClientBody(r.Body)
}

func decodeClientBody(body io.Reader) (ClientSettings, error) {
	var req clientRequest
	if err := decodeJSONObject(body, &req); err != nil {
		return ClientSettings{}, apiErr(http.StatusBadRequest, "body: %v (client metadata as in RFC 7591 §2; secrets are made by the server)", err)
	}
	return req.settings()
}

// patchClientSettings applies a JSON merge patch (RFC 7396) read from r
// to cs and decodes the result as a PUT body would be.
func patchClientSettings(r *http.Request, cs ClientSettings) (ClientSettings, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		if mt != "application/merge-patch+json" && mt != "application/json" {
			return cs, apiErr(http.StatusUnsupportedMediaType, "PATCH takes a JSON merge patch (RFC 7396): Content-Type application/merge-patch+json")
		}
	}
	var patch any
	if err := decodeJSONObject(r.Body, &patch); err != nil {
		return cs, apiErr(http.StatusBadRequest, "body: %v", err)
	}
	if _, ok := patch.(map[string]any); !ok {
		return cs, apiErr(http.StatusBadRequest, "body: a merge patch of a client is a JSON object")
	}
	cur, err := json.Marshal(wireSettings(cs))
	if err != nil {
		return cs, err
	}
	var doc any
	if err := json.Unmarshal(cur, &doc); err != nil {
		return cs, err
	}
	merged, err := json.Marshal(mergePatch(doc, patch))
	if err != nil {
		return cs, err
	}
	return decodeClientBody(bytes.NewReader(merged))
}

// mergePatch is RFC 7396 §2's MergePatch(Target, Patch): members of an
// object patch are merged recursively, a null removes a member, anything
// else replaces the target.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}
