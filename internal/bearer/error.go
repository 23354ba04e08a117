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
	// DPoP, when set, adds (or with Only, makes) the challenge a DPoP
	// challenge (RFC 9449 §7.1).
	DPoP *DPoPChallenge
}

// DPoP error codes of RFC 9449 §7.1 and §9.
const (
	InvalidDPoPProof = "invalid_dpop_proof"
	UseDPoPNonce     = "use_dpop_nonce"
)

// DPoPChallenge describes the DPoP challenge of a refusal.
type DPoPChallenge struct {
	Algs string // space-separated algorithms accepted for proofs
	Only bool   // the resource takes DPoP-bound tokens only: no Bearer challenge
	// ErrorHere puts the error code on the DPoP challenge rather than the
	// Bearer one: the DPoP proof, or the token's binding, is what failed.
	ErrorHere bool
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

// Challenge renders the WWW-Authenticate value (RFC 6750 §3) of a Bearer
// refusal. Attribute values here never contain a quote or backslash:
// descriptions are fixed strings and scopes are NQCHAR tokens.
func (e *Error) Challenge(realm string) string {
	return e.render("Bearer", realm, true, "")
}

// Challenges renders every WWW-Authenticate value of the refusal: Bearer,
// DPoP (RFC 9449 §7.1), or both, the error code on the one whose scheme
// failed.
func (e *Error) Challenges(realm string) []string {
	d := e.DPoP
	if d == nil {
		return []string{e.Challenge(realm)}
	}
	dpop := e.render("DPoP", realm, d.Only || d.ErrorHere, d.Algs)
	if d.Only {
		return []string{dpop}
	}
	return []string{e.render("Bearer", realm, !d.ErrorHere, ""), dpop}
}

func (e *Error) render(scheme, realm string, withError bool, algs string) string {
	var b strings.Builder
	b.WriteString(scheme)
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
	if withError {
		attr("error", e.Code)
		if e.Code != "" {
			// No error information without an error code (§3.1).
			attr("error_description", e.Desc)
		}
	}
	attr("scope", e.Scope)
	// An https URL (oauth_scope checks it), so never a quote or backslash.
	attr("resource_metadata", e.ResourceMetadata)
	attr("algs", algs)
	return b.String()
}

// Write sends the challenge and a small JSON body.
func (e *Error) Write(w http.ResponseWriter, realm string) {
	e.SetChallenges(w.Header(), realm)
	e.WriteBody(w)
}

// SetChallenges puts the refusal's challenges on h, replacing any.
func (e *Error) SetChallenges(h http.Header, realm string) {
	h.Del("WWW-Authenticate")
	for _, c := range e.Challenges(realm) {
		h.Add("WWW-Authenticate", c)
	}
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
