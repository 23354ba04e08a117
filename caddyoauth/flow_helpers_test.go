package caddyoauth

import (
	"crypto/sha256"
	"encoding/base64"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// The people-in-the-loop fixtures: a public single-page app, a
// confidential web app, a user, and a test "browser" that keeps cookies.
const (
	spaID       = "notes-spa"
	spaRedirect = "https://app.example/cb"
	webID       = "notes-web"
	webSecret   = "web-secret-0123456789-abcdefghijklmnop"
	webRedirect = "https://web.example/callback?tenant=1"
	aliceUser   = "alice"
	alicePass   = "correct horse battery staple"
)

// flowConfig is baseConfig plus the two apps and the user.
func flowConfig(t testing.TB) *App {
	cfg := baseConfig()
	cfg.Clients = append(cfg.Clients,
		&Client{ClientSettings: ClientSettings{ID: spaID, Name: "Notes SPA", Public: true, RedirectURIs: []string{spaRedirect, "http://127.0.0.1:8765/cb"}, Scopes: []string{"notes:read", "notes:write", "profile"}}},
		&Client{ClientSettings: ClientSettings{ID: webID, Name: "Notes Web", RedirectURIs: []string{webRedirect}, Scopes: []string{"notes:read", "profile"}}, Secret: webSecret},
	)
	cfg.Users = []*User{{Username: aliceUser, PasswordHash: bcryptHash(t, alicePass), Name: "Alice Example",
		Email: "alice@example.com", Claims: map[string]string{"department": "research"}}}
	cfg.ScopeDescriptions = map[string]string{"notes:read": "Read your notes"}
	return cfg
}

// browser drives the server as a browser would, keeping its cookies.
type browser struct {
	t       testing.TB
	s       *Server
	cookies map[string]string
}

// newFlow provisions flowConfig (changed by mutate) on a memory store and
// returns a browser for it and the store.
func newFlow(t testing.TB, mutate func(*App)) (*browser, *MemoryStore) {
	t.Helper()
	cfg := flowConfig(t)
	if mutate != nil {
		mutate(cfg)
	}
	ms := NewMemoryStore()
	cfg.store = ms
	s := newServer(t, newApp(t, cfg), "")
	return &browser{t: t, s: s, cookies: map[string]string{}}, ms
}

// do sends a request with the browser's cookies (a form, if given, as a
// POST body) and keeps the cookies of the answer.
func (b *browser) do(method, target string, form url.Values) *httptest.ResponseRecorder {
	b.t.Helper()
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	r.RemoteAddr = "192.0.2.7:5555"
	for k, v := range b.cookies {
		r.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	rec, next := serve(b.t, b.s, r)
	if next {
		b.t.Fatalf("%s %s went to the next handler", method, target)
	}
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return rec
}

var hiddenField = regexp.MustCompile(`name="([a-z_]+)" value="([^"]*)"`)

// fields returns the hidden inputs of a page's form.
func fields(body string) url.Values {
	v := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

// pkce returns a verifier and its S256 challenge (RFC 7636 §4.1, §4.2).
func pkce() (verifier, challenge string) {
	verifier = "verifier-" + strings.Repeat("abcdefgh", 6)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorizeQuery is a valid request of the SPA with PKCE, changed by kv
// pairs (an empty value removes the parameter).
func authorizeQuery(challenge string, kv ...string) string {
	q := url.Values{
		"response_type": {"code"}, "client_id": {spaID}, "redirect_uri": {spaRedirect},
		"scope": {"notes:read profile"}, "state": {"st-123/+= x"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q.Encode()
}

// signIn posts the login form of a login page and expects to be sent back
// to the authorization endpoint.
func (b *browser) signIn(loginPage *httptest.ResponseRecorder, user, pass string) *httptest.ResponseRecorder {
	b.t.Helper()
	f := fields(loginPage.Body.String())
	f.Set("username", user)
	f.Set("password", pass)
	return b.do(http.MethodPost, "/oauth2/login", f)
}

// approve runs an authorization request through login and consent and
// returns the redirect back to the client, parsed.
func (b *browser) approve(query string) *url.URL {
	b.t.Helper()
	rec := b.do(http.MethodGet, "/oauth2/authorize?"+query, nil)
	if strings.Contains(rec.Body.String(), `name="password"`) {
		rec = b.signIn(rec, aliceUser, alicePass)
		if rec.Code != http.StatusSeeOther {
			b.t.Fatalf("login: %d %s", rec.Code, rec.Body)
		}
		rec = b.do(http.MethodGet, rec.Header().Get("Location"), nil)
	}
	if rec.Code == http.StatusOK && strings.Contains(rec.Body.String(), `value="allow"`) {
		f := fields(rec.Body.String())
		f.Set("decision", "allow")
		rec = b.do(http.MethodPost, "/oauth2/consent", f)
	}
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusSeeOther && rec.Code != http.StatusFound || loc == "" {
		b.t.Fatalf("no redirect back to the client: %d %s", rec.Code, rec.Body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		b.t.Fatal(err)
	}
	return u
}

// code runs the SPA's request and returns the code.
func (b *browser) code(challenge string, kv ...string) string {
	b.t.Helper()
	u := b.approve(authorizeQuery(challenge, kv...))
	c := u.Query().Get("code")
	if c == "" {
		b.t.Fatalf("redirect without code: %s", u)
	}
	return c
}

// exchange redeems a code at the token endpoint as the SPA (public client).
func (b *browser) exchange(code, verifier string, kv ...string) *httptest.ResponseRecorder {
	b.t.Helper()
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {spaRedirect}, "client_id": {spaID}}
	if verifier != "" {
		f.Set("code_verifier", verifier)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			f.Del(kv[i])
		} else {
			f.Set(kv[i], kv[i+1])
		}
	}
	return postToken(b.t, b.s, f)
}

// refresh uses a refresh token as the SPA.
func (b *browser) refresh(token string, kv ...string) *httptest.ResponseRecorder {
	b.t.Helper()
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}, "client_id": {spaID}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return postToken(b.t, b.s, f)
}

// advance moves the one clock of the app and its memory store by d.
func (b *browser) advance(ms *MemoryStore, d time.Duration) {
	at := b.s.app.clock().Add(d)
	now := func() time.Time { return at }
	b.s.app.clock = now
	ms.SetClock(now)
	b.s.app.useStore(ms)
}

var nonceAttr = regexp.MustCompile(`nonce="[^"]*"`)

func caddyDuration(d time.Duration) caddy.Duration { return caddy.Duration(d) }
