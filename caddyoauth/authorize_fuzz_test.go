package caddyoauth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// FuzzAuthorizeRequest: whatever the query, the parser never panics, never
// lets an unverified redirect URI through (RFC 6749 §4.1.2.1: errors go to
// a page until client and redirect URI are verified, RFC 9700 §4.1.3 exact
// matching), keeps error descriptions in the RFC 6749 §4.1.2.1 charset, and
// what it accepts is a code request with S256 PKCE for the public client.
func FuzzAuthorizeRequest(f *testing.F) {
	_, challenge := pkce()
	for _, s := range []string{
		authorizeQuery(challenge),
		authorizeQuery(challenge, "redirect_uri", "https://evil.example/cb"),
		authorizeQuery(challenge, "response_type", "token"),
		authorizeQuery(challenge, "code_challenge_method", "plain"),
		authorizeQuery(challenge) + "&state=2",
		"client_id=notes-spa&client_id=notes-web",
		"client_id=%zz", "", "&&&", "client_id=notes-web&response_type=code",
		"client_id=notes-spa&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%2F..%2Fcb",
		// OpenID Connect Core §3.1.2.1 parameters.
		authorizeQuery(challenge, "scope", "openid", "prompt", "none login", "max_age", "-3", "nonce", "n"),
		authorizeQuery(challenge, "scope", "openid", "id_token_hint", "eyJhbGciOiJSUzI1NiJ9.e30.x", "login_hint", "a\x00b"),
		authorizeQuery(challenge, "request", "x", "request_uri", "y"),
	} {
		f.Add(s)
	}
	a := newApp(f, flowConfig(f))
	a.logger = zap.NewNop()
	srv := newServer(f, a, "")
	f.Fuzz(func(t *testing.T, raw string) {
		req, aerr := srv.parseAuthorizeRequest(context.Background(), raw)
		if aerr != nil {
			if !errorCharsOK(aerr.desc) {
				t.Fatalf("description %q outside RFC 6749 §4.1.2.1", aerr.desc)
			}
			if aerr.page {
				if req != nil || aerr.status < 400 {
					t.Fatalf("page error with a request or status %d", aerr.status)
				}
				return
			}
			if req == nil || req.client == nil {
				t.Fatal("redirect error without a verified client")
			}
		}
		if !contains(req.client.RedirectURIs, req.redirectURI) {
			t.Fatalf("redirect URI %q is not registered for %s", req.redirectURI, req.client.ID)
		}
		loc, err := url.Parse(srv.redirectBack(req, url.Values{"code": {"x"}}))
		if err != nil || !strings.HasPrefix(loc.String(), strings.SplitN(req.redirectURI, "?", 2)[0]) {
			t.Fatalf("redirect %v leaves the registered URI %q", loc, req.redirectURI)
		}
		if aerr != nil {
			return
		}
		if req.client.Public && req.challenge == "" {
			t.Fatal("public client accepted without PKCE")
		}
		if again, aerr := srv.parseAuthorizeRequest(context.Background(), req.query); aerr != nil || again.query != req.query {
			t.Fatalf("re-encoded request %q does not parse to itself: %v", req.query, aerr)
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// FuzzLoginForm: any login form body gets an answer that is a page or a
// redirect to the authorization endpoint, never a panic, and never signs
// anyone in without the password.
func FuzzLoginForm(f *testing.F) {
	_, challenge := pkce()
	for _, s := range []string{
		"username=alice&password=x&request=" + url.QueryEscape(authorizeQuery(challenge)),
		"username=alice&password=" + url.QueryEscape(alicePass),
		"request=client_id%3Dnobody", "%zz", "username=" + strings.Repeat("a", 300), "",
	} {
		f.Add(s)
	}
	b, _ := newFlow(f, nil)
	b.s.logger, b.s.app.logger = zap.NewNop(), zap.NewNop() // zaptest may not log inside a fuzz target
	b.s.app.audit = &auditor{log: zap.NewNop()}
	f.Fuzz(func(t *testing.T, body string) {
		b.t = t
		b.s.app.throttle = newLoginThrottle() // each input on its own, not 429 after the 50th
		secret := strings.Repeat("s", 43)
		form, _ := url.ParseQuery(body)
		b.cookies = map[string]string{csrfCookie: secret}
		v := url.Values{}
		for k, vs := range form {
			v[k] = vs
		}
		v.Set(csrfField, csrfToken(secret, formLogin))
		rec := b.do(http.MethodPost, "/oauth2/login", v)
		switch rec.Code {
		case http.StatusSeeOther:
			loc := rec.Header().Get("Location")
			signedIn := b.cookies[sessionCookie] != ""
			if signedIn && (v.Get("password") != alicePass || !strings.HasPrefix(loc, "/oauth2/authorize?")) {
				t.Fatalf("signed in with %q, sent to %q", v.Get("password"), loc)
			}
			if !signedIn && !strings.HasPrefix(loc, "https://") {
				t.Fatalf("redirect to %q", loc)
			}
		case http.StatusOK, http.StatusBadRequest, http.StatusTooManyRequests, http.StatusServiceUnavailable:
			if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
				t.Fatalf("status %d with %s", rec.Code, rec.Header().Get("Content-Type"))
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}
