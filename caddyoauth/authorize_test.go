package caddyoauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyapigw/gateway/internal/oauthstore"
	"golang.org/x/crypto/bcrypt"
)

// userTokens is a token response with a refresh token.
type userTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
}

func decodeUserTokens(t testing.TB, rec interface{ Result() *http.Response }, body []byte) userTokens {
	t.Helper()
	if code := rec.Result().StatusCode; code != http.StatusOK {
		t.Fatalf("token response %d: %s", code, body)
	}
	var u userTokens
	if err := json.Unmarshal(body, &u); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestAuthorizationCodeFlow: the whole RFC 6749 §4.1 flow with PKCE (RFC
// 7636): login page, consent page, redirect with code, the same state and
// iss (RFC 9207 §2), a redirect URI's own query kept (§3.1.2), exchange
// for an access token whose sub is the person and client_id the app (RFC
// 9068 §2.2), with auth_time (§2.2.1), and a refresh token.
func TestAuthorizationCodeFlow(t *testing.T) {
	b, _ := newFlow(t, nil)
	verifier, challenge := pkce()

	rec := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Notes SPA") {
		t.Fatalf("login page: %d %s", rec.Code, rec.Body)
	}
	rec = b.signIn(rec, aliceUser, alicePass)
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/oauth2/authorize?") {
		t.Fatalf("login: %d %v", rec.Code, rec.Header())
	}
	if _, ok := b.cookies[sessionCookie]; !ok {
		t.Fatal("no session cookie after login")
	}
	rec = b.do(http.MethodGet, rec.Header().Get("Location"), nil)
	body := rec.Body.String()
	for _, want := range []string{"Notes SPA", "Alice Example", "Read your notes", "notes:read", "profile", "https://app.example"} {
		if !strings.Contains(body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	f := fields(body)
	f.Set("decision", "allow")
	rec = b.do(http.MethodPost, "/oauth2/consent", f)
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusSeeOther || loc.Scheme+"://"+loc.Host+loc.Path != spaRedirect {
		t.Fatalf("consent: %d to %v", rec.Code, loc)
	}
	q := loc.Query()
	if q.Get("state") != "st-123/+= x" || q.Get("iss") != testIssuer || len(q.Get("code")) != 43 {
		t.Fatalf("redirect query %v: want the same state, iss and a 256-bit code", q)
	}

	rec = b.exchange(q.Get("code"), verifier)
	tok := decodeUserTokens(t, rec, rec.Body.Bytes())
	if tok.RefreshToken == "" || tok.Scope != "notes:read profile" {
		t.Fatalf("token response %s", rec.Body)
	}
	_, claims := jwtSegments(t, tok.AccessToken)
	if claims["sub"] != aliceUser || claims["client_id"] != spaID || claims["auth_time"] == nil {
		t.Errorf("access token claims %v: want sub alice, client_id %s, auth_time", claims, spaID)
	}

	// The confidential app: redirect URI with its own query kept, Basic
	// authentication, no PKCE (accepted for confidential clients).
	u := b.approve(url.Values{"response_type": {"code"}, "client_id": {webID}, "redirect_uri": {webRedirect}, "state": {"w"}}.Encode())
	if u.Query().Get("tenant") != "1" || u.Query().Get("code") == "" {
		t.Fatalf("web redirect %s: want tenant=1 kept and a code", u)
	}
	rec = basicToken(t, b.s, webID, webSecret, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {webRedirect}})
	tok = decodeUserTokens(t, rec, rec.Body.Bytes())
	if tok.Scope != "notes:read profile" {
		t.Errorf("web scope %q, want all its scopes when none requested (RFC 6749 §3.3)", tok.Scope)
	}
	// The confidential app without its secret is refused (RFC 6749
	// §3.2.1), 400 since it did not try Basic (§5.2).
	u = b.approve(url.Values{"response_type": {"code"}, "client_id": {webID}}.Encode())
	rec = postToken(t, b.s, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "client_id": {webID}})
	assertOAuthError(t, rec, http.StatusBadRequest, errInvalidClient)
}

// TestRedirectURIMismatch: an unregistered, extra-path, extra-query or
// differently cased redirect URI gets an error page and no redirect (RFC
// 6749 §4.1.2.1, §3.1.2.3; RFC 9700 §4.1.3 exact matching); so do an
// unknown client, a missing client_id, and a client without the grant.
func TestRedirectURIMismatch(t *testing.T) {
	b, _ := newFlow(t, nil)
	_, challenge := pkce()
	for _, tc := range []struct{ name, query string }{
		{"unregistered host", authorizeQuery(challenge, "redirect_uri", "https://evil.example/cb")},
		{"extra path", authorizeQuery(challenge, "redirect_uri", spaRedirect+"/more")},
		{"extra query", authorizeQuery(challenge, "redirect_uri", spaRedirect+"?x=1")},
		{"case differs", authorizeQuery(challenge, "redirect_uri", "https://APP.example/cb")},
		{"trailing slash", authorizeQuery(challenge, "redirect_uri", spaRedirect+"/")},
		{"omitted with two registered", authorizeQuery(challenge, "redirect_uri", "")},
		{"unknown client", authorizeQuery(challenge, "client_id", "nobody")},
		{"no client_id", authorizeQuery(challenge, "client_id", "")},
		{"client without the code grant", authorizeQuery(challenge, "client_id", svcID)},
		{"redirect_uri twice", authorizeQuery(challenge) + "&redirect_uri=" + url.QueryEscape("https://evil.example/cb")},
		{"malformed query", "client_id=%zz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := b.do(http.MethodGet, "/oauth2/authorize?"+tc.query, nil)
			if rec.Code != http.StatusBadRequest {
				t.Errorf("status %d, want a 400 error page", rec.Code)
			}
			if loc := rec.Header().Get("Location"); loc != "" {
				t.Errorf("redirected to %s", loc)
			}
			if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") || strings.Contains(rec.Body.String(), "evil.example") {
				t.Errorf("want an HTML error page that does not echo the URI: %s", rec.Body)
			}
		})
	}
}

// TestAuthorizeErrorsRedirect: once client and redirect URI are verified,
// errors go back to the client (RFC 6749 §4.1.2.1) with the state.
func TestAuthorizeErrorsRedirect(t *testing.T) {
	b, _ := newFlow(t, nil)
	_, challenge := pkce()
	for _, tc := range []struct{ name, query, code string }{
		{"implicit grant refused (RFC 9700 §2.1.2)", authorizeQuery(challenge, "response_type", "token"), errUnsupportedResponseType},
		{"no response_type", authorizeQuery(challenge, "response_type", ""), errInvalidRequest},
		{"scope not allowed (RFC 6749 §3.3)", authorizeQuery(challenge, "scope", "notes:read admin"), errInvalidScope},
		{"public client without PKCE (RFC 7636 §4.4.1)", authorizeQuery("", "code_challenge_method", ""), errInvalidRequest},
		{"plain method refused (RFC 7636 §4.2, RFC 9700 §2.1.1)", authorizeQuery(challenge, "code_challenge_method", "plain"), errInvalidRequest},
		{"method absent means plain (RFC 7636 §4.3)", authorizeQuery(challenge, "code_challenge_method", ""), errInvalidRequest},
		{"challenge too short (RFC 7636 §4.2)", authorizeQuery("abc"), errInvalidRequest},
		{"state twice (RFC 6749 §3.1)", authorizeQuery(challenge) + "&scope=profile", errInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := b.do(http.MethodGet, "/oauth2/authorize?"+tc.query, nil)
			loc, err := url.Parse(rec.Header().Get("Location"))
			if rec.Code != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), spaRedirect+"?") {
				t.Fatalf("status %d to %q, want 302 to the redirect URI", rec.Code, rec.Header().Get("Location"))
			}
			q := loc.Query()
			if q.Get("error") != tc.code || q.Get("iss") != testIssuer || q.Has("code") {
				t.Errorf("redirect query %v, want error=%s and iss", q, tc.code)
			}
			if !errorCharsOK(q.Get("error_description")) {
				t.Errorf("error_description %q has characters outside RFC 6749 §4.1.2.1", q.Get("error_description"))
			}
			if !strings.Contains(tc.name, "twice") && q.Get("state") != "st-123/+= x" {
				t.Errorf("state %q not returned untouched", q.Get("state"))
			}
		})
	}
}

// TestPKCEVerification: RFC 7636 §4.6 at the token endpoint.
func TestPKCEVerification(t *testing.T) {
	b, _ := newFlow(t, nil)
	verifier, challenge := pkce()
	for _, tc := range []struct {
		name, verifier string
	}{
		{"missing verifier (RFC 7636 §4.5)", ""},
		{"wrong verifier (RFC 7636 §4.6)", strings.Repeat("x", 43)},
		{"verifier too short (RFC 7636 §4.1)", verifier[:20]},
		{"the challenge as verifier (plain)", challenge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := b.code(challenge)
			assertOAuthError(t, b.exchange(code, tc.verifier), http.StatusBadRequest, errInvalidGrant)
			// The code is spent: even the right verifier fails now.
			assertOAuthError(t, b.exchange(code, verifier), http.StatusBadRequest, errInvalidGrant)
		})
	}
	// A verifier for a code issued without a challenge is a downgrade
	// (RFC 9700 §2.1.1).
	u := b.approve(url.Values{"response_type": {"code"}, "client_id": {webID}}.Encode())
	rec := basicToken(t, b.s, webID, webSecret, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "code_verifier": {verifier}})
	assertOAuthError(t, rec, http.StatusBadRequest, errInvalidGrant)
}

// TestCodeBinding: a code works only for its client and redirect URI
// (RFC 6749 §4.1.3), once, within its lifetime (§4.1.2, §10.5).
func TestCodeBinding(t *testing.T) {
	b, ms := newFlow(t, nil)
	verifier, challenge := pkce()

	code := b.code(challenge)
	rec := b.exchange(code, verifier, "redirect_uri", "http://127.0.0.1:8765/cb")
	assertOAuthError(t, rec, http.StatusBadRequest, errInvalidGrant)

	code = b.code(challenge)
	rec = b.exchange(code, verifier, "redirect_uri", "")
	assertOAuthError(t, rec, http.StatusBadRequest, errInvalidGrant) // it was in the request: required

	code = b.code(challenge)
	rec = basicToken(t, b.s, webID, webSecret, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {spaRedirect}, "code_verifier": {verifier}})
	assertOAuthError(t, rec, http.StatusBadRequest, errInvalidGrant) // another client

	// Expired: 60 s is the lifetime.
	code = b.code(challenge)
	b.advance(ms, oauthstore.CodeTTL+time.Second)
	assertOAuthError(t, b.exchange(code, verifier), http.StatusBadRequest, errInvalidGrant)
}

// TestCodeReplayRevokes: a code presented twice is refused and the tokens
// first issued from it are revoked (RFC 6749 §4.1.2, §10.5; RFC 9700
// §4.5): the access token is on the revocation list and the refresh
// token no longer works.
func TestCodeReplayRevokes(t *testing.T) {
	b, _ := newFlow(t, nil)
	verifier, challenge := pkce()
	code := b.code(challenge)
	rec := b.exchange(code, verifier)
	tok := decodeUserTokens(t, rec, rec.Body.Bytes())
	_, claims := jwtSegments(t, tok.AccessToken)
	jti := claims["jti"].(string)
	if b.s.app.Revoked(jti) {
		t.Fatal("fresh token already revoked")
	}
	assertOAuthError(t, b.exchange(code, verifier), http.StatusBadRequest, errInvalidGrant)
	if !b.s.app.Revoked(jti) {
		t.Error("replay did not revoke the access token")
	}
	assertOAuthError(t, b.refresh(tok.RefreshToken), http.StatusBadRequest, errInvalidGrant)
}

// TestConsentDenied: "deny" sends access_denied to the client with the
// state (RFC 6749 §4.1.2.1) and no code.
func TestConsentDenied(t *testing.T) {
	b, _ := newFlow(t, nil)
	_, challenge := pkce()
	rec := b.signIn(b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil), aliceUser, alicePass)
	rec = b.do(http.MethodGet, rec.Header().Get("Location"), nil)
	f := fields(rec.Body.String())
	f.Set("decision", "deny")
	rec = b.do(http.MethodPost, "/oauth2/consent", f)
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusSeeOther || loc.Query().Get("error") != errAccessDenied || loc.Query().Get("state") != "st-123/+= x" || loc.Query().Has("code") {
		t.Fatalf("deny: %d to %v", rec.Code, loc)
	}
}

// TestCSRF: the login, consent, withdraw and logout forms are refused
// without this browser's CSRF token, or with another form's.
func TestCSRF(t *testing.T) {
	b, _ := newFlow(t, nil)
	_, challenge := pkce()
	login := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
	good := fields(login.Body.String())
	good.Set("username", aliceUser)
	good.Set("password", alicePass)

	for _, tc := range []struct {
		name   string
		mutate func(url.Values, map[string]string)
	}{
		{"missing token", func(f url.Values, _ map[string]string) { f.Del(csrfField) }},
		{"wrong token", func(f url.Values, _ map[string]string) { f.Set(csrfField, strings.Repeat("A", 43)) }},
		{"another form's token", func(f url.Values, c map[string]string) { f.Set(csrfField, csrfToken(c[csrfCookie], formConsent)) }},
		{"no cookie (cross-site post)", func(_ url.Values, c map[string]string) { delete(c, csrfCookie) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range good {
				f[k] = v
			}
			saved := b.cookies[csrfCookie]
			tc.mutate(f, b.cookies)
			rec := b.do(http.MethodPost, "/oauth2/login", f)
			b.cookies[csrfCookie] = saved
			if rec.Code != http.StatusForbidden || rec.Header().Get("Location") != "" {
				t.Errorf("status %d location %q, want 403", rec.Code, rec.Header().Get("Location"))
			}
			if _, ok := b.cookies[sessionCookie]; ok {
				t.Fatal("signed in without a valid CSRF token")
			}
		})
	}
	// Consent without a token: no code.
	rec := b.signIn(login, aliceUser, alicePass)
	consent := fields(b.do(http.MethodGet, rec.Header().Get("Location"), nil).Body.String())
	consent.Set("decision", "allow")
	consent.Del(csrfField)
	if rec := b.do(http.MethodPost, "/oauth2/consent", consent); rec.Code != http.StatusForbidden {
		t.Errorf("consent without CSRF token: %d %v", rec.Code, rec.Header())
	}
	// Logout without a token leaves the session.
	if rec := b.do(http.MethodPost, "/oauth2/logout", url.Values{}); rec.Code != http.StatusForbidden {
		t.Errorf("logout without CSRF token: %d", rec.Code)
	}
	if _, ok := b.cookies[sessionCookie]; !ok {
		t.Error("a forged logout ended the session")
	}
}

// TestLoginSameAnswer: an unknown user and a wrong password get the same
// status and message, and both count toward throttling.
func TestLoginSameAnswer(t *testing.T) {
	b, _ := newFlow(t, nil)
	_, challenge := pkce()
	login := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
	wrong := b.signIn(login, aliceUser, "not the password")
	unknown := b.signIn(login, "mallory", "not the password")
	if wrong.Code != unknown.Code || wrong.Code != http.StatusBadRequest {
		t.Fatalf("statuses %d and %d, want the same 400", wrong.Code, unknown.Code)
	}
	strip := func(s, user string) string {
		s = hiddenField.ReplaceAllString(s, "")
		s = strings.ReplaceAll(s, user, "USER")
		return nonceAttr.ReplaceAllString(s, "")
	}
	if strip(wrong.Body.String(), aliceUser) != strip(unknown.Body.String(), "mallory") {
		t.Errorf("bodies differ beyond the echoed username:\n%s\n---\n%s", wrong.Body, unknown.Body)
	}
	if !strings.Contains(wrong.Body.String(), loginFailed) {
		t.Error("failure message missing")
	}
	if _, ok := b.cookies[sessionCookie]; ok {
		t.Error("a failed login set a session")
	}
}

// TestLoginThrottling: repeated failures for an account are slowed down,
// then refused with 429 and Retry-After, even with the right password;
// another account from another address is unaffected.
func TestLoginThrottling(t *testing.T) {
	b, _ := newFlow(t, nil)
	th := b.s.app.throttle
	var clock time.Time = time.Now()
	th.now = func() time.Time { return clock }
	for i := 0; i < throttleAccountStop; i++ {
		th.failed(aliceUser, "198.51.100.1")
	}
	_, challenge := pkce()
	login := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
	rec := b.signIn(login, aliceUser, alicePass)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("after %d failures: %d, want 429 with Retry-After", throttleAccountStop, rec.Code)
	}
	if _, ok := b.cookies[sessionCookie]; ok {
		t.Fatal("signed in while throttled")
	}
	// The window passes: the right password works again.
	clock = clock.Add(throttleWindow)
	if rec := b.signIn(login, aliceUser, alicePass); rec.Code != http.StatusSeeOther {
		t.Fatalf("after the window: %d", rec.Code)
	}
}

// TestThrottleVerdicts checks the counting itself: slowed after a few
// failures, stopped after more, per account (case-folded) and per address.
func TestThrottleVerdicts(t *testing.T) {
	th := newLoginThrottle()
	now := time.Now()
	th.now = func() time.Time { return now }
	for i := 0; i < throttleAccountSlow; i++ {
		if d, r := th.verdict("bob", "a", false); d != 0 || r != 0 {
			t.Fatalf("after %d failures: delay %v retry %v", i, d, r)
		}
		th.failed("Bob", "a")
	}
	if d, r := th.verdict("bob", "b", false); d == 0 || r != 0 {
		t.Fatalf("after %d failures: delay %v retry %v, want slowed", throttleAccountSlow, d, r)
	}
	for i := throttleAccountSlow; i < throttleAccountStop; i++ {
		th.failed("bob", "a")
	}
	if _, r := th.verdict("BOB", "c", false); r == 0 {
		t.Fatal("not stopped after the account limit")
	}
	th.settle("bob", "c", false, attemptSucceeded)
	if _, r := th.verdict("bob", "c", false); r != 0 {
		t.Fatal("success did not clear the account")
	}
	// Address: a spray over many accounts.
	for i := 0; i < throttleIPStop; i++ {
		th.failed("user"+string(rune('a'+i%26))+string(rune('a'+i/26)), "203.0.113.9")
	}
	if _, r := th.verdict("fresh", "203.0.113.9", false); r == 0 {
		t.Fatal("not stopped after the address limit")
	}
	if _, r := th.verdict("fresh", "203.0.113.10", false); r != 0 {
		t.Fatal("another address was stopped")
	}
}

// TestThrottleConcurrentAttempts: a burst of sign-in attempts at one
// account, all in flight at once (each waiting for its slow hash), gets
// no more password checks than the account's limit: attempt counts each
// before the next is judged. Judging them all first and recording their
// failures after (check-then-record) let all 200 guess.
func TestThrottleConcurrentAttempts(t *testing.T) {
	th := newLoginThrottle()
	const n = 200
	var checked, judged atomic.Int32
	var wg sync.WaitGroup
	release := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip := fmt.Sprintf("198.51.100.%d", i%250) // addresses under their own limit
			_, retry := th.attempt("carol", ip, false)
			judged.Add(1)
			if retry > 0 {
				return
			}
			checked.Add(1)
			<-release // the slow hash
			th.settle("carol", ip, false, attemptFailed)
		}()
	}
	for judged.Load() < n { // every attempt judged before any is settled
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if got := checked.Load(); got != throttleAccountStop {
		t.Fatalf("%d of %d concurrent attempts were checked, want the limit %d", got, n, throttleAccountStop)
	}
}

// TestThrottleAddressAttempts: sign-ups from one address, all in flight
// at once, get no more than the address's limit through (sign-ups used to
// be judged together and counted after their bcrypt).
func TestThrottleAddressAttempts(t *testing.T) {
	th := newLoginThrottle()
	let := 0
	for range 3 * throttleIPStop {
		if th.addressAttempt("203.0.113.50") == 0 {
			let++
		}
	}
	if let != throttleIPStop {
		t.Fatalf("%d sign-ups in flight let through, want %d", let, throttleIPStop)
	}
	for range let {
		th.settleAddress("203.0.113.50", false) // rejected as invalid: not counted
	}
	if th.addressAttempt("203.0.113.50") != 0 {
		t.Fatal("sign-ups that were not counted still hold the address")
	}
}

// TestThrottleSettle: how each end of a counted attempt changes the
// counts. One whose password was not checked (busy, store down, client
// gone) is taken back; a success clears the account and takes back its
// address count, which keeps the earlier failures (a sign-in to one's own
// account must not reset a spray from that address); a known device's
// success takes back only its own attempt.
func TestThrottleSettle(t *testing.T) {
	th := newLoginThrottle()
	for range 2 {
		th.failed("dave", "192.0.2.1")
	}
	counts := func() (int, int) {
		th.mu.Lock()
		defer th.mu.Unlock()
		return th.count(th.accounts, "dave", th.now()), th.count(th.ips, "192.0.2.1", th.now())
	}
	th.attempt("dave", "192.0.2.1", false)
	if a, i := counts(); a != 3 || i != 3 {
		t.Fatalf("an attempt in flight: account %d address %d, want 3 3", a, i)
	}
	th.settle("dave", "192.0.2.1", false, attemptNotChecked)
	if a, i := counts(); a != 2 || i != 2 {
		t.Fatalf("after an unchecked attempt: %d %d, want 2 2", a, i)
	}
	th.attempt("dave", "192.0.2.1", true)
	th.settle("dave", "192.0.2.1", true, attemptSucceeded)
	if a, i := counts(); a != 2 || i != 2 {
		t.Fatalf("after a known device's success: %d %d, want 2 2", a, i)
	}
	th.attempt("dave", "192.0.2.1", false)
	th.settle("dave", "192.0.2.1", false, attemptFailed)
	if a, i := counts(); a != 3 || i != 3 {
		t.Fatalf("after a failure: %d %d, want 3 3", a, i)
	}
	th.attempt("dave", "192.0.2.1", false)
	th.settle("dave", "192.0.2.1", false, attemptSucceeded)
	if a, i := counts(); a != 0 || i != 3 {
		t.Fatalf("after a success: %d %d, want 0 3", a, i)
	}
	// A success clears the failures recorded, not the guesses in flight:
	// they count when they fail.
	th.attempt("dave", "192.0.2.1", false)
	th.attempt("dave", "192.0.2.1", false)
	th.attempt("dave", "192.0.2.1", false)
	th.settle("dave", "192.0.2.1", false, attemptSucceeded)
	th.settle("dave", "192.0.2.1", false, attemptFailed)
	th.settle("dave", "192.0.2.1", false, attemptFailed)
	if a, _ := counts(); a != 2 {
		t.Fatalf("two guesses in flight during a success then failed: account %d, want 2", a)
	}
}

// TestThrottleHeldAttemptKeepsTheWindow: an attempt taken back (or a
// success) does not restart the window of the failures before it, so
// they still expire throttleWindow after the last failure.
func TestThrottleHeldAttemptKeepsTheWindow(t *testing.T) {
	th := newLoginThrottle()
	clock := time.Now()
	th.now = func() time.Time { return clock }
	const ip = "192.0.2.9"
	for range 5 {
		th.failed("erin", ip)
	}
	clock = clock.Add(throttleWindow - time.Minute)
	th.attempt("erin", ip, false)
	th.settle("erin", ip, false, attemptNotChecked)
	th.attempt("erin", ip, false)
	th.settle("erin", ip, false, attemptSucceeded)
	th.mu.Lock()
	before := th.count(th.ips, ip, th.now())
	th.mu.Unlock()
	clock = clock.Add(time.Minute)
	th.mu.Lock()
	after := th.count(th.ips, ip, th.now())
	th.mu.Unlock()
	if before != 5 || after != 0 {
		t.Fatalf("address count %d before the window's end, %d after; want 5 then 0", before, after)
	}
}

// TestLoginHoldsTheAttemptWhileChecking: through the login handler, an
// attempt already counts for the account and the address while its
// password is being checked (what stops a burst of concurrent guesses,
// TestThrottleConcurrentAttempts), and is settled after: a wrong password
// stays counted, a right one clears the account.
func TestLoginHoldsTheAttemptWhileChecking(t *testing.T) {
	b, _ := newFlow(t, nil)
	th := b.s.app.throttle
	u, ok, err := b.s.app.directory.lookup(context.Background(), aliceUser)
	if err != nil || !ok {
		t.Fatal("no alice")
	}
	real := u.password.comparer
	var during [2]int
	u.password.comparer = comparerFunc(func(hash, plain []byte) (bool, error) {
		th.mu.Lock()
		during = [2]int{len(th.accounts), 0}
		for _, c := range th.ips {
			during[1] += c.n + c.pending
		}
		if c, ok := th.accounts[accountKey(aliceUser)]; ok {
			during[0] = c.n + c.pending
		}
		th.mu.Unlock()
		return real.Compare(hash, plain)
	})
	_, challenge := pkce()
	login := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
	if rec := b.signIn(login, aliceUser, "wrong"); rec.Code != http.StatusBadRequest {
		t.Fatalf("wrong password: %d", rec.Code)
	}
	if during != [2]int{1, 1} {
		t.Fatalf("while the first password was checked: account %d, address %d; want 1 1", during[0], during[1])
	}
	th.mu.Lock()
	a := th.count(th.accounts, accountKey(aliceUser), th.now())
	th.mu.Unlock()
	if a != 1 {
		t.Fatalf("after a wrong password the account counts %d, want 1", a)
	}
	if rec := b.signIn(login, aliceUser, alicePass); rec.Code != http.StatusSeeOther {
		t.Fatalf("right password: %d", rec.Code)
	}
	if during[0] != 2 {
		t.Fatalf("while the second password was checked: account %d, want 2", during[0])
	}
	th.mu.Lock()
	a = th.count(th.accounts, accountKey(aliceUser), th.now())
	th.mu.Unlock()
	if a != 0 {
		t.Fatalf("after a success the account counts %d, want 0", a)
	}
}

// comparerFunc is a caddyauth.Comparer made of a function.
type comparerFunc func(hash, plain []byte) (bool, error)

func (f comparerFunc) Compare(hash, plain []byte) (bool, error) { return f(hash, plain) }

// TestUnknownUserCostsTheSame: an unknown username is checked against a
// hash as expensive as the costliest configured user's, so the time of a
// failed sign-in does not tell whether the account exists.
func TestUnknownUserCostsTheSame(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hashes []string
		signup bool
		want   int // bcrypt cost of the dummy; 0 for argon2id
	}{
		{"one bcrypt user", []string{bcryptCost(t, 11)}, false, 11},
		{"the costlier of two", []string{bcryptCost(t, 5), bcryptCost(t, 11)}, false, 11},
		{"argon2id beats bcrypt", []string{bcryptCost(t, 11), argon2idHash("x")}, false, 0},
		{"no users: the sign-up cost", nil, false, signupBcryptCost},
		{"sign-up accounts are costlier", []string{bcryptCost(t, 5)}, true, signupBcryptCost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			for i, h := range tc.hashes {
				cfg.Users = append(cfg.Users, &User{Username: fmt.Sprintf("u%d", i), PasswordHash: h})
			}
			if tc.signup {
				cfg.Signup = &SignupConfig{}
			}
			a := newApp(t, cfg)
			cost, err := bcrypt.Cost(a.directory.dummy().hash)
			if tc.want == 0 {
				if !strings.HasPrefix(string(a.directory.dummy().hash), "$argon2id$") {
					t.Errorf("dummy %q, want the argon2id user's", a.directory.dummy().hash)
				}
				return
			}
			if err != nil || cost != tc.want {
				t.Errorf("dummy bcrypt cost %d (%v), want %d", cost, err, tc.want)
			}
		})
	}
}

func bcryptCost(t *testing.T, cost int) string {
	h, err := bcrypt.GenerateFromPassword([]byte("some password"), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestLoginBusyIsNotAFailure: with every slow-hash slot taken (a flood of
// client-secret guesses), the right password gets 503 and Retry-After, not
// "incorrect", and nothing is counted toward throttling.
func TestLoginBusyIsNotAFailure(t *testing.T) {
	b, _ := newFlow(t, nil)
	_, challenge := pkce()
	login := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
	for range cap(slowHashSlots) {
		slowHashSlots <- struct{}{}
	}
	rec := b.signIn(login, aliceUser, alicePass)
	for range cap(slowHashSlots) {
		<-slowHashSlots
	}
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || strings.Contains(rec.Body.String(), loginFailed) {
		t.Fatalf("busy: %d %v", rec.Code, rec.Header())
	}
	if d, r := b.s.app.throttle.verdict(aliceUser, "192.0.2.7:5555", false); d != 0 || r != 0 || len(b.s.app.throttle.accounts) != 0 {
		t.Errorf("a busy server counted a failure: %v", b.s.app.throttle.accounts)
	}
	if rec := b.signIn(login, aliceUser, alicePass); rec.Code != http.StatusSeeOther {
		t.Errorf("once slots are free: %d", rec.Code)
	}
}

// TestLoopbackRedirectAnyPort: RFC 8252 §7.3 (and RFC 9700 §2.1): a native
// app's http redirect to a loopback IP literal matches on any port, and
// only on the port; everything else stays exact.
func TestLoopbackRedirectAnyPort(t *testing.T) {
	c := &Client{ClientSettings: ClientSettings{RedirectURIs: []string{"http://127.0.0.1:8765/cb", "http://[::1]/cb", "https://app.example/cb", "http://localhost:9000/cb"}}}
	for _, tc := range []struct {
		given string
		ok    bool
	}{
		{"http://127.0.0.1:8765/cb", true},
		{"http://127.0.0.1:51234/cb", true},
		{"http://127.0.0.1/cb", true},
		{"http://[::1]:40000/cb", true},
		{"http://127.0.0.1:51234/other", false},
		{"http://127.0.0.1:51234/cb?x=1", false},
		{"https://127.0.0.1:8765/cb", false},
		{"http://localhost:9001/cb", false}, // a name, not an IP literal: exact
		{"https://app.example:8443/cb", false},
		{"http://127.0.0.2:8765/cb", false},
		// RFC 3986 §6.2.2.1 / RFC 9700 §4.1.3: the loopback rule varies
		// the port only; a scheme in another case is refused, as the
		// exact-match rule refuses it for every other URI.
		{"HTTP://127.0.0.1:51234/cb", false},
		{"Http://[::1]:40000/cb", false},
		{"HTTPS://app.example/cb", false},
		{"http://user@127.0.0.1:51234/cb", false},
		{"http://127.0.0.1:/cb", false},
		{"http://127.0.0.1:5x/cb", false},
		{"http://127.0.0.1.evil.example/cb", false},
		{"http://127.0.0.1:51234/cb#x", false},
	} {
		if _, ok := c.matchRedirectURI(tc.given); ok != tc.ok {
			t.Errorf("%s: matched %v, want %v", tc.given, ok, tc.ok)
		}
	}
}

// TestAuthorizeRequestLimits: repeated state is refused and not echoed
// (RFC 6749 §3.1); an oversized request is refused before any form; a
// confidential client with require_pkce must send a challenge (RFC 7636
// §4.4.1), one without may not send a verifier it never committed to.
func TestAuthorizeRequestLimits(t *testing.T) {
	b, _ := newFlow(t, func(a *App) {
		for _, c := range a.Clients {
			if c.ID == webID {
				c.RequirePKCE = true
			}
		}
	})
	_, challenge := pkce()
	for _, tc := range []struct{ name, query string }{
		{"state twice", authorizeQuery(challenge) + "&state=second"},
		{"oversized", authorizeQuery(challenge, "state", strings.Repeat("s", maxAuthorizeQuery))},
		{"require_pkce without a challenge", url.Values{"response_type": {"code"}, "client_id": {webID}, "state": {"w"}}.Encode()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := b.do(http.MethodGet, "/oauth2/authorize?"+tc.query, nil)
			loc, _ := url.Parse(rec.Header().Get("Location"))
			if rec.Code != http.StatusFound || loc.Query().Get("error") != errInvalidRequest {
				t.Fatalf("%d %v, want an invalid_request redirect", rec.Code, loc)
			}
			if tc.name == "state twice" && loc.Query().Has("state") {
				t.Errorf("an ambiguous state was echoed: %v", loc.Query()["state"])
			}
		})
	}
	// With a challenge, require_pkce is satisfied.
	u := b.approve(url.Values{"response_type": {"code"}, "client_id": {webID}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}.Encode())
	if u.Query().Get("code") == "" {
		t.Fatalf("require_pkce with a challenge: %s", u)
	}
}

// TestSessionFixation: signing in always makes a new session id; a session
// cookie planted before (known to the store or not) is not kept.
func TestSessionFixation(t *testing.T) {
	b, _ := newFlow(t, nil)
	_, challenge := pkce()
	planted := strings.Repeat("P", 43)
	b.cookies[sessionCookie] = planted
	rec := b.signIn(b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil), aliceUser, alicePass)
	if rec.Code != http.StatusSeeOther || b.cookies[sessionCookie] == planted || len(b.cookies[sessionCookie]) != 43 {
		t.Fatalf("session cookie after login %q (planted %q)", b.cookies[sessionCookie], planted)
	}
}

// hookStore runs hook once, right after the first Put under prefix.
type hookStore struct {
	Store
	prefix string
	hook   func()
	done   bool
}

func (h *hookStore) Put(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	err := h.Store.Put(ctx, k, v, ttl)
	if !h.done && strings.HasPrefix(k, h.prefix) {
		h.done = true
		h.hook()
	}
	return err
}

// TestCodeReplayDuringRedemption: a replay that arrives after the code was
// taken but before its tokens are issued still revokes them (RFC 6749
// §4.1.2), because what the code will issue is recorded first: the replay
// here runs at the first store write after the code was taken (with the
// marker written after the tokens, as before, it would find none).
func TestCodeReplayDuringRedemption(t *testing.T) {
	b, _ := newFlow(t, nil)
	verifier, challenge := pkce()
	code := b.code(challenge)
	var replay *httptest.ResponseRecorder
	b.s.app.useStore(&hookStore{Store: b.s.app.store, prefix: "", hook: func() { replay = b.exchange(code, verifier) }})
	rec := b.exchange(code, verifier)
	tok := decodeUserTokens(t, rec, rec.Body.Bytes())
	if replay == nil {
		t.Fatal("the marker was never written")
	}
	assertOAuthError(t, replay, http.StatusBadRequest, errInvalidGrant)
	_, claims := jwtSegments(t, tok.AccessToken)
	if !b.s.app.Revoked(claims["jti"].(string)) {
		t.Error("the access token issued after the replay is not revoked")
	}
	assertOAuthError(t, b.refresh(tok.RefreshToken), http.StatusBadRequest, errInvalidGrant)
}

// slowTakeStore pauses after every successful Take, widening the moment
// between a code's take and the rest of its redemption.
type slowTakeStore struct {
	Store
	pause time.Duration
}

func (s *slowTakeStore) Take(ctx context.Context, k string) ([]byte, error) {
	b, err := s.Store.Take(ctx, k)
	if err == nil {
		time.Sleep(s.pause)
	}
	return b, err
}

// TestCodeRedeemedTwiceAtOnce: issue 15. When a code is redeemed twice at
// the same moment, one redemption wins and the other is a replay that
// revokes the winner's tokens (RFC 6749 §4.1.2, §10.5; RFC 9700 §4.5),
// every time: what the code will issue is recorded before the code is
// taken, so the loser always finds it. 200 races, with the store pausing
// after each take (the moment a marker written after the take missed).
func TestCodeRedeemedTwiceAtOnce(t *testing.T) {
	b, _ := newFlow(t, nil)
	b.s.app.useStore(&slowTakeStore{Store: b.s.app.store, pause: 200 * time.Microsecond})
	verifier, challenge := pkce()
	for i := range 200 {
		code := b.code(challenge)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {spaRedirect}, "client_id": {spaID}, "code_verifier": {verifier}}
		recs := make([]*httptest.ResponseRecorder, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for j := range recs {
			wg.Go(func() {
				<-start
				recs[j] = postToken(t, b.s, form)
			})
		}
		close(start)
		wg.Wait()
		var won *httptest.ResponseRecorder
		for _, rec := range recs {
			switch rec.Code {
			case http.StatusOK:
				if won != nil {
					t.Fatalf("race %d: both redemptions succeeded", i)
				}
				won = rec
			case http.StatusBadRequest:
				assertOAuthError(t, rec, http.StatusBadRequest, errInvalidGrant)
			default:
				t.Fatalf("race %d: %d %s", i, rec.Code, rec.Body)
			}
		}
		if won == nil {
			t.Fatalf("race %d: neither redemption succeeded", i)
		}
		tok := decodeUserTokens(t, won, won.Body.Bytes())
		_, claims := jwtSegments(t, tok.AccessToken)
		if !b.s.app.Revoked(claims["jti"].(string)) {
			t.Fatalf("race %d: the winner's access token was not revoked by the replay", i)
		}
		assertOAuthError(t, b.refresh(tok.RefreshToken), http.StatusBadRequest, errInvalidGrant)
	}
}
