package caddyoauth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// signedInTokens runs the SPA flow and returns its tokens.
func signedInTokens(t *testing.T, b *browser, kv ...string) userTokens {
	t.Helper()
	verifier, challenge := pkce()
	rec := b.exchange(b.code(challenge, kv...), verifier)
	return decodeUserTokens(t, rec, rec.Body.Bytes())
}

// TestRefreshRotation: each use returns a new refresh token (RFC 9700
// §4.14.2 rotation); a retry of the rotated one within
// refresh_token_reuse_grace gets the same successor; using it again after
// the window is refused and revokes the family, including the newest
// refresh token and the last access token (RFC 6749 §10.4).
func TestRefreshRotation(t *testing.T) {
	b, ms := newFlow(t, nil)
	first := signedInTokens(t, b)

	rec := b.refresh(first.RefreshToken)
	second := decodeUserTokens(t, rec, rec.Body.Bytes())
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh token not rotated: %s", rec.Body)
	}
	_, c2 := jwtSegments(t, second.AccessToken)
	if c2["sub"] != aliceUser || c2["auth_time"] == nil {
		t.Errorf("refreshed access token claims %v: want the same person", c2)
	}
	// A retry within the window (the answer was lost): the same
	// successor, a new access token.
	b.advance(ms, DefaultRefreshReuseGrace-time.Second)
	rec = b.refresh(first.RefreshToken)
	retry := decodeUserTokens(t, rec, rec.Body.Bytes())
	if retry.RefreshToken != second.RefreshToken {
		t.Fatalf("retry within the grace window: refresh token %q, want the successor %q", retry.RefreshToken, second.RefreshToken)
	}
	_, cr := jwtSegments(t, retry.AccessToken)

	// Reuse of the rotated token after the window: refused, family revoked.
	b.advance(ms, time.Second)
	assertOAuthError(t, b.refresh(first.RefreshToken), http.StatusBadRequest, errInvalidGrant)
	assertOAuthError(t, b.refresh(second.RefreshToken), http.StatusBadRequest, errInvalidGrant)
	for _, c := range []map[string]any{c2, cr} {
		if !b.s.app.Revoked(c["jti"].(string)) {
			t.Error("an access token of the family was not revoked")
		}
	}
	// Another sign-in's family is unaffected.
	other := signedInTokens(t, b)
	if rec := b.refresh(other.RefreshToken); rec.Code != http.StatusOK {
		t.Errorf("unrelated family refused: %s", rec.Body)
	}
}

// TestRefreshReuseGraceOff: refresh_token_reuse_grace 0: any second use
// of a rotated token is reuse (RFC 9700 §4.14.2 without a grace period).
func TestRefreshReuseGraceOff(t *testing.T) {
	b, _ := newFlow(t, func(a *App) { zero := caddy.Duration(0); a.RefreshTokenReuseGrace = &zero })
	first := signedInTokens(t, b)
	rec := b.refresh(first.RefreshToken)
	second := decodeUserTokens(t, rec, rec.Body.Bytes())
	assertOAuthError(t, b.refresh(first.RefreshToken), http.StatusBadRequest, errInvalidGrant)
	assertOAuthError(t, b.refresh(second.RefreshToken), http.StatusBadRequest, errInvalidGrant)
}

// TestRefreshConcurrentUse: many concurrent uses of one refresh token (two
// browser tabs, retries) within the grace window all succeed with the same
// successor, which works afterwards; nothing is revoked (run with -race).
func TestRefreshConcurrentUse(t *testing.T) {
	b, _ := newFlow(t, nil)
	tok := signedInTokens(t, b)
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := map[string]int{}
	for range 16 {
		wg.Go(func() {
			rec := postToken(t, b.s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {spaID}})
			mu.Lock()
			defer mu.Unlock()
			if rec.Code != http.StatusOK {
				t.Errorf("a concurrent use failed: %d %s", rec.Code, rec.Body)
				return
			}
			next[decodeUserTokens(t, rec, rec.Body.Bytes()).RefreshToken]++
		})
	}
	wg.Wait()
	if len(next) != 1 {
		t.Fatalf("concurrent uses got %d different successors, want one", len(next))
	}
	for s := range next {
		if rec := b.refresh(s); rec.Code != http.StatusOK {
			t.Errorf("the shared successor: %d %s", rec.Code, rec.Body)
		}
	}
	if keys, _ := b.s.app.store.List(t.Context(), "refresh-revoked/"); len(keys) != 0 {
		t.Errorf("family revocations after concurrent retries: %v, want none", keys)
	}
}

// TestRefreshConcurrentReplayAfterGrace: past the window, concurrent
// replays of a rotated token are reuse: all refused, the family revoked.
func TestRefreshConcurrentReplayAfterGrace(t *testing.T) {
	b, ms := newFlow(t, nil)
	tok := signedInTokens(t, b)
	rec := b.refresh(tok.RefreshToken)
	second := decodeUserTokens(t, rec, rec.Body.Bytes())
	b.advance(ms, DefaultRefreshReuseGrace)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			rec := postToken(t, b.s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {spaID}})
			if rec.Code != http.StatusBadRequest {
				t.Errorf("replay after the window: %d %s", rec.Code, rec.Body)
			}
		})
	}
	wg.Wait()
	assertOAuthError(t, b.refresh(second.RefreshToken), http.StatusBadRequest, errInvalidGrant)
}

// TestRefreshScope: RFC 6749 §6: a narrower scope may be asked, a wider
// one is invalid_scope and burns nothing; no scope means the original.
func TestRefreshScope(t *testing.T) {
	b, _ := newFlow(t, nil)
	tok := signedInTokens(t, b, "scope", "notes:read profile")

	assertOAuthError(t, b.refresh(tok.RefreshToken, "scope", "notes:read notes:write"), http.StatusBadRequest, errInvalidScope)
	rec := b.refresh(tok.RefreshToken, "scope", "notes:read")
	narrowed := decodeUserTokens(t, rec, rec.Body.Bytes())
	if narrowed.Scope != "notes:read" {
		t.Fatalf("narrowed scope %q", narrowed.Scope)
	}
	rec = b.refresh(narrowed.RefreshToken)
	again := decodeUserTokens(t, rec, rec.Body.Bytes())
	if again.Scope != "notes:read profile" {
		t.Errorf("scope after a narrowed refresh %q, want the original grant back", again.Scope)
	}
}

// TestRefreshBinding: another client cannot use the token (RFC 6749 §6)
// and does not burn it; a client without the grant is unauthorized_client.
func TestRefreshBinding(t *testing.T) {
	b, _ := newFlow(t, nil)
	tok := signedInTokens(t, b)
	rec := basicToken(t, b.s, webID, webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	assertOAuthError(t, rec, http.StatusBadRequest, errInvalidGrant)
	rec = basicToken(t, b.s, svcID, svcSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	assertOAuthError(t, rec, http.StatusBadRequest, errUnauthorizedClient)
	if rec := b.refresh(tok.RefreshToken); rec.Code != http.StatusOK {
		t.Fatalf("owner's refresh after others tried: %s", rec.Body)
	}
	for _, bad := range []string{"", "short", strings.Repeat("A", 43)} {
		want := errInvalidGrant
		if bad == "" {
			want = errInvalidRequest
		}
		assertOAuthError(t, b.refresh(bad), http.StatusBadRequest, want)
	}
}

// TestRefreshLifetimes: a token lapses after refresh_token_ttl without
// use; a family ends at refresh_token_max_ttl however often it is used.
func TestRefreshLifetimes(t *testing.T) {
	b, ms := newFlow(t, func(a *App) {
		a.RefreshTokenTTL = caddyDuration(time.Hour)
		a.RefreshTokenMaxTTL = caddyDuration(3 * time.Hour)
	})
	tok := signedInTokens(t, b)
	b.advance(ms, 2*time.Hour)
	assertOAuthError(t, b.refresh(tok.RefreshToken), http.StatusBadRequest, errInvalidGrant)

	b2, ms2 := newFlow(t, func(a *App) {
		a.RefreshTokenTTL = caddyDuration(time.Hour)
		a.RefreshTokenMaxTTL = caddyDuration(90 * time.Minute)
	})
	tok = signedInTokens(t, b2)
	b2.advance(ms2, 50*time.Minute)
	rec := b2.refresh(tok.RefreshToken)
	tok2 := decodeUserTokens(t, rec, rec.Body.Bytes())
	b2.advance(ms2, 100*time.Minute) // within its idle hour, past the family's end
	assertOAuthError(t, b2.refresh(tok2.RefreshToken), http.StatusBadRequest, errInvalidGrant)
}

// TestUserRemovedEndsRefresh: a refresh token of a user no longer
// configured is refused.
func TestUserRemovedEndsRefresh(t *testing.T) {
	b, _ := newFlow(t, nil)
	tok := signedInTokens(t, b)
	delete(b.s.app.users, aliceUser)
	assertOAuthError(t, b.refresh(tok.RefreshToken), http.StatusBadRequest, errInvalidGrant)
}

// TestClientRevocationEndsGrants: the admin API's "revoke every token of
// this client" also ends its refresh-token families, its unredeemed codes
// and the consents remembered for it (RFC 7009 §2.1: the grant goes with
// its tokens); what happens after the mark works again.
func TestClientRevocationEndsGrants(t *testing.T) {
	b, ms := newFlow(t, nil)
	web := webTokens(t, b)
	u := b.approve(url.Values{"response_type": {"code"}, "client_id": {webID}}.Encode()) // a code not yet redeemed
	// Remember the consent.
	if err := b.s.app.rec.Consents.Put(t.Context(), aliceUser, webID, []string{"notes:read", "profile"}); err != nil {
		t.Fatal(err)
	}
	if err := b.s.app.registry.revokeTokens(t.Context(), webID); err != nil {
		t.Fatal(err)
	}
	b.s.app.registry.forget(webID)

	rec := basicToken(t, b.s, webID, webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {web.RefreshToken}})
	assertOAuthError(t, rec, http.StatusBadRequest, errInvalidGrant)
	rec = basicToken(t, b.s, webID, webSecret, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}})
	assertOAuthError(t, rec, http.StatusBadRequest, errInvalidGrant)
	if _, m := introspectAs(t, b.s, webID, webSecret, web.RefreshToken); m["active"] != false {
		t.Errorf("revoked client's refresh token introspected as %v", m)
	}
	if ok, _ := b.s.consented(t.Context(), aliceUser, webID, []string{"profile"}); ok {
		t.Error("a consent remembered before the revocation still counts")
	}
	// Later sign-ins work (the mark has second resolution).
	b.advance(ms, 2*time.Second)
	again := webTokens(t, b)
	if rec := basicToken(t, b.s, webID, webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {again.RefreshToken}}); rec.Code != http.StatusOK {
		t.Errorf("a family started after the revocation: %d %s", rec.Code, rec.Body)
	}
}

// TestReuseRevokesEveryAccessToken: reuse revokes all the family's access
// tokens still alive, not only the last one (RFC 9700 §4.14.2).
func TestReuseRevokesEveryAccessToken(t *testing.T) {
	b, _ := newFlow(t, nil)
	t1 := signedInTokens(t, b)
	rec := b.refresh(t1.RefreshToken)
	t2 := decodeUserTokens(t, rec, rec.Body.Bytes())
	rec = b.refresh(t2.RefreshToken)
	t3 := decodeUserTokens(t, rec, rec.Body.Bytes())
	b.refresh(t1.RefreshToken) // reuse
	for i, tok := range []userTokens{t1, t2, t3} {
		_, c := jwtSegments(t, tok.AccessToken)
		if !b.s.app.Revoked(c["jti"].(string)) {
			t.Errorf("access token %d of the family still valid after reuse", i+1)
		}
	}
}

// failPutStore fails the first Put under prefix, as a store that drops a
// write would.
type failPutStore struct {
	Store
	prefix string
	failed bool
}

func (f *failPutStore) Put(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	if !f.failed && strings.HasPrefix(k, f.prefix) {
		f.failed = true
		return errDown
	}
	return f.Store.Put(ctx, k, v, ttl)
}

// TestRotationWriteFailureIsNotReuse: when a write of the rotation fails,
// the client gets 503 and its retry with the same refresh token works; it
// is not taken for reuse.
func TestRotationWriteFailureIsNotReuse(t *testing.T) {
	for _, prefix := range []string{"refresh-tokens/", "refresh-families/"} {
		t.Run(prefix, func(t *testing.T) {
			b, _ := newFlow(t, nil)
			tok := signedInTokens(t, b)
			b.s.app.useStore(&failPutStore{Store: b.s.app.store, prefix: prefix})
			assertOAuthError(t, b.refresh(tok.RefreshToken), http.StatusServiceUnavailable, errTemporarilyUnavailable)
			if rec := b.refresh(tok.RefreshToken); rec.Code != http.StatusOK {
				t.Fatalf("retry after a failed write: %d %s", rec.Code, rec.Body)
			}
		})
	}
}
