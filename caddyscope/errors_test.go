package caddyscope

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/caddyapigw/gateway/internal/bearer"
)

// TestChallengeRFCExamples renders the two challenges RFC 6750 §3 shows.
func TestChallengeRFCExamples(t *testing.T) {
	// §3: a request without authentication: `Bearer realm="example"`. §3.1:
	// no error code "or other error information" when the request lacks
	// any authentication information.
	noToken := &bearer.Error{Status: http.StatusUnauthorized, Desc: "bearer token required"}
	if got, want := noToken.Challenge("example"), `Bearer realm="example"`; got != want {
		t.Errorf("no token: challenge = %q, want %q", got, want)
	}
	// §3: an expired token.
	expired := &bearer.Error{Status: http.StatusUnauthorized, Code: bearer.InvalidToken, Desc: "The access token expired"}
	if got, want := expired.Challenge("example"), `Bearer realm="example", error="invalid_token", error_description="The access token expired"`; got != want {
		t.Errorf("expired: challenge = %q, want %q", got, want)
	}
}

// TestChallenge checks the attributes of each kind of refusal (RFC 6750 §3).
func TestChallenge(t *testing.T) {
	tests := []struct {
		name  string
		err   bearer.Error
		realm string
		want  challenge
	}{
		{
			"no credentials, no realm: bare scheme (RFC 6750 §3)",
			bearer.Error{Status: http.StatusUnauthorized, Desc: "bearer token required"},
			"", challenge{},
		},
		{
			"no credentials: realm only, no error information (RFC 6750 §3.1)",
			bearer.Error{Status: http.StatusUnauthorized, Desc: "bearer token required"},
			"api", challenge{"realm": "api"},
		},
		{
			"invalid_token (RFC 6750 §3.1)",
			bearer.Error{Status: http.StatusUnauthorized, Code: bearer.InvalidToken, Desc: "token expired", Scope: "user:read"},
			"api", challenge{"realm": "api", "error": "invalid_token", "error_description": "token expired", "scope": "user:read"},
		},
		{
			"insufficient_scope names the scopes needed (RFC 6750 §3, §3.1)",
			bearer.Error{Status: http.StatusForbidden, Code: bearer.InsufficientScope, Desc: "token lacks a required scope", Scope: "user:write admin"},
			"", challenge{"error": "insufficient_scope", "error_description": "token lacks a required scope", "scope": "user:write admin"},
		},
		{
			"invalid_request (RFC 6750 §3.1)",
			bearer.Error{Status: http.StatusBadRequest, Code: bearer.InvalidRequest, Desc: "more than one Authorization header"},
			"my realm", challenge{"realm": "my realm", "error": "invalid_request", "error_description": "more than one Authorization header"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseChallenge(t, tt.err.Challenge(tt.realm))
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
	e := &bearer.Error{Status: http.StatusUnauthorized, Desc: "bearer token required", Scope: "user:read"}
	ch := parseChallenge(t, e.Challenge("api"))
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
		err      bearer.Error
		bodyCode string // "" means: not an RFC 6750 code
	}{
		{"400 invalid_request", bearer.Error{Status: http.StatusBadRequest, Code: bearer.InvalidRequest, Desc: "d1"}, "invalid_request"},
		{"401 invalid_token", bearer.Error{Status: http.StatusUnauthorized, Code: bearer.InvalidToken, Desc: "d2", Scope: "a"}, "invalid_token"},
		{"403 insufficient_scope", bearer.Error{Status: http.StatusForbidden, Code: bearer.InsufficientScope, Desc: "d3", Scope: "a b"}, "insufficient_scope"},
		{"401 without credentials", bearer.Error{Status: http.StatusUnauthorized, Desc: "d4"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.err.Write(rec, "api")
			body := checkRefused(t, result{rec: rec}, tt.err.Status, tt.bodyCode)
			if tt.bodyCode == "" && slices.Contains(rfc6750Codes, body.Error) {
				t.Errorf("body error = %q for a request without credentials (RFC 6750 §3.1)", body.Error)
			}
			if body.Description != tt.err.Desc {
				t.Errorf("body error_description = %q, want %q", body.Description, tt.err.Desc)
			}
			if body.Scope != tt.err.Scope {
				t.Errorf("body scope = %q, want %q", body.Scope, tt.err.Scope)
			}
			if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q", got)
			}
			ch := parseChallenge(t, rec.Header().Get("WWW-Authenticate"))
			if ch["realm"] != "api" {
				t.Errorf("realm = %q", ch["realm"])
			}
			if ch["error"] != tt.err.Code {
				t.Errorf("challenge error = %q, want %q", ch["error"], tt.err.Code)
			}
		})
	}
}

// TestWriteBodyHasNoChallenge: a 405 is not an authentication failure, so
// it carries no Bearer challenge.
func TestWriteBodyHasNoChallenge(t *testing.T) {
	rec := httptest.NewRecorder()
	(&bearer.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Desc: "nope"}).WriteBody(rec)
	checkRefused(t, result{rec: rec}, http.StatusMethodNotAllowed, "method_not_allowed")
	if v := rec.Header().Values("WWW-Authenticate"); len(v) != 0 {
		t.Errorf("WWW-Authenticate = %q on a 405", v)
	}
}
