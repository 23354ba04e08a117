package caddyscope

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestUnmarshalCaddyfileProfiles: the issuer block's profile and claim
// options, and rule lines with roles.
func TestUnmarshalCaddyfileProfiles(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  Scope
	}{
		{
			"rule lines with roles",
			`oauth_scope {
				GET    notes:read
				DELETE notes:write roles admin
				PUT    roles admin "Sales Team"
				*      roles auditor
			}`,
			Scope{Rules: []Rule{
				{Methods: []string{"GET"}, Scopes: []string{"notes:read"}},
				{Methods: []string{"DELETE"}, Scopes: []string{"notes:write"}, Roles: []string{"admin"}},
				{Methods: []string{"PUT"}, Roles: []string{"admin", "Sales Team"}},
				{Methods: []string{"*"}, Roles: []string{"auditor"}},
			}},
		},
		{
			"one-line form with roles",
			`oauth_scope notes:read roles admin`,
			Scope{Rules: []Rule{{Methods: []string{"*"}, Scopes: []string{"notes:read"}, Roles: []string{"admin"}}}},
		},
		{
			"several methods, scopes and roles",
			`oauth_scope {
				POST PUT a b roles r1 r2
			}`,
			Scope{Rules: []Rule{{Methods: []string{"POST", "PUT"}, Scopes: []string{"a", "b"}, Roles: []string{"r1", "r2"}}}},
		},
		{
			"presets and claim options",
			`oauth_scope {
				GET read
				issuer https://keycloak.example.com/realms/demo {
					profile keycloak
					audience https://api.example.com
				}
				issuer https://login.microsoftonline.com/tid/v2.0 {
					profile entra
					client_id_claim azp appid
					scope_claim scp
					roles_claim roles
					algorithms RS256
				}
				issuer https://my-tenant.auth0.com/ {
					profile auth0
					roles_claim https://example.com/roles
				}
				issuer https://idp.example.com {
					profile jwt
					client_id_claim client_id
					client_id_claim azp
					roles_claim resource_access.notes-api.roles
				}
				issuer https://as.example.com {
					profile rfc9068
				}
			}`,
			Scope{
				Rules: []Rule{{Methods: []string{"GET"}, Scopes: []string{"read"}}},
				Issuers: []Issuer{
					{Issuer: "https://keycloak.example.com/realms/demo", Profile: "keycloak", Audience: []string{"https://api.example.com"}},
					{Issuer: "https://login.microsoftonline.com/tid/v2.0", Profile: "entra", ClientIDClaim: []string{"azp", "appid"}, ScopeClaim: "scp", RolesClaim: "roles", Algorithms: []string{"RS256"}},
					{Issuer: "https://my-tenant.auth0.com/", Profile: "auth0", RolesClaim: "https://example.com/roles"},
					{Issuer: "https://idp.example.com", Profile: "jwt", ClientIDClaim: []string{"client_id", "azp"}, RolesClaim: "resource_access.notes-api.roles"},
					{Issuer: "https://as.example.com", Profile: "rfc9068"},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Scope
			if err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input)); err != nil {
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestUnmarshalCaddyfileProfileRefusals: each error names the field and
// carries the position.
func TestUnmarshalCaddyfileProfileRefusals(t *testing.T) {
	issuer := func(body string) string {
		return "oauth_scope {\n issuer https://idp.example {\n" + body + "\n }\n}"
	}
	tests := []struct {
		name    string
		input   string
		wantErr string
	}{
		{"roles without a role", "oauth_scope {\n DELETE write roles\n}", "roles: at least one role"},
		{"roles without a role, one-line form", "oauth_scope read roles", "roles: at least one role"},
		{"roles twice on a line", "oauth_scope {\n DELETE roles a roles b\n}", "roles: given twice"},
		{"method after roles", "oauth_scope {\n DELETE roles admin GET\n}", "GET after a scope or a role"},
		{"method on the one-line form with roles", "oauth_scope roles admin GET", "one-line form takes scopes only"},
		{"profile without a value", issuer("profile"), "argument"},
		{"profile with two values", issuer("profile keycloak entra"), "argument"},
		{"profile twice", issuer("profile keycloak\nprofile entra"), "profile already specified"},
		{"unknown profile", issuer("profile cognito"), `profile: unknown profile "cognito"`},
		{"scope_claim with two values", issuer("profile jwt\nscope_claim scope scp"), "argument"},
		{"client_id_claim without a value", issuer("profile jwt\nclient_id_claim"), "argument"},
		{"client_id_claim under the default profile", issuer("client_id_claim azp"), "client_id_claim: not with profile rfc9068"},
		{"scope_claim under rfc9068", issuer("profile rfc9068\nscope_claim scp"), "scope_claim: not with profile rfc9068"},
		{"roles_claim under the default profile, given before any profile", issuer("roles_claim roles"), "roles_claim: not with profile rfc9068"},
		{"roles_claim with an empty member", issuer("profile keycloak\nroles_claim realm_access."), "roles_claim:"},
		{"profile on issuer local", "oauth_scope {\n issuer local {\n  profile keycloak\n }\n}", "issuer local takes no options"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Scope
			err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if err == nil {
				t.Fatalf("accepted:\n%s\nas %+v", tt.input, s)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), "Testfile:") {
				t.Errorf("error %q has no position", err)
			}
		})
	}
}

// TestCaddyfileProfileProvisioned takes a Caddyfile with a preset and a
// role rule through provisioning to requests.
func TestCaddyfileProfileProvisioned(t *testing.T) {
	pj := newProviderJWKS(t)
	okta := providerTokens()[5]
	s := new(Scope)
	input := `oauth_scope {
		GET    flights
		DELETE flights roles admin
		issuer ` + okta.issuer + ` {
			profile okta
			audience ` + okta.audience + `
			jwks_url ` + pj.url() + `
		}
	}`
	if err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	h, _ := issuerHandler(t, nil, s)
	mustAccept(t, get(t, h, pj.sign(t, okta.header, okta.claims)))
	r, _ := newRequest(http.MethodDelete, "/", "Bearer "+pj.sign(t, okta.header, okta.claims))
	mustAccept(t, serve(t, h, r))
	notAdmin := applyChanges(okta.claims, map[string]any{"groups": []string{"Everyone"}})
	r, _ = newRequest(http.MethodDelete, "/", "Bearer "+pj.sign(t, okta.header, notAdmin))
	body := checkRefused(t, serve(t, h, r), http.StatusForbidden, errInsufficientScope)
	if body.Description != "token lacks a required role" || body.Scope != "flights" {
		t.Errorf("body %+v", body)
	}
}
