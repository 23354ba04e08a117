package caddyoauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// introspectAs posts an RFC 7662 request with Basic credentials ("" for
// none) and returns status and body.
func introspectAs(t *testing.T, s *Server, id, secret, tok string) (int, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/oauth2/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		r.Header.Set("Authorization", basicAuth(id, secret))
	}
	rec, _ := serve(t, s, r)
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return rec.Code, m
}

func revokeAs(t *testing.T, s *Server, form url.Values, id, secret string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/oauth2/revoke", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		r.Header.Set("Authorization", basicAuth(id, secret))
	}
	rec, _ := serve(t, s, r)
	return rec
}

// TestIntrospection: RFC 7662 §2.1 requires client authentication; §2.2
// answers active tokens with their details and anything else with
// {"active": false} alone.
func TestIntrospection(t *testing.T) {
	b, _ := newFlow(t, nil)
	user := signedInTokens(t, b)
	cc := decodeTokenResponse(t, basicToken(t, b.s, svcID, svcSecret, ccForm("scope", "user:read")))

	if status, m := introspectAs(t, b.s, "", "", cc.AccessToken); status != http.StatusBadRequest || m["error"] != errInvalidClient {
		t.Errorf("without client authentication: %d %v, want 400 invalid_client (RFC 7662 §2.1, RFC 6749 §5.2: no Basic tried)", status, m)
	}
	if status, _ := introspectAs(t, b.s, svcID, "wrong-secret-0123456789", cc.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d", status)
	}
	// A public client cannot authenticate, so it cannot introspect.
	r := httptest.NewRequest(http.MethodPost, "/oauth2/introspect", strings.NewReader(url.Values{"token": {cc.AccessToken}, "client_id": {spaID}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if rec, _ := serve(t, b.s, r); rec.Code != http.StatusBadRequest {
		t.Errorf("public client: %d", rec.Code)
	}

	_, m := introspectAs(t, b.s, webID, webSecret, cc.AccessToken)
	if m["active"] != true || m["client_id"] != svcID || m["scope"] != "user:read" || m["sub"] != svcID || m["token_type"] != "Bearer" ||
		m["iss"] != testIssuer || m["aud"] != testIssuer || m["exp"] == nil || m["iat"] == nil || m["username"] != nil {
		t.Errorf("client credentials token: %v", m)
	}
	_, m = introspectAs(t, b.s, webID, webSecret, user.AccessToken)
	if m["active"] != true || m["sub"] != aliceUser || m["username"] != aliceUser || m["client_id"] != spaID {
		t.Errorf("user access token: %v", m)
	}
	// A refresh token is described only to the client it belongs to.
	web := webTokens(t, b)
	_, m = introspectAs(t, b.s, webID, webSecret, web.RefreshToken)
	if m["active"] != true || m["sub"] != aliceUser || m["client_id"] != webID || m["scope"] != "notes:read profile" {
		t.Errorf("own refresh token: %v", m)
	}
	if _, m = introspectAs(t, b.s, svcID, svcSecret, web.RefreshToken); len(m) != 1 || m["active"] != false {
		t.Errorf("another client's refresh token: %v, want {\"active\": false}", m)
	}

	inactive := func(name, tok string) {
		t.Helper()
		status, m := introspectAs(t, b.s, webID, webSecret, tok)
		if status != http.StatusOK || len(m) != 1 || m["active"] != false {
			t.Errorf("%s: %d %v, want exactly {\"active\": false}", name, status, m)
		}
	}
	inactive("garbage", "abc")
	inactive("unknown refresh token", strings.Repeat("A", 43))
	inactive("forged JWT", cc.AccessToken[:len(cc.AccessToken)-4]+"AAAA")
	rotated := b.refresh(user.RefreshToken)
	inactive("rotated refresh token", user.RefreshToken)
	var next userTokens
	_ = json.Unmarshal(rotated.Body.Bytes(), &next)
	revokeAs(t, b.s, url.Values{"token": {cc.AccessToken}}, svcID, svcSecret)
	inactive("revoked access token", cc.AccessToken)
	if _, m := introspectAs(t, b.s, webID, webSecret, next.RefreshToken); m["active"] != false {
		t.Errorf("the SPA's refresh token described to another client: %v", m)
	}
}

// TestRevocation: RFC 7009 §2.1 client authentication and ownership; §2.2
// 200 for unknown tokens; revoked access tokens are refused at once (by
// the revocation list); revoking a refresh token ends its family and the
// access token it issued last.
func TestRevocation(t *testing.T) {
	b, _ := newFlow(t, nil)
	cc := decodeTokenResponse(t, basicToken(t, b.s, svcID, svcSecret, ccForm()))
	_, claims := jwtSegments(t, cc.AccessToken)

	if rec := revokeAs(t, b.s, url.Values{"token": {cc.AccessToken}}, "", ""); rec.Code != http.StatusBadRequest {
		t.Errorf("without client authentication: %d", rec.Code)
	}
	if rec := revokeAs(t, b.s, url.Values{"token": {cc.AccessToken}}, webID, webSecret); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), errUnauthorizedClient) {
		t.Errorf("another client's token: %d %s, want 400 unauthorized_client (RFC 7009 §2.1)", rec.Code, rec.Body)
	}
	if b.s.app.Revoked(claims["jti"].(string)) {
		t.Fatal("another client revoked the token")
	}
	if rec := revokeAs(t, b.s, url.Values{}, svcID, svcSecret); rec.Code != http.StatusBadRequest {
		t.Errorf("no token parameter: %d", rec.Code)
	}
	// The hint is honoured but not trusted: a wrong hint still revokes.
	rec := revokeAs(t, b.s, url.Values{"token": {cc.AccessToken}, "token_type_hint": {"refresh_token"}}, svcID, svcSecret)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("revoke: %d %q", rec.Code, rec.Body)
	}
	if !b.s.app.Revoked(claims["jti"].(string)) {
		t.Fatal("revoked access token not on the revocation list")
	}
	for _, tok := range []string{"unknown", strings.Repeat("B", 43), cc.AccessToken} {
		if rec := revokeAs(t, b.s, url.Values{"token": {tok}}, svcID, svcSecret); rec.Code != http.StatusOK {
			t.Errorf("revoking %.10s…: %d, want 200 (RFC 7009 §2.2)", tok, rec.Code)
		}
	}

	// Another client's refresh token: refused, and the family lives on.
	web := webTokens(t, b)
	if rec := revokeAs(t, b.s, url.Values{"token": {web.RefreshToken}}, svcID, svcSecret); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), errUnauthorizedClient) {
		t.Errorf("revoking another client's refresh token: %d %s", rec.Code, rec.Body)
	}
	if rec := basicToken(t, b.s, webID, webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {web.RefreshToken}}); rec.Code != http.StatusOK {
		t.Errorf("the family after another client tried to revoke it: %d %s", rec.Code, rec.Body)
	}

	// Refresh token, by a public client (client_id only).
	user := signedInTokens(t, b)
	_, uc := jwtSegments(t, user.AccessToken)
	rec = revokeAs(t, b.s, url.Values{"token": {user.RefreshToken}, "client_id": {spaID}}, "", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("revoking a refresh token: %d %s", rec.Code, rec.Body)
	}
	assertOAuthError(t, b.refresh(user.RefreshToken), http.StatusBadRequest, errInvalidGrant)
	if !b.s.app.Revoked(uc["jti"].(string)) {
		t.Error("the refresh token's access token was not revoked (RFC 7009 §2.1 SHOULD)")
	}
}

// TestRevokedAtRestartAndExpiry: revocations are kept by the store (a new
// instance knows them) and dropped once the token would have expired.
func TestRevokedAtRestartAndExpiry(t *testing.T) {
	b, _ := newFlow(t, nil)
	cc := decodeTokenResponse(t, basicToken(t, b.s, svcID, svcSecret, ccForm()))
	revokeAs(t, b.s, url.Values{"token": {cc.AccessToken}}, svcID, svcSecret)
	revoked, err := b.s.app.rec.Revocations.List(t.Context())
	if err != nil || len(revoked) != 1 {
		t.Fatalf("store holds %v (%v), want one revocation", revoked, err)
	}
	var exp int64
	for _, e := range revoked {
		exp = e
	}
	_, claims := jwtSegments(t, cc.AccessToken)
	if want := int64(claims["exp"].(float64)) + int64(b.s.app.leeway()/time.Second); exp != want {
		t.Errorf("revocation kept until %d, want exp plus leeway %d", exp, want)
	}
}

// TestPeopleEndpointsStoreDown: with the store gone, what needs it answers
// 503 temporarily_unavailable (JSON at the token and introspection
// endpoints; at the authorization endpoint, the RFC 6749 §4.1.2.1 error
// sent back to the client), what does not keeps working (introspecting a
// JWT), and everything works again when the store returns.
func TestPeopleEndpointsStoreDown(t *testing.T) {
	fs := &flakyStore{Store: NewMemoryStore()}
	b, _ := newFlow(t, nil)
	fs.Store = b.s.app.store
	b.s.app.useStore(fs)
	verifier, challenge := pkce()
	code := b.code(challenge)
	tok := signedInTokens(t, b)

	fs.down.Store(true)
	assertOAuthError(t, b.exchange(code, verifier), http.StatusServiceUnavailable, errTemporarilyUnavailable)
	assertOAuthError(t, b.refresh(tok.RefreshToken), http.StatusServiceUnavailable, errTemporarilyUnavailable)
	r := httptest.NewRequest(http.MethodPost, "/oauth2/introspect", strings.NewReader(url.Values{"token": {tok.RefreshToken}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", basicAuth(webID, webSecret))
	rec, _ := serve(t, b.s, r)
	assertOAuthError(t, rec, http.StatusServiceUnavailable, errTemporarilyUnavailable)
	if _, m := introspectAs(t, b.s, webID, webSecret, tok.AccessToken); m["active"] != true {
		t.Errorf("JWT introspection needs no store, got %v", m)
	}
	rec = b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || loc.Query().Get("error") != errTemporarilyUnavailable || loc.Query().Get("state") == "" {
		t.Errorf("authorize with the store down: %d %v", rec.Code, loc)
	}

	fs.down.Store(false)
	if rec := b.exchange(code, verifier); rec.Code != http.StatusOK {
		t.Errorf("the code after the store returned: %d %s", rec.Code, rec.Body)
	}
	if rec := b.refresh(tok.RefreshToken); rec.Code != http.StatusOK {
		t.Errorf("the refresh token after the store returned: %d %s", rec.Code, rec.Body)
	}
}

// webTokens runs the confidential web app's flow and returns its tokens.
func webTokens(t *testing.T, b *browser) userTokens {
	t.Helper()
	u := b.approve(url.Values{"response_type": {"code"}, "client_id": {webID}}.Encode())
	rec := basicToken(t, b.s, webID, webSecret, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}})
	return decodeUserTokens(t, rec, rec.Body.Bytes())
}
