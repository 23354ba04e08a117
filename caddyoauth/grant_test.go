package caddyoauth

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestGrantTableMetadataAndValidationAgree: the grant table, what client
// validation accepts and the metadata's grant_types_supported (RFC 8414
// §2) name the same grant types, so a grant added to the table is
// registrable and advertised, and nothing is advertised that the token
// endpoint cannot answer.
func TestGrantTableMetadataAndValidationAgree(t *testing.T) {
	var table []string
	for _, g := range grants {
		if g.token == nil {
			t.Errorf("grant %s has no token handler", g.name)
		}
		table = append(table, g.name)
	}
	if !slices.Equal(table, supportedGrants()) {
		t.Errorf("supportedGrants() = %v, table %v", supportedGrants(), table)
	}

	s := newTestServer(t, nil)
	doc, err := s.app.buildMetadata(s.app.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		GrantTypes []string `json:"grant_types_supported"`
	}
	if err := json.Unmarshal(doc, &md); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(md.GrantTypes, table) {
		t.Errorf("metadata grant_types_supported = %v, table %v", md.GrantTypes, table)
	}

	// Every table grant passes the grant-type check; anything else is
	// refused by name.
	for _, name := range table {
		c := &Client{ClientSettings: ClientSettings{GrantTypes: []string{name}}}
		if err := c.checkGrants(); err != nil && strings.Contains(err.Error(), "unknown or unsupported") {
			t.Errorf("client validation refuses table grant %s: %v", name, err)
		}
	}
	for _, name := range []string{"password", "implicit", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:token-exchange", ""} {
		c := &Client{ClientSettings: ClientSettings{GrantTypes: []string{name}}}
		if err := c.checkGrants(); err == nil || !strings.Contains(err.Error(), "unknown or unsupported") {
			t.Errorf("client validation of %q: %v, want unknown or unsupported", name, err)
		}
	}
}

// TestGrantFor: the one place a token request's grant_type is answered
// (RFC 6749 §5.2).
func TestGrantFor(t *testing.T) {
	cc := &Client{ClientSettings: ClientSettings{GrantTypes: []string{GrantClientCredentials}}}
	for _, tc := range []struct {
		name, grantType, wantCode string
	}{
		{"missing: invalid_request (§5.2)", "", errInvalidRequest},
		{"not implemented: unsupported_grant_type (§5.2)", "password", errUnsupportedGrantType},
		{"implemented, not the client's: unauthorized_client (§5.2)", GrantAuthorizationCode, errUnauthorizedClient},
		{"the client's", GrantClientCredentials, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, oerr := grantFor(cc, tc.grantType)
			switch {
			case tc.wantCode == "" && (oerr != nil || g == nil || g.name != tc.grantType):
				t.Fatalf("grantFor = %v, %v", g, oerr)
			case tc.wantCode != "" && (oerr == nil || oerr.Code != tc.wantCode || oerr.Status != http.StatusBadRequest):
				t.Fatalf("grantFor error = %+v, want 400 %s", oerr, tc.wantCode)
			}
		})
	}
}
