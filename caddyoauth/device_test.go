package caddyoauth

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// deviceRequest is a request carrying value as its device cookie.
func deviceRequest(value string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/oauth2/login", nil)
	r.AddCookie(&http.Cookie{Name: deviceCookie, Value: value})
	return r
}

// TestDeviceCookieSignedForItsAccount: a device cookie gives priority only
// to the account whose sign-in set it, only while it is fresh, and only as
// issued: OWASP "Slow Down Online Guessing Attacks with Device Cookies".
func TestDeviceCookieSignedForItsAccount(t *testing.T) {
	alice := &User{Username: "alice", password: passwordHash{hash: []byte("$2a$10$alicehash")}}
	bob := &User{Username: "bob", password: passwordHash{hash: []byte("$2a$10$bobhash")}}
	aliceNewPassword := &User{Username: "alice", password: passwordHash{hash: []byte("$2a$10$another")}}
	now := time.Unix(1_800_000_000, 0)
	v, err := newDeviceCookie(alice, now)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(v, "alice") {
		t.Errorf("the cookie names the account: %s", v)
	}
	payload, mac, _ := strings.Cut(v, ".")
	flip := func(s string) string { // changes one byte of a base64url string
		b, _ := base64.RawURLEncoding.DecodeString(s)
		b[0] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	for _, tc := range []struct {
		name  string
		value string
		user  *User
		at    time.Time
		want  bool
	}{
		{"as issued", v, alice, now, true},
		{"a day later", v, alice, now.Add(24 * time.Hour), true},
		{"another account", v, bob, now, false},
		{"after a password change", v, aliceNewPassword, now, false},
		{"expired", v, alice, now.Add(deviceCookieTTL), false},
		{"issued in the future", v, alice, now.Add(-time.Hour), false},
		{"payload altered (nonce or time)", flip(payload) + "." + mac, alice, now, false},
		{"MAC altered", payload + "." + flip(mac), alice, now, false},
		{"made-up MAC", payload + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 32)), alice, now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := readDeviceCookie(deviceRequest(tc.value))
			if d == nil {
				t.Fatal("well-formed cookie not read")
			}
			if got := d.signedFor(tc.user, tc.at); got != tc.want {
				t.Errorf("signedFor = %v, want %v", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "x", payload, payload + ".", "." + mac, payload + "." + mac + "x", strings.Repeat("a", 200) + "." + mac} {
		if d := readDeviceCookie(deviceRequest(bad)); d != nil {
			t.Errorf("malformed cookie %q was read", bad)
		}
	}
}

// TestDeviceClaimPolicy: the priority a cookie gives is one sign-in at a
// time, ends after deviceFailuresStop failures within throttleWindow, and
// comes back when the window has passed or after a success.
func TestDeviceClaimPolicy(t *testing.T) {
	th := newLoginThrottle()
	now := time.Unix(1_800_000_000, 0)
	th.now = func() time.Time { return now }
	if !th.claimDevice("d1") {
		t.Fatal("first claim refused")
	}
	if th.claimDevice("d1") {
		t.Fatal("a second sign-in with the same cookie at the same time got priority")
	}
	if !th.claimDevice("d2") {
		t.Fatal("another device's claim refused")
	}
	th.releaseDevice("d2", attemptNotChecked)
	for i := range deviceFailuresStop {
		th.releaseDevice("d1", attemptFailed)
		if got, want := th.claimDevice("d1"), i+1 < deviceFailuresStop; got != want {
			t.Fatalf("after %d failures: claim %v, want %v", i+1, got, want)
		}
	}
	now = now.Add(throttleWindow)
	if !th.claimDevice("d1") {
		t.Fatal("no priority after the window passed")
	}
	th.releaseDevice("d1", attemptFailed)
	th.releaseDevice("d1", attemptSucceeded) // a success clears the count
	if c := th.count(th.devices, "d1", now); c != 0 || len(th.inflight) != 0 {
		t.Errorf("after success: count %d, in flight %v", c, th.inflight)
	}
}

// TestFloodCannotTakeReservedSlots: what takes the general slots (client
// secrets, unknown sign-ins) cannot take the reserved ones; a known device
// takes a reserved slot, or a general one when those are full.
func TestFloodCannotTakeReservedSlots(t *testing.T) {
	fill(t, slowHashSlots)
	if acquireSlowHashSlot() {
		releaseSlowHashSlot()
		t.Fatal("a general request got a slot while all general slots were taken")
	}
	if len(knownSlowHashSlots) != 0 {
		t.Fatal("a general request took a reserved slot")
	}
	var releases []func()
	for range cap(knownSlowHashSlots) {
		release, ok := acquireKnownSlowHashSlot()
		if !ok {
			t.Fatal("a known device got no reserved slot")
		}
		releases = append(releases, release)
	}
	if _, ok := acquireKnownSlowHashSlot(); ok {
		t.Fatal("a slot beyond both pools")
	}
	for _, r := range releases {
		r()
	}
	if len(knownSlowHashSlots) != 0 || len(slowHashSlots) != cap(slowHashSlots) {
		t.Fatalf("release gave back the wrong slot: known %d, general %d", len(knownSlowHashSlots), len(slowHashSlots))
	}

	// With the reserved slots full, a known device takes a general one.
	drain(slowHashSlots)
	fill(t, knownSlowHashSlots)
	release, ok := acquireKnownSlowHashSlot()
	if !ok || len(slowHashSlots) != 1 {
		t.Fatalf("known device with reserved slots full: ok %v, general in use %d", ok, len(slowHashSlots))
	}
	release()
	drain(knownSlowHashSlots)
}

// fill takes every slot of pool until the test ends.
func fill(t *testing.T, pool chan struct{}) {
	t.Helper()
	for len(pool) < cap(pool) {
		pool <- struct{}{}
	}
	t.Cleanup(func() { drain(pool) })
}

func drain(pool chan struct{}) {
	for len(pool) > 0 {
		<-pool
	}
}

// TestKnownDeviceSignsInDuringFlood: with every general slow-hash slot
// taken (a flood of guesses), a sign-in with the device cookie an earlier
// sign-in to that account set succeeds; without a cookie, with a forged
// one, with another account's, or with one whose failures used up its
// priority, it gets 503 as before.
func TestKnownDeviceSignsInDuringFlood(t *testing.T) {
	const bobPass = "bob password 123"
	b, _ := newFlow(t, func(a *App) {
		a.Users = append(a.Users, &User{Username: "bob", PasswordHash: bcryptHash(t, bobPass)})
	})
	_, challenge := pkce()
	loginPage := func(br *browser) *httptest.ResponseRecorder {
		return br.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
	}
	newBrowser := func() *browser { return &browser{t: t, s: b.s, cookies: map[string]string{}} }

	// Earlier sign-ins set the device cookies, with the right attributes.
	rec := b.signIn(loginPage(b), aliceUser, alicePass)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("first sign-in: %d", rec.Code)
	}
	var set *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == deviceCookie {
			set = c
		}
	}
	if set == nil || !set.Secure || !set.HttpOnly || set.Path != "/" || set.Domain != "" || set.MaxAge <= 0 || set.SameSite != http.SameSiteLaxMode {
		t.Fatalf("device cookie after sign-in: %+v", set)
	}
	aliceDevice := set.Value
	bobBrowser := newBrowser()
	if rec := bobBrowser.signIn(loginPage(bobBrowser), "bob", bobPass); rec.Code != http.StatusSeeOther {
		t.Fatalf("bob's sign-in: %d", rec.Code)
	}
	bobDevice := bobBrowser.cookies[deviceCookie]

	fill(t, slowHashSlots) // the flood
	signInWith := func(device, user, pass string) int {
		br := newBrowser()
		page := loginPage(br)
		if device != "" {
			br.cookies[deviceCookie] = device
		}
		return br.signIn(page, user, pass).Code
	}
	payload, _, _ := strings.Cut(aliceDevice, ".")
	for _, tc := range []struct {
		name, device, user, pass string
		want                     int
	}{
		{"no device cookie", "", aliceUser, alicePass, http.StatusServiceUnavailable},
		{"alice's device", aliceDevice, aliceUser, alicePass, http.StatusSeeOther},
		{"forged MAC", payload + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 32)), aliceUser, alicePass, http.StatusServiceUnavailable},
		{"bob's device for alice", bobDevice, aliceUser, alicePass, http.StatusServiceUnavailable},
		{"bob's device for bob", bobDevice, "bob", bobPass, http.StatusSeeOther},
		{"alice's device, unknown user", aliceDevice, "mallory", alicePass, http.StatusServiceUnavailable},
	} {
		if got := signInWith(tc.device, tc.user, tc.pass); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}

	// Wrong passwords with alice's device cookie use up its priority.
	for range deviceFailuresStop {
		if got := signInWith(aliceDevice, aliceUser, "wrong"); got != http.StatusBadRequest {
			t.Fatalf("wrong password with a known device: %d", got)
		}
	}
	if got := signInWith(aliceDevice, aliceUser, alicePass); got != http.StatusServiceUnavailable {
		t.Errorf("device cookie past its failures kept priority: %d", got)
	}
}

// TestKnownDeviceNotLockedOut: guesses at alice's password from elsewhere
// lock the account for unknown browsers (throttle.go) but not for the
// browser alice signed in from before (OWASP per-device lockout); her
// sign-in there does not lift the lock for the others; and a device cookie
// that is used for guessing buys deviceFailuresStop guesses, then meets
// the account's lock like everyone else.
func TestKnownDeviceNotLockedOut(t *testing.T) {
	b, _ := newFlow(t, nil)
	_, challenge := pkce()
	loginPage := func(br *browser) *httptest.ResponseRecorder {
		return br.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
	}
	if rec := b.signIn(loginPage(b), aliceUser, alicePass); rec.Code != http.StatusSeeOther {
		t.Fatalf("first sign-in: %d", rec.Code)
	}
	device := b.cookies[deviceCookie]
	signInWith := func(device, pass string) int {
		br := &browser{t: t, s: b.s, cookies: map[string]string{}}
		page := loginPage(br)
		if device != "" {
			br.cookies[deviceCookie] = device
		}
		return br.signIn(page, aliceUser, pass).Code
	}
	// The guesses: make the account's count reach its stop at once.
	for range throttleAccountStop {
		b.s.app.throttle.failed(aliceUser, "198.51.100.7")
	}
	if got := signInWith("", alicePass); got != http.StatusTooManyRequests {
		t.Fatalf("unknown browser, locked account: %d, want 429", got)
	}
	if got := signInWith(device, alicePass); got != http.StatusSeeOther {
		t.Fatalf("alice's own browser, locked account: %d, want 303", got)
	}
	if got := signInWith("", alicePass); got != http.StatusTooManyRequests {
		t.Fatalf("after alice's sign-in, an unknown browser: %d, want still 429", got)
	}
	// The cookie used to guess: deviceFailuresStop wrong answers, then
	// the lock applies to it too, right password or not.
	for i := range deviceFailuresStop {
		if got := signInWith(device, "guess"); got != http.StatusBadRequest {
			t.Fatalf("guess %d with the device cookie: %d, want 400", i+1, got)
		}
	}
	if got := signInWith(device, alicePass); got != http.StatusTooManyRequests {
		t.Fatalf("device cookie after %d failures, locked account: %d, want 429", deviceFailuresStop, got)
	}
}
