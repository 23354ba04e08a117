package caddyoauth

import (
	"encoding/json"
	"net/http"
)

// Error codes of RFC 6749 §5.2.
const (
	errInvalidRequest       = "invalid_request"
	errInvalidClient        = "invalid_client"
	errInvalidGrant         = "invalid_grant"
	errUnauthorizedClient   = "unauthorized_client"
	errUnsupportedGrantType = "unsupported_grant_type"
	errInvalidScope         = "invalid_scope"
	errServerError          = "server_error"
	// RFC 9449 §5, §8: a DPoP proof refused, or one without the server's
	// current nonce.
	errInvalidDPoPProof = "invalid_dpop_proof"
	errUseDPoPNonce     = "use_dpop_nonce"
	// errInvalidTarget is RFC 8707 §2's code for a resource that is
	// malformed or that the client may not have a token for.
	errInvalidTarget = "invalid_target"
	// errTemporarilyUnavailable is RFC 6749 §4.1.2.1's code, used at the
	// token endpoint too (as most servers do) when the store is down.
	errTemporarilyUnavailable = "temporarily_unavailable"
)

// oauthError is an error response of the token endpoint (RFC 6749 §5.2).
type oauthError struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func badRequest(code, desc string) *oauthError {
	return &oauthError{Status: http.StatusBadRequest, Code: code, Description: desc}
}

// invalidClient is a failed client authentication (RFC 6749 §5.2): 400,
// made 401 with a Basic challenge by challengeIfBasic when the client used
// the Authorization header.
func invalidClient(desc string) *oauthError {
	return badRequest(errInvalidClient, desc)
}

// unavailable is the answer when it depends on a store that does not
// answer: 503 with Retry-After, JSON as RFC 6749 §5.2.
func unavailable() *oauthError {
	return &oauthError{Status: http.StatusServiceUnavailable, Code: errTemporarilyUnavailable, Description: "the authorization server's store is unavailable; retry shortly"}
}

// noStore sets the headers RFC 6749 §5.1 requires on token responses.
func noStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// writeOAuthError writes e as JSON with Cache-Control: no-store.
func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	h := w.Header()
	noStore(h)
	if e.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "5")
	}
	if e.Status == http.StatusUnauthorized {
		// RFC 9110 §15.5.2 requires a challenge on every 401; only a
		// failed Basic authentication is one (challengeIfBasic).
		h.Set("WWW-Authenticate", `Basic realm="oauth", charset="UTF-8"`)
	}
	writeJSON(w, e.Status, e)
}

// writeJSON writes v as a JSON response body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":"server_error"}`)
	}
	writeJSONBytes(w, status, body)
}

func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
