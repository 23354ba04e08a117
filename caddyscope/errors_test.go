package caddyscope

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestChallengeRFCExamples renders the two challenges RFC 6750 §3 shows.
func TestChallengeRFCExamples(t *testing.T) {
	// §3: a request without authentication: `Bearer realm="example"`. §3.1:
	// no error code "or other error information" when the request lacks
	// any authentication information.
	noToken := &bearerError{status: http.StatusUnauthorized, desc: "bearer token required"}
	if got, want := noToken.challenge("example"), `Bearer realm="example"`; got != want {
		t.Errorf("no token: challenge = %q, want %q", got, want)
	}
	// §3: an expired token.
	expired := &bearerError{status: http.StatusUnauthorized, code: errInvalidToken, desc: "The access token expired"}
	if got, want := expired.challenge("example"), `Bearer realm="example", error="invalid_token", error_description="The access token expired"`; got != want {
		t.Errorf("expired: challenge = %q, want %q", got, want)
	}
}

// TestChallenge checks the attributes of each kind of refusal (RFC 6750 §3).
func TestChallenge(t *testing.T) {
	tests := []struct {
		name  string
		err   bearerError
		realm string
		want  challenge
	}{
		{
			"no credentials, no realm: bare scheme (RFC 6750 §3)",
			bearerError{status: http.StatusUnauthorized, desc: "bearer token required"},
			"", challenge{},
		},
		{
			"no credentials: realm only, no error information (RFC 6750 §3.1)",
			bearerError{status: http.StatusUnauthorized, desc: "bearer token required"},
			"api", challenge{"realm": "api"},
		},
		{
			"invalid_token (RFC 6750 §3.1)",
			bearerError{status: http.StatusUnauthorized, code: errInvalidToken, desc: "token expired", scope: "user:read"},
			"api", challenge{"realm": "api", "error": "invalid_token", "error_description": "token expired", "scope": "user:read"},
		},
		{
			"insufficient_scope names the scopes needed (RFC 6750 §3, §3.1)",
			bearerError{status: http.StatusForbidden, code: errInsufficientScope, desc: "token lacks a required scope", scope: "user:write admin"},
			"", challenge{"error": "insufficient_scope", "error_description": "token lacks a required scope", "scope": "user:write admin"},
		},
		{
			"invalid_request (RFC 6750 §3.1)",
			bearerError{status: http.StatusBadRequest, code: errInvalidRequest, desc: "more than one Authorization header"},
			"my realm", challenge{"realm": "my realm", "error": "invalid_request", "error_description": "more than one Authorization header"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseChallenge(t, tt.err.challenge(tt.realm))
			if len(got) != len(tt.want) {
				t.Fatalf("challenge %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("challenge %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// TestNoCredentialsChallengeKeepsScope: a challenge for a request without
// credentials has no error information (RFC 6750 §3.1) but may still say
// which scope the resource needs (RFC 6750 §3, scope attribute).
func TestNoCredentialsChallengeKeepsScope(t *testing.T) {
	e := &bearerError{status: http.StatusUnauthorized, desc: "bearer token required", scope: "user:read"}
	ch := parseChallenge(t, e.challenge("api"))
	if _, ok := ch["error"]; ok {
		t.Errorf("error attribute in %v", ch)
	}
	if _, ok := ch["error_description"]; ok {
		t.Errorf("error_description attribute in %v", ch)
	}
	if ch["realm"] != "api" {
		t.Errorf("realm = %q", ch["realm"])
	}
	if s, ok := ch["scope"]; ok && s != "user:read" {
		t.Errorf("scope = %q, want user:read", s)
	}
}

// TestWrite checks the whole refusal: status, challenge, headers, body.
func TestWrite(t *testing.T) {
	tests := []struct {
		name     string
		err      bearerError
		bodyCode string // "" means: not an RFC 6750 code
	}{
		{"400 invalid_request", bearerError{status: http.StatusBadRequest, code: errInvalidRequest, desc: "d1"}, "invalid_request"},
		{"401 invalid_token", bearerError{status: http.StatusUnauthorized, code: errInvalidToken, desc: "d2", scope: "a"}, "invalid_token"},
		{"403 insufficient_scope", bearerError{status: http.StatusForbidden, code: errInsufficientScope, desc: "d3", scope: "a b"}, "insufficient_scope"},
		{"401 without credentials", bearerError{status: http.StatusUnauthorized, desc: "d4"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.err.write(rec, "api")
			body := checkRefused(t, result{rec: rec}, tt.err.status, tt.bodyCode)
			if tt.bodyCode == "" && slices.Contains(rfc6750Codes, body.Error) {
				t.Errorf("body error = %q for a request without credentials (RFC 6750 §3.1)", body.Error)
			}
			if body.Description != tt.err.desc {
				t.Errorf("body error_description = %q, want %q", body.Description, tt.err.desc)
			}
			if body.Scope != tt.err.scope {
				t.Errorf("body scope = %q, want %q", body.Scope, tt.err.scope)
			}
			if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q", got)
			}
			ch := parseChallenge(t, rec.Header().Get("WWW-Authenticate"))
			if ch["realm"] != "api" {
				t.Errorf("realm = %q", ch["realm"])
			}
			if ch["error"] != tt.err.code {
				t.Errorf("challenge error = %q, want %q", ch["error"], tt.err.code)
			}
		})
	}
}

// TestWriteBodyHasNoChallenge: a 405 is not an authentication failure, so
// it carries no Bearer challenge.
func TestWriteBodyHasNoChallenge(t *testing.T) {
	rec := httptest.NewRecorder()
	(&bearerError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", desc: "nope"}).writeBody(rec)
	checkRefused(t, result{rec: rec}, http.StatusMethodNotAllowed, "method_not_allowed")
	if v := rec.Header().Values("WWW-Authenticate"); len(v) != 0 {
		t.Errorf("WWW-Authenticate = %q on a 405", v)
	}
}
