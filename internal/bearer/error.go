// Package bearer is the RFC 6750 side that the resource server (oauth_scope)
// and the authorization server's userinfo endpoint share: reading a bearer
// token from a request and answering a refusal with the right challenge.
package bearer

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Error codes of RFC 6750 §3.1.
const (
	InvalidRequest    = "invalid_request"
	InvalidToken      = "invalid_token"
	InsufficientScope = "insufficient_scope"
)

// Error is a refusal of a protected-resource request (RFC 6750 §3).
type Error struct {
	Status int
	Code   string // empty when the request carried no credentials (§3.1)
	Desc   string
	Scope  string // the scope the resource needs, for the challenge
	// ResourceMetadata is the URL of the resource's RFC 9728 metadata,
	// sent as the challenge's resource_metadata parameter (§5.1) so a
	// client can find where to get a token.
	ResourceMetadata string
}

// Error implements error: the description, for logs and Caddy's
// {http.error.message}.
func (e *Error) Error() string {
	if e.Desc != "" {
		return e.Desc
	}
	return e.Code
}

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	Scope       string `json:"scope,omitempty"`
}

// Challenge renders the WWW-Authenticate value (RFC 6750 §3). Attribute
// values here never contain a quote or backslash: descriptions are fixed
// strings and scopes are NQCHAR tokens.
func (e *Error) Challenge(realm string) string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	attr := func(k, v string) {
		if v == "" {
			return
		}
		b.WriteString(sep)
		b.WriteString(k)
		b.WriteString(`="`)
		b.WriteString(v)
		b.WriteByte('"')
		sep = ", "
	}
	attr("realm", realm)
	attr("error", e.Code)
	if e.Code != "" {
		// No error information without an error code (§3.1).
		attr("error_description", e.Desc)
	}
	attr("scope", e.Scope)
	// An https URL (oauth_scope checks it), so never a quote or backslash.
	attr("resource_metadata", e.ResourceMetadata)
	return b.String()
}

// Write sends the challenge and a small JSON body.
func (e *Error) Write(w http.ResponseWriter, realm string) {
	w.Header().Set("WWW-Authenticate", e.Challenge(realm))
	e.WriteBody(w)
}

// WriteBody sends the status and the JSON body, without a challenge.
func (e *Error) WriteBody(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	code := e.Code
	if code == "" {
		// No error code in the challenge when no token was sent (§3.1);
		// the body still says what is wrong.
		code = "unauthorized"
	}
	body, _ := json.Marshal(errorBody{Error: code, Description: e.Desc, Scope: e.Scope})
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}
