package caddyoauth

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"github.com/caddyapigw/gateway/internal/oauthmetrics"
)

// counts reads the current values of a Fixed counter's declared values.
func counts(f *oauthmetrics.Fixed, values ...string) map[string]float64 {
	m := make(map[string]float64, len(values))
	for _, v := range values {
		m[v] = testutil.ToFloat64(f.Child(v))
	}
	return m
}

// assertMoved checks that each value of f moved by exactly want[value]
// since before (values not in want must not have moved).
func assertMoved(t *testing.T, what string, f *oauthmetrics.Fixed, before map[string]float64, want map[string]float64) {
	t.Helper()
	for v, b := range before {
		if got := testutil.ToFloat64(f.Child(v)) - b; got != want[v] {
			t.Errorf("%s{%s}: moved by %v, want %v", what, v, got, want[v])
		}
	}
}

// TestSignInMetrics: every sign-in attempt is counted once under its
// result: a wrong password, a success, a refusal for the account's
// failures (locked) and one for the address's (throttled), and a busy
// server that checked nothing.
func TestSignInMetrics(t *testing.T) {
	results := []string{signinSuccess, signinWrongPassword, signinLocked, signinThrottled, signinBusy, signinError}
	before := counts(signins, results...)
	b, _ := newFlow(t, nil)
	th := b.s.app.throttle
	_, challenge := pkce()
	login := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
	if rec := b.signIn(login, aliceUser, "not the password"); rec.Code != http.StatusBadRequest {
		t.Fatalf("wrong password: %d", rec.Code)
	}
	if rec := b.signIn(login, aliceUser, alicePass); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	for range throttleAccountStop {
		th.failed("bob", "198.51.100.1")
	}
	if rec := b.signIn(login, "bob", "whatever"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("locked account: %d", rec.Code)
	}
	// The test requests come from 192.0.2.7:5555 (the flow helper): spray from it.
	for i := range throttleIPStop {
		th.failed("sprayed"+strings.Repeat("x", i), "192.0.2.7:5555")
	}
	if rec := b.signIn(login, "carol", "whatever"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("throttled address: %d", rec.Code)
	}
	th.ips = map[string]*failureCount{}
	// Without the known-device cookie of the first sign-in, which would
	// give alice the reserved slots (device.go).
	delete(b.cookies, deviceCookie)
	for range cap(slowHashSlots) {
		slowHashSlots <- struct{}{}
	}
	busy := b.signIn(login, aliceUser, alicePass)
	for range cap(slowHashSlots) {
		<-slowHashSlots
	}
	if busy.Code != http.StatusServiceUnavailable {
		t.Fatalf("busy: %d", busy.Code)
	}
	assertMoved(t, "oauth_signins_total", signins, before, map[string]float64{
		signinWrongPassword: 1, signinSuccess: 1, signinLocked: 1, signinThrottled: 1, signinBusy: 1,
	})
}

// TestConsentRefreshSessionMetrics: a consent granted, one denied, one
// withdrawn; a refresh token rotated, then reused (its family revoked);
// a session started by each sign-in and ended by signing out.
func TestConsentRefreshSessionMetrics(t *testing.T) {
	c0 := counts(consents, consentGranted, consentDenied, consentWithdrawn)
	r0 := counts(refreshes, refreshRotated, refreshReuse)
	s0 := counts(sessions, sessionStarted, sessionSignedOut)
	b, _ := newFlow(t, func(a *App) { zero := caddyDuration(0); a.RefreshTokenReuseGrace = &zero })

	first := signedInTokens(t, b) // sign-in, session, consent granted
	rec := b.refresh(first.RefreshToken)
	if rec.Code != http.StatusOK {
		t.Fatalf("refresh: %d %s", rec.Code, rec.Body)
	}
	assertOAuthError(t, b.refresh(first.RefreshToken), http.StatusBadRequest, errInvalidGrant)

	webQuery := url.Values{"response_type": {"code"}, "client_id": {webID}, "scope": {"profile"}, "state": {"w"}}.Encode()
	page := b.do(http.MethodGet, "/oauth2/authorize?"+webQuery, nil)
	f := fields(page.Body.String())
	f.Set("decision", "deny")
	if rec := b.do(http.MethodPost, "/oauth2/consent", f); rec.Code != http.StatusSeeOther {
		t.Fatalf("deny: %d", rec.Code)
	}
	w := url.Values{"client_id": {webID}, csrfField: {csrfToken(b.cookies[csrfCookie], formWithdraw)}}
	if rec := b.do(http.MethodPost, "/oauth2/account", w); rec.Code != http.StatusSeeOther {
		t.Fatalf("withdraw: %d %s", rec.Code, rec.Body)
	}
	out := url.Values{csrfField: {csrfToken(b.cookies[csrfCookie], formLogout)}}
	if rec := b.do(http.MethodPost, "/oauth2/logout", out); rec.Code != http.StatusSeeOther && rec.Code != http.StatusOK {
		t.Fatalf("logout: %d %s", rec.Code, rec.Body)
	}
	assertMoved(t, "oauth_consents_total", consents, c0, map[string]float64{consentGranted: 1, consentDenied: 1, consentWithdrawn: 1})
	assertMoved(t, "oauth_refresh_tokens_total", refreshes, r0, map[string]float64{refreshRotated: 1, refreshReuse: 1})
	assertMoved(t, "oauth_sessions_total", sessions, s0, map[string]float64{sessionStarted: 1, sessionSignedOut: 1})
}

// TestSlowHashSlotMetrics: a comparison that finds a slot free, one that
// waits for one, and one refused after slowHashWait are each counted.
func TestSlowHashSlotMetrics(t *testing.T) {
	before := counts(slowHashSlotMetrics, slotFree, slotWaited, slotRefused)
	if !acquireSlowHashSlot() {
		t.Fatal("no free slot")
	}
	releaseSlowHashSlot()
	for range cap(slowHashSlots) {
		slowHashSlots <- struct{}{}
	}
	if acquireSlowHashSlot() {
		t.Fatal("a slot while all were taken")
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		<-slowHashSlots
	}()
	if !acquireSlowHashSlot() {
		t.Fatal("no slot after one came free")
	}
	for range cap(slowHashSlots) {
		<-slowHashSlots
	}
	assertMoved(t, "oauth_slow_hash_slots_total", slowHashSlotMetrics, before, map[string]float64{slotFree: 1, slotWaited: 1, slotRefused: 1})
}

// TestKeyMetrics: the running app's active key age is exposed (its
// creation time from the stored keyring, so a new key is seconds old and
// a key made a day ago a day old), and each rotation is counted by key
// and trigger.
func TestKeyMetrics(t *testing.T) {
	app := newApp(t, baseConfig())
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	defer app.Stop()
	reg := prometheus.NewPedanticRegistry()
	if err := registerAppMetrics(reg); err != nil {
		t.Fatal(err)
	}
	age := func(now time.Time) float64 {
		t.Helper()
		c := keyAge{now: func() time.Time { return now }}
		return testutil.ToFloat64(c)
	}
	if a := age(time.Now()); a < 0 || a > 60 {
		t.Errorf("a new key's age: %v s", a)
	}
	if a := age(time.Now().Add(24 * time.Hour)); a < 86400-60 || a > 86400+60 {
		t.Errorf("a day later: %v s, want about 86400", a)
	}
	if n, err := testutil.GatherAndCount(reg, "oauth_signing_key_age_seconds"); err != nil || n != 1 {
		t.Errorf("key age series: %d (%v), want 1", n, err)
	}
	admin := keyRotations.WithLabelValues(keyAccessToken, rotateAdmin)
	before := testutil.ToFloat64(admin)
	if _, err := app.RotateSigningKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(admin); got != before+1 {
		t.Errorf("admin rotations: %v, want %v", got, before+1)
	}
	app.Stop()
	if n, _ := testutil.GatherAndCount(reg, "oauth_signing_key_age_seconds"); n != 0 {
		t.Errorf("key age of a stopped app: %d series, want none", n)
	}
}

// TestKeyFileAge: a key from a PEM file is as old as the file.
func TestKeyFileAge(t *testing.T) {
	k, err := oauthjwt.GenerateKey(oauthjwt.ES256)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := k.MarshalPrivateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig()
	cfg.SigningKey = &SigningKeyConfig{File: path}
	app := newApp(t, cfg)
	if got := app.keys.activeCreated.Load(); got != old.Unix() {
		t.Errorf("key file created %v, want its mtime %v", time.Unix(got, 0), old)
	}
}

// TestAppMetricsReload: a reload registers the app's collectors into the
// same or a new registry without an error or a duplicate, and a pedantic
// registry gathers them (names, help and label sets consistent).
func TestAppMetricsReload(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	for range 2 {
		if err := registerAppMetrics(reg); err != nil {
			t.Fatal(err)
		}
		if err := registerTokenMetrics(reg); err != nil {
			t.Fatal(err)
		}
	}
	if err := registerAppMetrics(prometheus.NewPedanticRegistry()); err != nil {
		t.Fatal(err)
	}
	signins.Inc(signinSuccess)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		if seen[f.GetName()] {
			t.Errorf("%s gathered twice", f.GetName())
		}
		seen[f.GetName()] = true
	}
	for _, name := range []string{"oauth_signins_total", "oauth_consents_total", "oauth_refresh_tokens_total", "oauth_sessions_total",
		"oauth_slow_hash_slots_total", "oauth_signing_key_rotations_total", "oauth_security_events_total", "oauth_token_refused_total"} {
		if !seen[name] {
			t.Errorf("%s not gathered", name)
		}
	}
}
