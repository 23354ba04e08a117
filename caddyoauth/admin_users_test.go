package caddyoauth

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAdminUsers: accounts made through the admin API sign in; disabling
// one ends its sessions, sign-ins and refresh tokens, enabling restores
// sign-in; a password reset refuses the old password and ends sessions;
// ending sessions signs the person out everywhere; configured accounts
// are changed in the configuration (409); no hash is ever shown.
func TestAdminUsers(t *testing.T) {
	b, ms := newFlow(t, nil)
	activate(t, b.s.app)
	const pw, pw2 = "correct staple long 1", "another passphrase 22"

	status, got, raw := adminHandle(t, handleUsers, "POST", "/oauth/users", `{"username":"bob","password":"`+pw+`","name":"Bob","email":"bob@example.com"}`)
	if status != http.StatusCreated || got["source"] != "store" || got["disabled"] != false || strings.Contains(raw, "$2a$") {
		t.Fatalf("create: %d %s", status, raw)
	}
	for body, want := range map[string]int{
		`{"username":"bob","password":"` + pw + `","email":"bob2@example.com"}`:       409,
		`{"username":"carol","password":"` + pw + `","email":"bob@example.com"}`:      409,
		`{"username":"` + aliceUser + `","password":"` + pw + `","email":"a@x.org"}`:  409,
		`{"username":"carol","password":"short","email":"carol@example.com"}`:         400,
		`{"username":"carol","password":"` + pw + `","email":"not an address"}`:       400,
		`{"username":"carol","password":"` + pw + `","email":"c@x.org","admin":true}`: 400,
	} {
		if status, _, raw := adminHandle(t, handleUsers, "POST", "/oauth/users", body); status != want {
			t.Errorf("%s: %d %s; want %d", body, status, raw, want)
		}
	}
	status, _, raw = adminHandle(t, handleUsers, "GET", "/oauth/users", "")
	var list []userView
	_ = json.Unmarshal([]byte(raw), &list)
	if status != http.StatusOK || len(list) != 2 || list[0].Username != aliceUser || list[0].Source != "json" || list[1].Username != "bob" || strings.Contains(raw, "password") {
		t.Errorf("list: %d %s", status, raw)
	}

	// signIn signs in as bob with password p and reports whether it worked.
	_, challenge := pkce()
	query := authorizeQuery(challenge)
	signIn := func(p string) bool {
		t.Helper()
		rec := b.do("GET", "/oauth2/authorize?"+query, nil)
		if !strings.Contains(rec.Body.String(), `name="password"`) {
			t.Fatal("already signed in")
		}
		return b.signIn(rec, "bob", p).Code == http.StatusSeeOther
	}
	signedIn := func() bool {
		t.Helper()
		return !strings.Contains(b.do("GET", "/oauth2/authorize?"+query, nil).Body.String(), `name="password"`)
	}
	if !signIn(pw) || !signedIn() {
		t.Fatal("bob cannot sign in")
	}
	verifier, challenge2 := pkce()
	u := b.approve(authorizeQuery(challenge2))
	var tb struct {
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.Unmarshal(b.exchange(u.Query().Get("code"), verifier).Body.Bytes(), &tb)
	if tb.RefreshToken == "" {
		t.Fatal("no refresh token for bob")
	}

	// Disable: the session, the password and the refresh token stop.
	if status, got, raw := adminHandle(t, handleUsers, "POST", "/oauth/users/bob/disable", ""); status != http.StatusOK || got["disabled"] != true {
		t.Fatalf("disable: %d %s", status, raw)
	}
	if signedIn() {
		t.Error("a disabled person's session still counts")
	}
	if signIn(pw) {
		t.Error("a disabled person signed in")
	}
	if rec := b.refresh(tb.RefreshToken); rec.Code != http.StatusBadRequest {
		t.Errorf("a disabled person's refresh token: %d", rec.Code)
	}
	// Enable: sign-in works again.
	if status, _, raw := adminHandle(t, handleUsers, "POST", "/oauth/users/bob/enable", ""); status != http.StatusOK {
		t.Fatalf("enable: %d %s", status, raw)
	}
	// The sign-in that follows must be in a later second than the
	// disable's session mark.
	b.advance(ms, 2*time.Second)
	if !signIn(pw) {
		t.Fatal("bob cannot sign in after enable")
	}

	// Password reset: rule applied, old password refused, session ended.
	if status, _, _ := adminHandle(t, handleUsers, "POST", "/oauth/users/bob/password", `{"password":"bob"}`); status != http.StatusBadRequest {
		t.Errorf("weak password accepted: %d", status)
	}
	if status, _, raw := adminHandle(t, handleUsers, "POST", "/oauth/users/bob/password", `{"password":"`+pw2+`"}`); status != http.StatusOK {
		t.Fatalf("password: %d %s", status, raw)
	}
	if signedIn() {
		t.Error("the session survived a password reset")
	}
	if signIn(pw) {
		t.Error("the old password still works")
	}
	b.advance(ms, 2*time.Second)
	if !signIn(pw2) || !signedIn() {
		t.Fatal("the new password does not work")
	}
	// End sessions.
	if status, _, raw := adminHandle(t, handleUsers, "DELETE", "/oauth/users/bob/sessions", ""); status != http.StatusOK {
		t.Fatalf("end sessions: %d %s", status, raw)
	}
	if signedIn() {
		t.Error("the session survived DELETE sessions")
	}

	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/oauth/users/" + aliceUser + "/disable", 409},
		{"POST", "/oauth/users/" + aliceUser + "/password", 409},
		{"GET", "/oauth/users/nobody", 404},
		{"POST", "/oauth/users/bob/explode", 404},
		{"GET", "/oauth/users/bob/disable", 405},
		{"PUT", "/oauth/users", 405},
	} {
		if status, _, raw := adminHandle(t, handleUsers, tc.method, tc.path, `{"password":"`+pw2+`"}`); status != tc.status {
			t.Errorf("%s %s: %d %s; want %d", tc.method, tc.path, status, raw, tc.status)
		}
	}
	if status, got, _ := adminHandle(t, handleUsers, "GET", "/oauth/users/"+aliceUser, ""); status != http.StatusOK || got["source"] != "json" {
		t.Errorf("configured user: %d %v", status, got)
	}
}

// activate makes a the app the admin API finds, without Start's
// background loops, so that a test may move its clock.
func activate(t *testing.T, a *App) {
	t.Helper()
	activeApp.Store(a)
	t.Cleanup(func() { activeApp.CompareAndSwap(a, nil) })
}
