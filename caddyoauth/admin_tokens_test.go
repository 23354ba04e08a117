package caddyoauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// adminHandle calls an admin handler with a body.
func adminHandle(t *testing.T, h func(http.ResponseWriter, *http.Request) error, method, path, body string) (int, map[string]any, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := h(rec, httptest.NewRequest(method, path, strings.NewReader(body))); err != nil {
		return apiStatus(err), nil, err.Error()
	}
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return rec.Code, m, rec.Body.String()
}

// spaTokens runs the SPA's code flow and returns its access and refresh
// tokens.
func spaTokens(t *testing.T, b *browser) (string, string) {
	t.Helper()
	verifier, challenge := pkce()
	rec := b.exchange(b.code(challenge), verifier)
	var tb struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tb); err != nil || rec.Code != http.StatusOK || tb.RefreshToken == "" {
		t.Fatalf("exchange: %d %s", rec.Code, rec.Body)
	}
	return tb.AccessToken, tb.RefreshToken
}

// TestAdminRevokeToken: one access token, or one refresh token and its
// family's access token, revoked by an operator; unknown tokens are 404.
func TestAdminRevokeToken(t *testing.T) {
	b, _ := newFlow(t, nil)
	a := b.s.app
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })

	at, rt := spaTokens(t, b)
	claims, _ := a.Verifier().Verify(at)
	status, got, raw := adminHandle(t, handleTokenRevoke, "POST", "/oauth/tokens/revoke", `{"token":"`+at+`"}`)
	if status != http.StatusOK || got["revoked"] != "access_token" || !a.Revoked(claims.ID) {
		t.Fatalf("access token: %d %s", status, raw)
	}
	if rec := b.refresh(rt); rec.Code != http.StatusOK {
		t.Errorf("revoking an access token ended its refresh token: %d", rec.Code)
	}

	at2, rt2 := spaTokens(t, b)
	claims2, _ := a.Verifier().Verify(at2)
	status, got, raw = adminHandle(t, handleTokenRevoke, "POST", "/oauth/tokens/revoke", `{"token":"`+rt2+`"}`)
	if status != http.StatusOK || got["revoked"] != "refresh_token" || got["user"] != aliceUser {
		t.Fatalf("refresh token: %d %s", status, raw)
	}
	if rec := b.refresh(rt2); rec.Code != http.StatusBadRequest {
		t.Errorf("revoked refresh token: %d", rec.Code)
	}
	if !a.Revoked(claims2.ID) {
		t.Error("the family's access token was not revoked")
	}
	for body, want := range map[string]int{`{"token":"not-a-token"}`: 404, `{"token":"a.b.c"}`: 404, `{}`: 400, `{"token":"x","other":1}`: 400} {
		if status, _, raw := adminHandle(t, handleTokenRevoke, "POST", "/oauth/tokens/revoke", body); status != want {
			t.Errorf("%s: %d %s; want %d", body, status, raw, want)
		}
	}
	if status, _, _ := adminHandle(t, handleTokenRevoke, "GET", "/oauth/tokens/revoke", ""); status != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", status)
	}
}

// TestAdminRevokeUser: a person's refresh tokens (and their families'
// access tokens) and remembered consents end; another person's do not.
func TestAdminRevokeUser(t *testing.T) {
	b, _ := newFlow(t, nil)
	a := b.s.app
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	at, rt := spaTokens(t, b)
	_, rt2 := spaTokens(t, b)
	claims, _ := a.Verifier().Verify(at)

	status, got, raw := adminHandle(t, handleUsers, "POST", "/oauth/users/"+aliceUser+"/revoke", "")
	if status != http.StatusOK || got["refresh_token_families_revoked"] != float64(2) {
		t.Fatalf("revoke user: %d %s", status, raw)
	}
	for _, tok := range []string{rt, rt2} {
		if rec := b.refresh(tok); rec.Code != http.StatusBadRequest {
			t.Errorf("refresh after the person's grants were revoked: %d", rec.Code)
		}
	}
	if !a.Revoked(claims.ID) {
		t.Error("the person's access token was not revoked")
	}
	if status, got, _ := adminHandle(t, handleUsers, "POST", "/oauth/users/"+aliceUser+"/revoke", ""); status != http.StatusOK || got["refresh_token_families_revoked"] != float64(0) {
		t.Errorf("second revoke: %d %v", status, got)
	}
	if status, _, _ := adminHandle(t, handleUsers, "GET", "/oauth/users/"+aliceUser+"/revoke", ""); status != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", status)
	}
	if status, _, _ := adminHandle(t, handleUsers, "POST", "/oauth/users/"+aliceUser+"/explode", ""); status != http.StatusNotFound {
		t.Errorf("unknown action: %d", status)
	}
}
