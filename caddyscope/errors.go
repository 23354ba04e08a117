package caddyscope

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Error codes of RFC 6750 §3.1.
const (
	errInvalidRequest    = "invalid_request"
	errInvalidToken      = "invalid_token"
	errInsufficientScope = "insufficient_scope"
)

// bearerError is a refusal of a protected-resource request (RFC 6750 §3).
type bearerError struct {
	status int
	code   string // empty when the request carried no credentials (§3.1)
	desc   string
	scope  string
}

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	Scope       string `json:"scope,omitempty"`
}

// challenge renders the WWW-Authenticate value (RFC 6750 §3). Attribute
// values here never contain a quote or backslash: descriptions are fixed
// strings and scopes are NQCHAR tokens.
func (e *bearerError) challenge(realm string) string {
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
	attr("error", e.code)
	if e.code != "" {
		// No error information without an error code (§3.1).
		attr("error_description", e.desc)
	}
	attr("scope", e.scope)
	return b.String()
}

// write sends the challenge and a small JSON body.
func (e *bearerError) write(w http.ResponseWriter, realm string) {
	w.Header().Set("WWW-Authenticate", e.challenge(realm))
	e.writeBody(w)
}

// writeBody sends the status and the JSON body, without a challenge.
func (e *bearerError) writeBody(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	code := e.code
	if code == "" {
		// No error code in the challenge when no token was sent (§3.1);
		// the body still says what is wrong.
		code = "unauthorized"
	}
	body, _ := json.Marshal(errorBody{Error: code, Description: e.desc, Scope: e.scope})
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}
