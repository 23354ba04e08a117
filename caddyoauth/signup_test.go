package caddyoauth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// signupForm fills the sign-up form of the SPA's request.
func (b *browser) signup(challenge string, kv ...string) (*url.Values, int) {
	b.t.Helper()
	page := b.do(http.MethodGet, "/oauth2/signup?"+url.Values{"request": {authorizeQuery(challenge)}}.Encode(), nil)
	if page.Code != http.StatusOK {
		b.t.Fatalf("sign-up page: %d %s", page.Code, page.Body)
	}
	f := fields(page.Body.String())
	f.Set("username", "bob")
	f.Set("name", "Bob Builder")
	f.Set("email", "bob@example.com")
	f.Set("password", "a long enough passphrase")
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	rec := b.do(http.MethodPost, "/oauth2/signup", f)
	return &f, rec.Code
}

// TestSignupOffByDefault: without the option there is no page and no link.
func TestSignupOffByDefault(t *testing.T) {
	b, _ := newFlow(t, nil)
	_, challenge := pkce()
	login := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
	if strings.Contains(login.Body.String(), "/oauth2/signup") {
		t.Error("login page links to a sign-up page that is off")
	}
	if rec := b.do(http.MethodGet, "/oauth2/signup?request=x", nil); rec.Code != http.StatusNotFound {
		t.Errorf("sign-up page while off: %d", rec.Code)
	}
}

// TestSignupCreatesAccount: a new person signs up from the login page,
// lands back in the authorization request signed in, and their account is
// a user like any other (tokens, userinfo, a later sign-in); only a bcrypt
// hash of the password is stored.
func TestSignupCreatesAccount(t *testing.T) {
	b, ms := newFlow(t, func(a *App) { a.Signup = &SignupConfig{} })
	verifier, challenge := pkce()
	login := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
	if !strings.Contains(login.Body.String(), "/oauth2/signup?request=") {
		t.Fatal("login page has no sign-up link")
	}
	if _, code := b.signup(challenge); code != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", code)
	}
	if _, ok := b.cookies[sessionCookie]; !ok {
		t.Fatal("not signed in after sign-up")
	}
	rec := b.exchange(b.code(challenge), verifier)
	tok := decodeUserTokens(t, rec, rec.Body.Bytes())
	_, claims := jwtSegments(t, tok.AccessToken)
	if claims["sub"] != "bob" {
		t.Fatalf("sub %v, want bob", claims["sub"])
	}

	keys, err := ms.List(context.Background(), "users/")
	if err != nil || len(keys) != 1 {
		t.Fatalf("store holds users %v (%v), want bob", keys, err)
	}
	raw, err := ms.Get(context.Background(), keys[0])
	if err != nil || strings.Contains(string(raw), "passphrase") || !strings.Contains(string(raw), `$2a$12$`) {
		t.Fatalf("stored user %s (%v): want a bcrypt hash and no password", raw, err)
	}
	// A later sign-in with the password works; a wrong one does not.
	b2 := &browser{t: t, s: b.s, cookies: map[string]string{}}
	login = b2.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
	if rec := b2.signIn(login, "bob", "wrong passphrase here"); rec.Code != http.StatusBadRequest {
		t.Errorf("wrong password: %d", rec.Code)
	}
	if rec := b2.signIn(login, "bob", "a long enough passphrase"); rec.Code != http.StatusSeeOther {
		t.Errorf("sign-in of the new account: %d", rec.Code)
	}
}

// TestSignupRules: password rules, unique username and e-mail address
// (case-insensitive, Caddyfile users included), CSRF.
func TestSignupRules(t *testing.T) {
	b, _ := newFlow(t, func(a *App) { a.Signup = &SignupConfig{MinPasswordLength: 14} })
	_, challenge := pkce()
	if _, code := b.signup(challenge); code != http.StatusSeeOther {
		t.Fatalf("first sign-up: %d", code)
	}
	for _, tc := range []struct {
		name string
		kv   []string
		want int
	}{
		{"short password", []string{"username", "carol", "email", "carol@example.com", "password", "13 characters"}, http.StatusBadRequest},
		{"password over 72 bytes", []string{"username", "carol", "email", "carol@example.com", "password", strings.Repeat("é", 40)}, http.StatusBadRequest},
		{"password contains username", []string{"username", "carol", "email", "carol@example.com", "password", "xxcarolxxcarolxx"}, http.StatusBadRequest},
		{"one repeated character", []string{"username", "carol", "email", "carol@example.com", "password", strings.Repeat("a", 20)}, http.StatusBadRequest},
		{"bad e-mail", []string{"username", "carol", "email", "Carol <carol@example.com>"}, http.StatusBadRequest},
		{"bad username", []string{"username", "carol smith", "email", "carol@example.com"}, http.StatusBadRequest},
		{"username taken, other case", []string{"username", "BOB", "email", "bob2@example.com"}, http.StatusConflict},
		{"Caddyfile user's name", []string{"username", "Alice", "email", "alice2@example.com"}, http.StatusConflict},
		{"e-mail taken, other case", []string{"username", "bobby", "email", "BOB@example.com"}, http.StatusConflict},
		{"Caddyfile user's e-mail", []string{"username", "alice2", "email", "alice@example.com"}, http.StatusConflict},
		{"no CSRF token", []string{"username", "carol", "email", "carol@example.com", csrfField, ""}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.cookies = map[string]string{csrfCookie: b.cookies[csrfCookie]}
			if _, code := b.signup(challenge, tc.kv...); code != tc.want {
				t.Errorf("status %d, want %d", code, tc.want)
			}
			if _, ok := b.cookies[sessionCookie]; ok {
				t.Error("signed in after a refused sign-up")
			}
		})
	}
	// The e-mail of a refused username claim was given back.
	if _, code := b.signup(challenge, "username", "bobby", "email", "bob2@example.com"); code != http.StatusSeeOther {
		t.Errorf("the e-mail of a refused sign-up stayed claimed: %d", code)
	}
}

// TestSignupRace: many concurrent sign-ups of one username (or one e-mail)
// create exactly one account.
func TestSignupRace(t *testing.T) {
	a := newApp(t, flowConfig(t))
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := &User{Username: "dave", Email: "dave" + strings.Repeat("x", i%2) + "@example.com", PasswordHash: bcryptHash(t, "whatever-password")}
			if a.directory.create(context.Background(), u) == nil {
				mu.Lock()
				created++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if created != 1 {
		t.Fatalf("%d accounts created, want 1", created)
	}
}
