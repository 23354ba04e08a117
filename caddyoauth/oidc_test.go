package caddyoauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// The OpenID Connect provider (OpenID Connect Core 1.0, Discovery 1.0).

// oidcFlow is newFlow with openid and email allowed to both apps.
func oidcFlow(t *testing.T, mutate func(*App)) (*browser, *MemoryStore) {
	t.Helper()
	return newFlow(t, func(a *App) {
		for _, c := range a.Clients {
			if c.ID == spaID || c.ID == webID {
				c.Scopes = append(c.Scopes, "openid", "email")
				c.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
			}
		}
		if mutate != nil {
			mutate(a)
		}
	})
}

// oidcTokens is a token response with an ID token.
type oidcTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Scope        string `json:"scope"`
}

func decodeOIDC(t *testing.T, rec *httptest.ResponseRecorder) oidcTokens {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("token response %d: %s", rec.Code, rec.Body)
	}
	var o oidcTokens
	if err := json.Unmarshal(rec.Body.Bytes(), &o); err != nil {
		t.Fatal(err)
	}
	return o
}

// signInOIDC runs the SPA's flow with scope openid … and kv, and returns
// the tokens.
func signInOIDC(t *testing.T, b *browser, kv ...string) oidcTokens {
	t.Helper()
	verifier, challenge := pkce()
	kv = append([]string{"scope", "openid profile email notes:read"}, kv...)
	return decodeOIDC(t, b.exchange(b.code(challenge, kv...), verifier))
}

// verifyIDToken checks tok's signature against the server's published
// JWKS, as a relying party does (Core §3.1.3.7 step 6), and returns its
// header and claims.
func verifyIDToken(t *testing.T, b *browser, tok string) (map[string]any, jwt.MapClaims) {
	t.Helper()
	rec := b.do(http.MethodGet, "/oauth2/jwks", nil)
	var set struct{ Keys []oauthjwt.JWK }
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	parsed, err := jwt.NewParser(jwt.WithValidMethods(oauthjwt.SupportedAlgs)).ParseWithClaims(tok, claims, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		for _, j := range set.Keys {
			if j.Kid == kid {
				if j.Alg != tk.Method.Alg() {
					t.Errorf("JWKS key %s has alg %s, token %s", kid, j.Alg, tk.Method.Alg())
				}
				k, ok := b.s.app.keys.current.Load().Lookup(kid)
				if !ok {
					k, ok = b.s.app.idKeys.loaded().Lookup(kid)
				}
				if !ok {
					t.Fatalf("kid %s published but unknown", kid)
				}
				return k.Public, nil
			}
		}
		t.Fatalf("kid %q not in the JWKS %s", kid, rec.Body)
		return nil, nil
	})
	if err != nil {
		t.Fatalf("ID token does not verify: %v", err)
	}
	return parsed.Header, claims
}

// TestIDToken is the ID token table (Core §2, §3.1.3.6, §15.1): for each
// signing set-up, the claims a relying party checks.
func TestIDToken(t *testing.T) {
	tests := []struct {
		name    string
		appAlg  string // "" for the default ES256
		client  string // the SPA's id_token_signed_response_alg
		wantAlg string
	}{
		{"ES256 app: ID tokens RS256 by default (Core §15.1)", "", "", "RS256"},
		{"ES256 app, client asks for ES256 (Registration §2)", "", "ES256", "ES256"},
		{"RS256 app: one keyring", "RS256", "", "RS256"},
		{"EdDSA app, client asks for EdDSA", "EdDSA", "EdDSA", "EdDSA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := oidcFlow(t, func(a *App) {
				if tc.appAlg != "" {
					a.SigningKey = &SigningKeyConfig{Algorithm: tc.appAlg}
				}
				for _, c := range a.Clients {
					if c.ID == spaID {
						c.IDTokenSignedResponseAlg = tc.client
					}
				}
			})
			before := b.s.app.clock().Unix()
			tok := signInOIDC(t, b, "nonce", "n-0S6_WzA2Mj")
			if tok.IDToken == "" {
				t.Fatal("no id_token with scope openid (Core §3.1.3.3)")
			}
			hdr, c := verifyIDToken(t, b, tok.IDToken)
			if hdr["alg"] != tc.wantAlg {
				t.Errorf("alg = %v, want %s", hdr["alg"], tc.wantAlg)
			}
			if hdr["typ"] != "JWT" {
				t.Errorf("typ = %v, want JWT (never at+jwt)", hdr["typ"])
			}
			checks := []struct {
				claim string
				want  any
				why   string
			}{
				{"iss", testIssuer, "Core §2 iss: the issuer identifier"},
				{"sub", aliceUser, "Core §2 sub"},
				{"aud", spaID, "Core §2 aud: the client_id"},
				{"azp", spaID, "Core §2 azp: the authorized party"},
				{"nonce", "n-0S6_WzA2Mj", "Core §3.1.2.1 nonce: passed through unmodified"},
				{"at_hash", oauthjwt.HalfHash(tc.wantAlg, tok.AccessToken), "Core §3.1.3.6 at_hash: left half of the hash of the access token"},
				{"name", "Alice Example", "Core §5.4 profile"},
				{"email", "alice@example.com", "Core §5.4 email"},
			}
			for _, ck := range checks {
				if c[ck.claim] != ck.want {
					t.Errorf("%s = %v, want %v (%s)", ck.claim, c[ck.claim], ck.want, ck.why)
				}
			}
			for _, num := range []string{"exp", "iat", "auth_time"} {
				v, ok := c[num].(float64)
				if !ok || int64(v) < before {
					t.Errorf("%s = %v, want a time not before the flow (Core §2)", num, c[num])
				}
			}
			if c["exp"].(float64) <= c["iat"].(float64) {
				t.Errorf("exp %v not after iat %v", c["exp"], c["iat"])
			}
			if sid, _ := c["sid"].(string); sid == "" || strings.Contains(b.cookies[sessionCookie], sid) {
				t.Errorf("sid = %q: want the session's name, never its cookie", sid)
			}
			// Core §3.1.3.6: at_hash checked the way an RP does it.
			if c["at_hash"] == oauthjwt.HalfHash(tc.wantAlg, tok.AccessToken+"x") {
				t.Error("at_hash does not depend on the access token")
			}
		})
	}
}

// TestIDTokenNonce: Core §3.1.2.1 and §3.1.3.7 step 11: a nonce sent is
// echoed exactly; none sent, none in the token; and no ID token without
// the openid scope (a plain OAuth request).
func TestIDTokenNonce(t *testing.T) {
	tests := []struct {
		name    string
		kv      []string
		wantID  bool
		wantNon string
	}{
		{"nonce sent: echoed", []string{"nonce", "abc+/= ü"}, true, "abc+/= ü"},
		{"no nonce: no nonce claim (optional in the code flow)", nil, true, ""},
		{"no openid scope: no ID token (Core §3.1.2.1)", []string{"scope", "notes:read profile", "nonce", "x"}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := oidcFlow(t, nil)
			tok := signInOIDC(t, b, tc.kv...)
			if (tok.IDToken != "") != tc.wantID {
				t.Fatalf("id_token present = %v, want %v", tok.IDToken != "", tc.wantID)
			}
			if !tc.wantID {
				return
			}
			_, c := verifyIDToken(t, b, tok.IDToken)
			got, has := c["nonce"]
			if tc.wantNon == "" && has {
				t.Errorf("nonce = %v, want none", got)
			}
			if tc.wantNon != "" && got != tc.wantNon {
				t.Errorf("nonce = %v, want %q", got, tc.wantNon)
			}
		})
	}
}

// TestIDTokenIsNoAccessToken: RFC 9068 §4 and RFC 8725 §3.11: an ID token
// presented as a bearer token is refused, by the verifier oauth_scope uses
// for this issuer and by userinfo, even when signed with the access-token
// key (id_token_signed_response_alg = the app's alg).
func TestIDTokenIsNoAccessToken(t *testing.T) {
	for _, alg := range []string{"", "ES256"} {
		t.Run("alg="+alg, func(t *testing.T) {
			b, _ := oidcFlow(t, func(a *App) {
				for _, c := range a.Clients {
					c.IDTokenSignedResponseAlg = alg
				}
			})
			tok := signInOIDC(t, b)
			if _, err := b.s.app.Verifier().Verify(tok.IDToken); err == nil {
				t.Error("the access-token verifier accepted an ID token")
			}
			if _, err := b.s.app.Verifier().Verify(tok.AccessToken); err != nil {
				t.Errorf("the access token itself: %v", err)
			}
			r := httptest.NewRequest(http.MethodGet, "/oauth2/userinfo", nil)
			r.Header.Set("Authorization", "Bearer "+tok.IDToken)
			if rec, _ := serve(t, b.s, r); rec.Code != http.StatusUnauthorized {
				t.Errorf("userinfo with an ID token: %d, want 401", rec.Code)
			}
		})
	}
}

// TestIDTokenCodeReplay: a code redeemed twice gives no second ID token
// (Core §3.1.3.2: the code is used once; RFC 6749 §4.1.2).
func TestIDTokenCodeReplay(t *testing.T) {
	b, _ := oidcFlow(t, nil)
	verifier, challenge := pkce()
	code := b.code(challenge, "scope", "openid profile")
	if first := decodeOIDC(t, b.exchange(code, verifier)); first.IDToken == "" {
		t.Fatal("no ID token")
	}
	rec := b.exchange(code, verifier)
	assertOAuthError(t, rec, http.StatusBadRequest, errInvalidGrant)
	if strings.Contains(rec.Body.String(), "id_token") {
		t.Errorf("replay answered with an ID token: %s", rec.Body)
	}
}

// TestIDTokenRefresh: Core §12.2: a refresh of an openid grant returns an
// ID token with the same sub and auth_time (and the same sid: the family
// keeps the session it came from), iat new, and no nonce.
func TestIDTokenRefresh(t *testing.T) {
	b, ms := oidcFlow(t, nil)
	first := signInOIDC(t, b, "nonce", "n1")
	_, c1 := verifyIDToken(t, b, first.IDToken)
	b.advance(ms, 10*time.Minute)
	rec := b.refresh(first.RefreshToken)
	second := decodeOIDC(t, rec)
	if second.IDToken == "" {
		t.Fatalf("no ID token on refresh: %s", rec.Body)
	}
	_, c2 := verifyIDToken(t, b, second.IDToken)
	if c1["sid"] == nil || c1["sid"] == "" {
		t.Fatal("no sid in the first ID token")
	}
	for _, k := range []string{"sub", "auth_time", "iss", "aud", "sid"} {
		if c1[k] != c2[k] {
			t.Errorf("%s changed on refresh: %v → %v (Core §12.2)", k, c1[k], c2[k])
		}
	}
	if _, has := c2["nonce"]; has {
		t.Errorf("nonce in a refreshed ID token: %v (Core §12.2)", c2["nonce"])
	}
	if c2["iat"].(float64) <= c1["iat"].(float64) {
		t.Error("iat not renewed")
	}
	if c2["at_hash"] != oauthjwt.HalfHash("RS256", second.AccessToken) {
		t.Error("at_hash does not match the new access token")
	}
	// Narrowed without openid: no ID token.
	rec = b.refresh(second.RefreshToken, "scope", "notes:read")
	if o := decodeOIDC(t, rec); o.IDToken != "" {
		t.Error("ID token for a refresh without openid")
	}
}

// redirectParams returns the query of a redirect answer.
func redirectParams(t *testing.T, rec *httptest.ResponseRecorder) url.Values {
	t.Helper()
	if rec.Code != http.StatusFound && rec.Code != http.StatusSeeOther {
		t.Fatalf("want a redirect, got %d: %.300s", rec.Code, rec.Body)
	}
	u, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func isLoginPage(rec *httptest.ResponseRecorder) bool {
	return rec.Code == http.StatusOK && strings.Contains(rec.Body.String(), `name="password"`)
}

// TestPrompt is the prompt and max_age table (Core §3.1.2.1, §3.1.2.6).
func TestPrompt(t *testing.T) {
	_, challenge := pkce()
	webQuery := func(kv ...string) string {
		return authorizeQuery(challenge, append([]string{"client_id", webID, "redirect_uri", webRedirect, "scope", "openid profile"}, kv...)...)
	}
	tests := []struct {
		name     string
		signedIn bool
		remember bool // the web app's consent remembered
		query    string
		advance  time.Duration
		want     string // error code, "code", "login" or "consent"
	}{
		{"prompt=none without a session: login_required on the redirect (§3.1.2.6)", false, false, webQuery("prompt", "none"), 0, errLoginRequired},
		{"prompt=none, consent not given: consent_required", true, false, webQuery("prompt", "none"), 0, errConsentRequired},
		{"prompt=none, public client (always asks): consent_required", true, false, authorizeQuery(challenge, "scope", "openid", "prompt", "none"), 0, errConsentRequired},
		{"prompt=none, consent remembered: code without a page", true, true, webQuery("prompt", "none"), 0, "code"},
		{"prompt=none with login: invalid_request (§3.1.2.1)", true, true, webQuery("prompt", "none login"), 0, errInvalidRequest},
		{"unknown prompt value: invalid_request", true, true, webQuery("prompt", "bogus"), 0, errInvalidRequest},
		{"prompt=login: sign in again though signed in", true, true, webQuery("prompt", "login"), 0, "login"},
		{"prompt=consent: asks again though remembered", true, true, webQuery("prompt", "consent"), 0, "consent"},
		{"max_age=0 forces login (§3.1.2.1: as prompt=login)", true, true, webQuery("max_age", "0"), 0, "login"},
		{"max_age not reached: no login", true, true, webQuery("max_age", "3600"), 10 * time.Minute, "code"},
		{"max_age exceeded: login", true, true, webQuery("max_age", "300"), 10 * time.Minute, "login"},
		{"max_age exceeded with prompt=none: login_required", true, true, webQuery("max_age", "300", "prompt", "none"), 10 * time.Minute, errLoginRequired},
		{"max_age not a number: invalid_request", true, true, webQuery("max_age", "-1"), 0, errInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, ms := oidcFlow(t, nil)
			if tc.signedIn {
				q := webQuery()
				rec := b.do(http.MethodGet, "/oauth2/authorize?"+q, nil)
				rec = b.signIn(rec, aliceUser, alicePass)
				rec = b.do(http.MethodGet, rec.Header().Get("Location"), nil)
				f := fields(rec.Body.String())
				f.Set("decision", "allow")
				f.Del("remember") // fields reads the checkbox as a hidden input
				if tc.remember {
					f.Set("remember", "yes")
				}
				if rec = b.do(http.MethodPost, "/oauth2/consent", f); redirectParams(t, rec).Get("code") == "" {
					t.Fatal("setup: no code")
				}
			}
			if tc.advance > 0 {
				b.advance(ms, tc.advance)
			}
			rec := b.do(http.MethodGet, "/oauth2/authorize?"+tc.query, nil)
			switch tc.want {
			case "login":
				if !isLoginPage(rec) {
					t.Fatalf("want the login page, got %d %.300s", rec.Code, rec.Body)
				}
				// Signing in answers the request without asking again.
				rec = b.signIn(rec, aliceUser, alicePass)
				rec = b.do(http.MethodGet, rec.Header().Get("Location"), nil)
				if isLoginPage(rec) {
					t.Fatal("login page shown again after signing in")
				}
			case "consent":
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `value="allow"`) {
					t.Fatalf("want the consent page, got %d %.300s", rec.Code, rec.Body)
				}
			case "code":
				if p := redirectParams(t, rec); p.Get("code") == "" {
					t.Fatalf("want a code, got %v", p)
				}
			default:
				p := redirectParams(t, rec)
				if p.Get("error") != tc.want || p.Get("state") == "" || p.Get("iss") != testIssuer {
					t.Fatalf("redirect %v, want error=%s with state and iss", p, tc.want)
				}
			}
		})
	}
}

// TestMaxAgeZeroAuthTime: Core §3.1.2.1: after max_age=0 the person signs
// in again and the ID token's auth_time is that new sign-in.
func TestMaxAgeZeroAuthTime(t *testing.T) {
	b, ms := oidcFlow(t, nil)
	first := signInOIDC(t, b)
	_, c1 := verifyIDToken(t, b, first.IDToken)
	b.advance(ms, time.Minute)
	second := signInOIDC(t, b, "max_age", "0") // approve() signs in when asked
	_, c2 := verifyIDToken(t, b, second.IDToken)
	if c2["auth_time"].(float64) <= c1["auth_time"].(float64) {
		t.Errorf("auth_time %v not after %v: max_age=0 did not force a sign-in", c2["auth_time"], c1["auth_time"])
	}
}

// TestLoginHint: Core §3.1.2.1 login_hint prefills the username.
func TestLoginHint(t *testing.T) {
	b, _ := oidcFlow(t, nil)
	_, challenge := pkce()
	rec := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge, "scope", "openid", "login_hint", "bob@example.com"), nil)
	if !isLoginPage(rec) || !strings.Contains(rec.Body.String(), `value="bob@example.com"`) {
		t.Fatalf("login page without the hint: %.500s", rec.Body)
	}
}

// TestIDTokenHint: Core §3.1.2.1 id_token_hint: an ID token this server
// issued to this client is accepted (with prompt=none, a code for the
// same person); one of another client, or not an ID token, is refused.
func TestIDTokenHint(t *testing.T) {
	b, _ := oidcFlow(t, nil)
	spaTok := signInOIDC(t, b)
	// The web app's ID token, through its own flow.
	_, challenge := pkce()
	u := b.approve(authorizeQuery(challenge, "client_id", webID, "redirect_uri", webRedirect, "scope", "openid"))
	verifier, _ := pkce()
	rec := basicToken(t, b.s, webID, webSecret, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {webRedirect}, "code_verifier": {verifier}})
	webTok := decodeOIDC(t, rec)

	tests := []struct {
		name, hint, prompt, want string
	}{
		{"own ID token, prompt=none, public client: past the hint, consent_required", spaTok.IDToken, "none", errConsentRequired},
		{"own ID token without prompt: consent page", spaTok.IDToken, "", "consent"},
		{"ID token of another client: refused", webTok.IDToken, "none", errInvalidRequest},
		{"an access token is no ID token: refused", spaTok.AccessToken, "none", errInvalidRequest},
		{"garbage: refused", "a.b.c", "none", errInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge, "scope", "openid", "id_token_hint", tc.hint, "prompt", tc.prompt), nil)
			if tc.want == "consent" {
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `value="allow"`) {
					t.Fatalf("want the consent page, got %d", rec.Code)
				}
				return
			}
			if p := redirectParams(t, rec); p.Get("error") != tc.want {
				t.Fatalf("redirect %v, want error=%s", p, tc.want)
			}
		})
	}
	// A remembered consent of the web app: its own hint with prompt=none
	// is a silent sign-in.
	rec = b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge, "client_id", webID, "redirect_uri", webRedirect, "scope", "openid", "prompt", "consent"), nil)
	f := fields(rec.Body.String())
	f.Set("decision", "allow")
	f.Set("remember", "yes")
	b.do(http.MethodPost, "/oauth2/consent", f)
	rec = b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge, "client_id", webID, "redirect_uri", webRedirect, "scope", "openid", "prompt", "none", "id_token_hint", webTok.IDToken), nil)
	if p := redirectParams(t, rec); p.Get("code") == "" {
		t.Fatalf("silent sign-in with the client's own hint: %v", p)
	}
}

// TestOpenIDRequestParameters: Core §3.1.2.6 and §5.5, §6: what is not
// offered is refused with the error Core names, or ignored where Core
// allows it.
func TestOpenIDRequestParameters(t *testing.T) {
	b, _ := oidcFlow(t, nil)
	_, challenge := pkce()
	tests := []struct {
		name string
		kv   []string
		want string // error, or "" for the login page
	}{
		{"request object: request_not_supported (§6.1)", []string{"request", "eyJhbGciOiJub25lIn0.e30."}, errRequestNotSupported},
		{"request_uri: request_uri_not_supported (§6.2)", []string{"request_uri", "https://rp.example/req"}, errRequestURINotSupp},
		{"registration: registration_not_supported (§7.2.1)", []string{"registration", "{}"}, errRegistrationNotSupp},
		{"hybrid response_type: unsupported_response_type (§3.3)", []string{"response_type", "code id_token"}, errUnsupportedResponseType},
		{"implicit id_token: unsupported_response_type (§3.2)", []string{"response_type", "id_token"}, errUnsupportedResponseType},
		{"claims parameter: ignored (§5.5, claims_parameter_supported false)", []string{"claims", `{"id_token":{"email":null}}`}, ""},
		{"display, ui_locales, acr_values: ignored", []string{"display", "popup", "ui_locales", "fr", "acr_values", "urn:x"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge, append([]string{"scope", "openid"}, tc.kv...)...), nil)
			if tc.want == "" {
				if !isLoginPage(rec) {
					t.Fatalf("want the login page, got %d", rec.Code)
				}
				return
			}
			if p := redirectParams(t, rec); p.Get("error") != tc.want {
				t.Fatalf("redirect %v, want error=%s", p, tc.want)
			}
		})
	}
}

// TestOpenIDDiscovery: Discovery §4: the document at the issuer plus
// /.well-known/openid-configuration, with the members of §3, agreeing
// with the RFC 8414 document on every member they share.
func TestOpenIDDiscovery(t *testing.T) {
	for _, issuer := range []string{testIssuer, "https://login.example/tenant-a"} {
		t.Run(issuer, func(t *testing.T) {
			cfg := flowConfig(t)
			cfg.Issuer = issuer
			cfg.Clients[2].Scopes = append(cfg.Clients[2].Scopes, "openid")
			s := newTestServer(t, cfg)
			u, _ := url.Parse(issuer)
			path := strings.TrimSuffix(u.Path, "/") + "/.well-known/openid-configuration"
			oidc := fetchMetadata(t, s, path)
			oauth := fetchMetadata(t, s, metadataPath(issuer))
			for k, v := range oauth {
				if k == "scopes_supported" {
					continue
				}
				a, _ := json.Marshal(v)
				b, _ := json.Marshal(oidc[k])
				if string(a) != string(b) {
					t.Errorf("%s: RFC 8414 %s, Discovery %s", k, a, b)
				}
			}
			if oidc["issuer"] != issuer {
				t.Errorf("issuer = %v, want %s (Discovery §4.3: identical)", oidc["issuer"], issuer)
			}
			scopes := stringList(t, oidc, "scopes_supported")
			for _, sc := range append(stringList(t, oauth, "scopes_supported"), "openid", "profile", "email") {
				if !slices.Contains(scopes, sc) {
					t.Errorf("scopes_supported %v lacks %s", scopes, sc)
				}
			}
			want := map[string]string{
				"subject_types_supported":               `["public"]`,
				"id_token_signing_alg_values_supported": `["RS256","ES256"]`,
				"response_types_supported":              `["code"]`,
				"claims_parameter_supported":            `false`,
				"request_parameter_supported":           `false`,
				"request_uri_parameter_supported":       `false`,
				"userinfo_endpoint":                     `"` + strings.TrimSuffix(issuer, "/") + `/oauth2/userinfo"`,
			}
			for k, w := range want {
				got, _ := json.Marshal(oidc[k])
				if string(got) != w {
					t.Errorf("%s = %s, want %s (Discovery §3)", k, got, w)
				}
			}
			for _, c := range []string{"sub", "iss", "auth_time", "nonce", "email", "name", "department"} {
				if !slices.Contains(stringList(t, oidc, "claims_supported"), c) {
					t.Errorf("claims_supported lacks %s", c)
				}
			}
		})
	}
}

// TestUserinfoOpenID: Core §5.3: a token with openid gets the claims its
// scopes allow and the ID token's sub; without openid, the userinfo
// scope (profile by default) keeps giving every claim, as before.
func TestUserinfoOpenID(t *testing.T) {
	b, _ := oidcFlow(t, nil)
	get := func(tok string) (int, map[string]any) {
		r := httptest.NewRequest(http.MethodGet, "/oauth2/userinfo", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		rec, _ := serve(t, b.s, r)
		var m map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &m)
		return rec.Code, m
	}
	tests := []struct {
		name     string
		scope    string
		status   int
		want     []string
		wantNone []string
	}{
		{"openid only: sub alone (§5.4)", "openid", 200, []string{"sub"}, []string{"name", "email", "department"}},
		{"openid email: email, no profile", "openid email", 200, []string{"sub", "email"}, []string{"name", "department"}},
		{"openid profile: name and the free-form claims, no email", "openid profile", 200, []string{"sub", "name", "preferred_username", "department"}, []string{"email"}},
		{"profile without openid: everything, as before OpenID Connect", "profile", 200, []string{"sub", "name", "email", "department"}, nil},
		{"neither openid nor the userinfo scope: 403", "notes:read", 403, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := signInOIDC(t, b, "scope", tc.scope)
			status, m := get(tok.AccessToken)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, m)
			}
			for _, k := range tc.want {
				if _, ok := m[k]; !ok {
					t.Errorf("%s missing: %v", k, m)
				}
			}
			for _, k := range tc.wantNone {
				if _, ok := m[k]; ok {
					t.Errorf("%s present: %v", k, m)
				}
			}
			if tok.IDToken != "" {
				_, c := verifyIDToken(t, b, tok.IDToken)
				if c["sub"] != m["sub"] {
					t.Errorf("userinfo sub %v != ID token sub %v (Core §5.3.2)", m["sub"], c["sub"])
				}
			}
		})
	}
}

// TestIDTokenAlgConfig: id_token_signed_response_alg is RS256 or the
// app's algorithm; the RS256 key is published with its alg, and kept in
// the store like the access-token keyring.
func TestIDTokenAlgConfig(t *testing.T) {
	cfg := flowConfig(t)
	cfg.Clients[2].IDTokenSignedResponseAlg = "PS256"
	cfg.store = NewMemoryStore()
	err := cfg.provision(t.Context(), newStorage(t), zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "id_token_signed_response_alg") {
		t.Fatalf("PS256 with an ES256 key: %v, want an error naming id_token_signed_response_alg", err)
	}

	ms := NewMemoryStore()
	storage := newStorage(t)
	mk := func() *App {
		cfg := flowConfig(t)
		cfg.Clients[2].Scopes = append(cfg.Clients[2].Scopes, "openid")
		cfg.store = ms
		return provisionApp(t, cfg, storage)
	}
	a1, a2 := mk(), mk()
	k1, k2 := a1.idKeys.loaded(), a2.idKeys.loaded()
	if k1 == nil || k2 == nil || k1.Active().ID != k2.Active().ID || k1.Active().Alg != "RS256" {
		t.Fatal("the RS256 ID token key is not loaded at provision, or not shared through the store")
	}
	s := newServer(t, a1, "")
	rec, _ := serve(t, s, httptest.NewRequest(http.MethodGet, "/oauth2/jwks", nil))
	var set struct{ Keys []oauthjwt.JWK }
	_ = json.Unmarshal(rec.Body.Bytes(), &set)
	algs := map[string]bool{}
	for _, k := range set.Keys {
		algs[k.Alg] = true
	}
	if !algs["RS256"] || !algs["ES256"] || len(set.Keys) != 2 {
		t.Errorf("JWKS %s: want the ES256 and the RS256 key, each with alg", rec.Body)
	}
}

// TestIDTokenKeyRotation: rotating the signing key (admin API, POST
// /oauth/keys/rotate) rotates the RS256 ID-token key too; the old one
// stays published, so ID tokens it signed still verify.
func TestIDTokenKeyRotation(t *testing.T) {
	b, _ := oidcFlow(t, nil)
	before := signInOIDC(t, b)
	old := b.s.app.idKeys.loaded().Active().ID
	if _, err := b.s.app.RotateSigningKey(t.Context()); err != nil {
		t.Fatal(err)
	}
	kr := b.s.app.idKeys.loaded()
	if kr.Active().ID == old {
		t.Fatal("the ID token key did not rotate")
	}
	if _, ok := kr.Lookup(old); !ok {
		t.Fatal("the replaced ID token key is gone before its tokens expired")
	}
	verifyIDToken(t, b, before.IDToken) // signed with the old key
	after := signInOIDC(t, b)
	if hdr, _ := verifyIDToken(t, b, after.IDToken); hdr["kid"] != kr.Active().ID {
		t.Errorf("new ID token kid %v, want %s", hdr["kid"], kr.Active().ID)
	}
}

// TestIDTokenAlgCaddyfile: the Caddyfile option becomes the JSON field of
// ClientSettings, and the app provisions with it.
func TestIDTokenAlgCaddyfile(t *testing.T) {
	input := `oauth {
		issuer https://localhost:8443
		client app {
			public
			redirect_uris https://app.example/cb
			scopes openid profile
			id_token_signed_response_alg ES256
		}
	}`
	v, err := parseOAuthOption(caddyfile.NewTestDispenser(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := v.(httpcaddyfile.App).Value
	if !strings.Contains(string(raw), `"id_token_signed_response_alg":"ES256"`) {
		t.Fatalf("JSON %s lacks id_token_signed_response_alg", raw)
	}
	var a App
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatal(err)
	}
	a.store = NewMemoryStore()
	provisionApp(t, &a, newStorage(t))
	if alg := a.clients["app"].idTokenAlg(); alg != "ES256" {
		t.Errorf("idTokenAlg = %s", alg)
	}
}

// TestIDTokenHintOtherPerson: Core §3.1.2.1: an id_token_hint naming
// another person than the signed-in one is not answered silently:
// prompt=none gets login_required; without it, the login page, the
// username filled in with the hint's sub.
func TestIDTokenHintOtherPerson(t *testing.T) {
	b, _ := oidcFlow(t, func(a *App) {
		a.Users = append(a.Users, &User{Username: "bob", PasswordHash: bcryptHash(t, "bob password 123")})
	})
	aliceTok := signInOIDC(t, b) // alice's ID token for the SPA
	bob := &browser{t: t, s: b.s, cookies: map[string]string{}}
	_, challenge := pkce()
	rec := bob.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge, "scope", "openid"), nil)
	if rec = bob.signIn(rec, "bob", "bob password 123"); rec.Code != http.StatusSeeOther {
		t.Fatalf("bob's sign-in: %d", rec.Code)
	}
	rec = bob.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge, "scope", "openid", "prompt", "none", "id_token_hint", aliceTok.IDToken), nil)
	if p := redirectParams(t, rec); p.Get("error") != errLoginRequired {
		t.Fatalf("prompt=none with alice's hint in bob's session: %v, want login_required", p)
	}
	rec = bob.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge, "scope", "openid", "id_token_hint", aliceTok.IDToken), nil)
	if !isLoginPage(rec) || !strings.Contains(rec.Body.String(), `value="alice"`) {
		t.Fatalf("want the login page for alice, got %d", rec.Code)
	}
}

// webSignIn runs the web app's flow (openid) in b and returns its tokens.
func webSignIn(t *testing.T, b *browser) oidcTokens {
	t.Helper()
	verifier, challenge := pkce()
	u := b.approve(authorizeQuery(challenge, "client_id", webID, "redirect_uri", webRedirect, "scope", "openid"))
	rec := basicToken(t, b.s, webID, webSecret, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {webRedirect}, "code_verifier": {verifier}})
	return decodeOIDC(t, rec)
}

// TestEndSession is the RP-Initiated Logout 1.0 table: the session ends
// without a question only for an id_token_hint of its person; the person
// goes back only to a registered post_logout_redirect_uri, with state.
func TestEndSession(t *testing.T) {
	const bye = "https://web.example/bye?x=1"
	tests := []struct {
		name     string
		params   func(tok oidcTokens) url.Values
		method   string
		status   int
		location string // "" when not a redirect
		ended    bool
	}{
		{"own ID token, registered URI, state (§2, §3): signed out, sent back with state", func(tok oidcTokens) url.Values {
			return url.Values{"id_token_hint": {tok.IDToken}, "post_logout_redirect_uri": {bye}, "state": {"s 1"}}
		}, http.MethodGet, http.StatusSeeOther, "https://web.example/bye?state=s+1&x=1", true},
		{"POST works too (§2)", func(tok oidcTokens) url.Values {
			return url.Values{"id_token_hint": {tok.IDToken}, "client_id": {webID}, "post_logout_redirect_uri": {bye}}
		}, http.MethodPost, http.StatusSeeOther, bye, true},
		{"own ID token, no URI: the signed-out page", func(tok oidcTokens) url.Values {
			return url.Values{"id_token_hint": {tok.IDToken}}
		}, http.MethodGet, http.StatusOK, "", true},
		{"no id_token_hint: the person decides on the account page", func(oidcTokens) url.Values {
			return url.Values{"client_id": {webID}, "post_logout_redirect_uri": {bye}}
		}, http.MethodGet, http.StatusSeeOther, "/oauth2/account", false},
		{"unregistered URI: refused, no redirect (§3)", func(tok oidcTokens) url.Values {
			return url.Values{"id_token_hint": {tok.IDToken}, "post_logout_redirect_uri": {"https://evil.example/"}}
		}, http.MethodGet, http.StatusBadRequest, "", false},
		{"another client's URI for this hint: refused", func(tok oidcTokens) url.Values {
			return url.Values{"id_token_hint": {tok.IDToken}, "client_id": {spaID}, "post_logout_redirect_uri": {bye}}
		}, http.MethodGet, http.StatusBadRequest, "", false},
		{"URI without a client: refused", func(oidcTokens) url.Values {
			return url.Values{"post_logout_redirect_uri": {bye}}
		}, http.MethodGet, http.StatusBadRequest, "", false},
		{"an access token as hint: refused", func(tok oidcTokens) url.Values {
			return url.Values{"id_token_hint": {tok.AccessToken}}
		}, http.MethodGet, http.StatusBadRequest, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := oidcFlow(t, func(a *App) {
				a.Clients[3].PostLogoutRedirectURIs = []string{bye}
			})
			tok := webSignIn(t, b)
			q := tc.params(tok)
			var rec *httptest.ResponseRecorder
			if tc.method == http.MethodPost {
				rec = b.do(http.MethodPost, "/oauth2/end_session", q)
			} else {
				rec = b.do(http.MethodGet, "/oauth2/end_session?"+q.Encode(), nil)
			}
			if rec.Code != tc.status || rec.Header().Get("Location") != tc.location {
				t.Fatalf("%d → %q, want %d → %q: %.300s", rec.Code, rec.Header().Get("Location"), tc.status, tc.location, rec.Body)
			}
			_, challenge := pkce()
			rec = b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge, "scope", "openid"), nil)
			if isLoginPage(rec) != tc.ended {
				t.Errorf("session ended = %v, want %v", isLoginPage(rec), tc.ended)
			}
		})
	}
	// Discovery names the endpoint; a client without the code grant
	// cannot have post-logout URIs.
	b, _ := oidcFlow(t, nil)
	if m := fetchMetadata(t, b.s, "/.well-known/openid-configuration"); m["end_session_endpoint"] != testIssuer+"/oauth2/end_session" {
		t.Errorf("end_session_endpoint = %v", m["end_session_endpoint"])
	}
	cfg := flowConfig(t)
	cfg.Clients[0].PostLogoutRedirectURIs = []string{bye}
	cfg.store = NewMemoryStore()
	if err := cfg.provision(t.Context(), newStorage(t), zap.NewNop()); err == nil || !strings.Contains(err.Error(), "post_logout_redirect_uris") {
		t.Errorf("post_logout_redirect_uris on a client_credentials client: %v", err)
	}
}
