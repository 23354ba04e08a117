package caddyoauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPageSecurityHeaders: every page forbids framing (CSP
// frame-ancestors 'none', X-Frame-Options; RFC 6749 §10.13
// clickjacking), allows no script, is not cached, and sets its cookies
// __Host-, Secure, HttpOnly, SameSite=Lax.
func TestPageSecurityHeaders(t *testing.T) {
	b, _ := newFlow(t, nil)
	_, challenge := pkce()
	login := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
	pages := map[string]*httptest.ResponseRecorder{"login": login}
	rec := b.signIn(login, aliceUser, alicePass)
	for _, c := range rec.Result().Cookies() {
		if c.Name == sessionCookie && (!c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "") {
			t.Errorf("session cookie %+v: want __Host- rules, HttpOnly, SameSite=Lax", c)
		}
	}
	for _, c := range login.Result().Cookies() {
		if c.Name == csrfCookie && (!c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "") {
			t.Errorf("csrf cookie %+v: want __Host- rules, HttpOnly", c)
		}
	}
	pages["consent"] = b.do(http.MethodGet, rec.Header().Get("Location"), nil)
	pages["account"] = b.do(http.MethodGet, "/oauth2/account", nil)
	pages["error"] = b.do(http.MethodGet, "/oauth2/authorize?client_id=nobody", nil)
	for name, rec := range pages {
		h := rec.Header()
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"frame-ancestors 'none'", "default-src 'none'", "form-action 'self'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", name, csp, want)
			}
		}
		if strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q allows scripts or inline code", name, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", name, h)
		}
		if strings.Contains(rec.Body.String(), "<script") {
			t.Errorf("%s: page has a script", name)
		}
	}
	// The consent form may lead to the client's redirect URI (browsers
	// apply form-action to the redirect after the POST).
	if csp := pages["consent"].Header().Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://app.example;") {
		t.Errorf("consent CSP %q does not allow the redirect origin", csp)
	}
}

// TestRememberedConsentAndWithdraw: for a confidential client, "remember"
// skips the consent page the next time for the same or fewer scopes, not
// for more; withdrawing it on the account page brings the page back. A
// public client is never offered it and always asks (RFC 8252 §8.6).
func TestRememberedConsentAndWithdraw(t *testing.T) {
	b, _ := newFlow(t, nil)
	webQuery := func(scope string) string {
		return url.Values{"response_type": {"code"}, "client_id": {webID}, "scope": {scope}, "state": {"w"}}.Encode()
	}
	rec := b.signIn(b.do(http.MethodGet, "/oauth2/authorize?"+webQuery("profile"), nil), aliceUser, alicePass)
	page := b.do(http.MethodGet, rec.Header().Get("Location"), nil).Body.String()
	if !strings.Contains(page, `name="remember"`) {
		t.Fatal("no remember box for a confidential client")
	}
	f := fields(page)
	f.Set("decision", "allow")
	f.Set("remember", "yes")
	if rec := b.do(http.MethodPost, "/oauth2/consent", f); rec.Code != http.StatusSeeOther {
		t.Fatalf("consent: %d", rec.Code)
	}
	// The same scopes: straight back with a code.
	rec = b.do(http.MethodGet, "/oauth2/authorize?"+webQuery("profile"), nil)
	if loc, _ := url.Parse(rec.Header().Get("Location")); rec.Code != http.StatusFound || loc.Query().Get("code") == "" {
		t.Fatalf("remembered scope: %d, want a code without the consent page", rec.Code)
	}
	// More scopes: asked again.
	rec = b.do(http.MethodGet, "/oauth2/authorize?"+webQuery("notes:read profile"), nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `value="allow"`) {
		t.Fatalf("wider scope skipped consent: %d", rec.Code)
	}
	account := b.do(http.MethodGet, "/oauth2/account", nil)
	if !strings.Contains(account.Body.String(), "Notes Web") {
		t.Fatalf("account page does not list the consent: %s", account.Body)
	}
	w := url.Values{"client_id": {webID}}
	if rec := b.do(http.MethodPost, "/oauth2/account", w); rec.Code != http.StatusForbidden {
		t.Fatalf("withdraw without a CSRF token: %d", rec.Code)
	}
	w.Set(csrfField, csrfToken(b.cookies[csrfCookie], formWithdraw))
	if rec := b.do(http.MethodPost, "/oauth2/account", w); rec.Code != http.StatusSeeOther {
		t.Fatalf("withdraw: %d %s", rec.Code, rec.Body)
	}
	rec = b.do(http.MethodGet, "/oauth2/authorize?"+webQuery("profile"), nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `value="allow"`) {
		t.Fatalf("after withdrawal: %d, want the consent page", rec.Code)
	}

	// The public SPA: no remember box, and even a stored consent (sent by
	// a forged form) is not honoured.
	_, challenge := pkce()
	page = b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil).Body.String()
	if strings.Contains(page, `name="remember"`) {
		t.Error("a public client's consent page offers to remember")
	}
	f = fields(page)
	f.Set("decision", "allow")
	f.Set("remember", "yes")
	b.do(http.MethodPost, "/oauth2/consent", f)
	if err := b.s.app.rec.Consents.Put(t.Context(), aliceUser, spaID, []string{"notes:read", "profile"}); err != nil {
		t.Fatal(err)
	}
	if rec := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil); rec.Code != http.StatusOK {
		t.Errorf("public client skipped the consent page: %d", rec.Code)
	}
}

// TestLogoutAndSessionLifetime: signing out deletes the session (the next
// request shows the login page); a session also ends after session_ttl
// without use and after session_max_ttl in any case.
func TestLogoutAndSessionLifetime(t *testing.T) {
	b, ms := newFlow(t, func(a *App) {
		a.SessionTTL = caddyDuration(10 * time.Minute)
		a.SessionMaxTTL = caddyDuration(25 * time.Minute)
	})
	_, challenge := pkce()
	isLogin := func() bool {
		rec := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
		return strings.Contains(rec.Body.String(), `name="password"`)
	}
	b.code(challenge)
	if isLogin() {
		t.Fatal("asked to sign in again right after signing in")
	}
	out := b.do(http.MethodPost, "/oauth2/logout", url.Values{csrfField: {csrfToken(b.cookies[csrfCookie], formLogout)}})
	if out.Code != http.StatusOK || !strings.Contains(out.Body.String(), "Signed out") {
		t.Fatalf("logout: %d", out.Code)
	}
	if !isLogin() {
		t.Fatal("still signed in after logout")
	}

	b.code(challenge)
	b.advance(ms, 9*time.Minute)
	if isLogin() {
		t.Fatal("session ended before its idle timeout")
	}
	b.advance(ms, 11*time.Minute) // used at 9 min, so idle until 19; now 20 (max is 25)
	if !isLogin() {
		t.Fatal("session outlived its idle timeout")
	}

	b2, ms2 := newFlow(t, func(a *App) {
		a.SessionTTL = caddyDuration(10 * time.Minute)
		a.SessionMaxTTL = caddyDuration(25 * time.Minute)
	})
	b2.code(challenge)
	for _, at := range []time.Duration{8, 16, 24} {
		b2.advance(ms2, 8*time.Minute) // in use every 8 minutes
		if rec := b2.do(http.MethodGet, "/oauth2/account", nil); !strings.Contains(rec.Body.String(), "Alice") {
			t.Fatalf("session gone at %d min while in use", at)
		}
	}
	b2.advance(ms2, 2*time.Minute) // 26 minutes after sign-in
	if rec := b2.do(http.MethodGet, "/oauth2/account", nil); strings.Contains(rec.Body.String(), "Alice") {
		t.Fatal("session outlived session_max_ttl")
	}
}

// TestUserinfo: the person's claims for a token with the profile scope
// issued on their behalf; RFC 6750 §3.1 refusals otherwise.
func TestUserinfo(t *testing.T) {
	b, ms := newFlow(t, nil)
	get := func(authz string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/oauth2/userinfo", nil)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		rec, _ := serve(t, b.s, r)
		return rec
	}
	tok := signedInTokens(t, b)
	rec := get("Bearer " + tok.AccessToken)
	var info map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &info) != nil {
		t.Fatalf("userinfo: %d %s", rec.Code, rec.Body)
	}
	if info["sub"] != aliceUser || info["name"] != "Alice Example" || info["email"] != "alice@example.com" || info["department"] != "research" {
		t.Errorf("userinfo %v", info)
	}

	noProfile := signedInTokens(t, b, "scope", "notes:read")
	cc := decodeTokenResponse(t, basicToken(t, b.s, svcID, svcSecret, ccForm()))
	for _, tc := range []struct {
		name, authz string
		status      int
		code        string
	}{
		{"no token (RFC 6750 §3.1)", "", http.StatusUnauthorized, ""},
		{"garbage", "Bearer abc.def.ghi", http.StatusUnauthorized, "invalid_token"},
		{"without the profile scope", "Bearer " + noProfile.AccessToken, http.StatusForbidden, "insufficient_scope"},
		{"a client credentials token (no person)", "Bearer " + cc.AccessToken, http.StatusForbidden, "insufficient_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(tc.authz)
			ch := rec.Header().Get("WWW-Authenticate")
			if rec.Code != tc.status || !strings.HasPrefix(ch, "Bearer ") {
				t.Fatalf("%d %q, want %d with a Bearer challenge", rec.Code, ch, tc.status)
			}
			if tc.code == "" && strings.Contains(ch, "error=") || tc.code != "" && !strings.Contains(ch, `error="`+tc.code+`"`) {
				t.Errorf("challenge %q, want error %q", ch, tc.code)
			}
		})
	}
	// Revoked (a replayed refresh token revokes the family's access token).
	rec2 := b.refresh(tok.RefreshToken)
	fresh := decodeUserTokens(t, rec2, rec2.Body.Bytes())
	b.advance(ms, DefaultRefreshReuseGrace) // past the grace window: a replay
	b.refresh(tok.RefreshToken)
	if rec := get("Bearer " + fresh.AccessToken); rec.Code != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", rec.Code)
	}
}

// TestTemplatesOverride: a templates directory replaces the files it has;
// the others stay embedded; a broken template is refused at provision.
func TestTemplatesOverride(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "login.html"), []byte(`{{define "content"}}<p>Custom login for {{.ClientName}}</p><form method="post" action="{{.Action}}"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><input type="hidden" name="request" value="{{.Request}}"><input name="username"><input type="password" name="password"></form>{{end}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := loadPages(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := flowConfig(t)
	cfg.store = NewMemoryStore()
	s := newServer(t, newApp(t, cfg), "")
	s.pages = set
	b := &browser{t: t, s: s, cookies: map[string]string{}}
	_, challenge := pkce()
	rec := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
	if !strings.Contains(rec.Body.String(), "Custom login for Notes SPA") {
		t.Fatalf("override not used: %s", rec.Body)
	}
	if rec := b.signIn(rec, aliceUser, alicePass); rec.Code != http.StatusSeeOther {
		t.Fatalf("custom login form does not work: %d", rec.Code)
	}

	if err := os.WriteFile(filepath.Join(dir, "consent.html"), []byte(`{{define "content"}}{{.Broken`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadPages(dir); err == nil || !strings.Contains(err.Error(), "consent.html") {
		t.Errorf("broken template: %v, want an error naming consent.html", err)
	}
	if _, err := loadPages(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing templates directory was accepted")
	}
}

// TestUserinfoAudience: a token of this server for another audience is
// refused at userinfo (RFC 9068 §4).
func TestUserinfoAudience(t *testing.T) {
	b, _ := newFlow(t, func(a *App) { a.Audience = "https://api.example" })
	tok := signedInTokens(t, b)
	r := httptest.NewRequest(http.MethodGet, "/oauth2/userinfo", nil)
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if rec, _ := serve(t, b.s, r); rec.Code != http.StatusOK {
		t.Fatalf("own audience: %d", rec.Code)
	}
	b.s.app.Audience = "https://elsewhere.example"
	r = httptest.NewRequest(http.MethodGet, "/oauth2/userinfo", nil)
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if rec, _ := serve(t, b.s, r); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("token for another audience: %d %v", rec.Code, rec.Header())
	}
}

// TestWithdrawEndsRefreshTokens: the account page lists an application
// that holds the person's refresh tokens, even a public one whose consent
// is never remembered; withdrawing ends those refresh tokens and their
// access tokens (the person takes access back, RFC 7009 §2.1 in spirit).
func TestWithdrawEndsRefreshTokens(t *testing.T) {
	b, _ := newFlow(t, nil)
	tok := signedInTokens(t, b)
	_, claims := jwtSegments(t, tok.AccessToken)
	account := b.do(http.MethodGet, "/oauth2/account", nil).Body.String()
	if !strings.Contains(account, "Notes SPA") {
		t.Fatalf("the SPA holding refresh tokens is not listed: %s", account)
	}
	w := url.Values{"client_id": {spaID}, csrfField: {csrfToken(b.cookies[csrfCookie], formWithdraw)}}
	if rec := b.do(http.MethodPost, "/oauth2/account", w); rec.Code != http.StatusSeeOther {
		t.Fatalf("withdraw: %d", rec.Code)
	}
	assertOAuthError(t, b.refresh(tok.RefreshToken), http.StatusBadRequest, errInvalidGrant)
	if !b.s.app.Revoked(claims["jti"].(string)) {
		t.Error("the access token survived the withdrawal")
	}
	if strings.Contains(b.do(http.MethodGet, "/oauth2/account", nil).Body.String(), "Notes SPA") {
		t.Error("the SPA is still listed after the withdrawal")
	}
}

// TestUserinfoReadsTokensAsOAuthScopeDoes: userinfo shares oauth_scope's
// RFC 6750 reader: a token in the query is refused (§2.3, RFC 9700
// §4.3.2), two Authorization headers are invalid_request.
func TestUserinfoReadsTokensAsOAuthScopeDoes(t *testing.T) {
	b, _ := newFlow(t, nil)
	tok := signedInTokens(t, b)
	r := httptest.NewRequest(http.MethodGet, "/oauth2/userinfo?access_token="+tok.AccessToken, nil)
	if rec, _ := serve(t, b.s, r); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Header().Get("WWW-Authenticate"), "invalid_request") {
		t.Errorf("token in the query: %d %v", rec.Code, rec.Header())
	}
	r = httptest.NewRequest(http.MethodGet, "/oauth2/userinfo", nil)
	r.Header.Add("Authorization", "Bearer "+tok.AccessToken)
	r.Header.Add("Authorization", "Bearer "+tok.AccessToken)
	if rec, _ := serve(t, b.s, r); rec.Code != http.StatusBadRequest {
		t.Errorf("two Authorization headers: %d", rec.Code)
	}
}
