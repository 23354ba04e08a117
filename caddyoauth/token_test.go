package caddyoauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestTokenClientCredentialsSuccess: the client credentials grant (RFC 6749
// §4.4) with each client authentication method (§2.3.1) gives a §5.1
// response whose token the app's own verifier accepts.
func TestTokenClientCredentialsSuccess(t *testing.T) {
	s := newTestServer(t, nil)
	tests := []struct {
		name string
		req  func() *http.Request
	}{
		{"client_secret_basic (RFC 6749 §2.3.1)", func() *http.Request {
			r := tokenRequest(ccForm().Encode())
			r.Header.Set("Authorization", basicAuth(svcID, svcSecret))
			return r
		}},
		{"client_secret_post (RFC 6749 §2.3.1)", func() *http.Request {
			return tokenRequest(ccForm("client_id", svcID, "client_secret", svcSecret).Encode())
		}},
		{"basic with the same client_id in the body (RFC 6749 §3.2.1)", func() *http.Request {
			r := tokenRequest(ccForm("client_id", svcID).Encode())
			r.Header.Set("Authorization", basicAuth(svcID, svcSecret))
			return r
		}},
		{"auth scheme is case-insensitive (RFC 9110 §11.1)", func() *http.Request {
			r := tokenRequest(ccForm().Encode())
			r.Header.Set("Authorization", "bAsIc"+strings.TrimPrefix(basicAuth(svcID, svcSecret), "Basic"))
			return r
		}},
		{"media type with charset parameter (RFC 6749 Appendix B)", func() *http.Request {
			r := tokenRequest(ccForm("client_id", svcID, "client_secret", svcSecret).Encode())
			r.Header.Set("Content-Type", "Application/X-WWW-Form-Urlencoded; charset=UTF-8")
			return r
		}},
		{"unrecognized parameters are ignored (RFC 6749 §3.2)", func() *http.Request {
			return tokenRequest(ccForm("client_id", svcID, "client_secret", svcSecret, "resource_hint", "x", "foo", "").Encode())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, next := serve(t, s, tt.req())
			if next {
				t.Fatal("token request passed to next handler")
			}
			body := decodeTokenResponse(t, rec)
			if body.ExpiresIn != int64(DefaultAccessTokenTTL/time.Second) {
				t.Errorf("expires_in = %d, want %d", body.ExpiresIn, int64(DefaultAccessTokenTTL/time.Second))
			}
			if body.Scope != "user:read user:write" {
				t.Errorf("scope = %q, want the client's scopes", body.Scope)
			}
			c, err := s.app.Verifier().Verify(body.AccessToken)
			if err != nil {
				t.Fatalf("issued token does not verify: %v", err)
			}
			if c.ClientID != svcID {
				t.Errorf("client_id claim = %q, want %q", c.ClientID, svcID)
			}
		})
	}
}

// TestTokenClaimsRFC9068 checks the JWT access-token profile: header typ
// at+jwt (RFC 9068 §2.1) and the claims of §2.2, with sub = client_id for
// the client credentials grant (§2.2 "In cases of access tokens obtained
// through grants where no resource owner is involved, such as the client
// credentials grant, the value of sub SHOULD correspond to an identifier the
// authorization server uses to indicate the client application").
func TestTokenClaimsRFC9068(t *testing.T) {
	cfg := baseConfig()
	cfg.Audience = "https://api.example"
	cfg.Clients[1].AccessTokenTTL = caddy.Duration(5 * time.Minute)
	s := newTestServer(t, cfg)

	tests := []struct {
		name, id, secret string
		ttl              time.Duration
		scope            string
	}{
		{"app default ttl", svcID, svcSecret, time.Hour, "user:read user:write"},
		{"client ttl override", readerID, readerSecret, 5 * time.Minute, "user:read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now().Unix()
			body := decodeTokenResponse(t, basicToken(t, s, tt.id, tt.secret, ccForm()))
			after := time.Now().Unix()
			if body.ExpiresIn != int64(tt.ttl/time.Second) {
				t.Errorf("expires_in = %d, want %d", body.ExpiresIn, int64(tt.ttl/time.Second))
			}

			hdr, payload := jwtSegments(t, body.AccessToken)
			if hdr["typ"] != "at+jwt" {
				t.Errorf("typ = %v, want at+jwt (RFC 9068 §2.1)", hdr["typ"])
			}
			if hdr["alg"] != "ES256" {
				t.Errorf("alg = %v, want the default ES256", hdr["alg"])
			}
			if hdr["kid"] != s.app.Keyring().Active().ID {
				t.Errorf("kid = %v, want the active key %s", hdr["kid"], s.app.Keyring().Active().ID)
			}
			for _, name := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id"} {
				if _, ok := payload[name]; !ok {
					t.Errorf("claim %s missing (RFC 9068 §2.2 REQUIRED)", name)
				}
			}
			if _, ok := payload["scope"].(string); !ok {
				t.Errorf("scope claim = %#v, want a space-delimited string (RFC 9068 §2.2.3)", payload["scope"])
			}

			c, err := s.app.Verifier().Verify(body.AccessToken)
			if err != nil {
				t.Fatalf("token does not verify: %v", err)
			}
			if c.Issuer != testIssuer {
				t.Errorf("iss = %q, want %q", c.Issuer, testIssuer)
			}
			if c.Subject != tt.id {
				t.Errorf("sub = %q, want the client_id %q (RFC 9068 §2.2)", c.Subject, tt.id)
			}
			if c.ClientID != tt.id {
				t.Errorf("client_id = %q, want %q", c.ClientID, tt.id)
			}
			if !c.HasAudience("https://api.example") || len(c.Audience) != 1 {
				t.Errorf("aud = %v, want [https://api.example]", c.Audience)
			}
			if c.ScopeText() != tt.scope || c.ScopeText() != body.Scope {
				t.Errorf("scope claim = %q, response scope = %q, want %q", c.ScopeText(), body.Scope, tt.scope)
			}
			iat, exp := c.IssuedAt.Unix(), c.ExpiresAt.Unix()
			if iat < before || iat > after {
				t.Errorf("iat = %d, not within [%d, %d]", iat, before, after)
			}
			if exp-iat != body.ExpiresIn {
				t.Errorf("exp - iat = %d, want expires_in %d", exp-iat, body.ExpiresIn)
			}
			if len(c.ID) < 16 {
				t.Errorf("jti = %q, too short to be unique (RFC 9068 §2.2, RFC 7519 §4.1.7)", c.ID)
			}
		})
	}

	t.Run("jti differs between tokens (RFC 7519 §4.1.7)", func(t *testing.T) {
		seen := map[string]bool{}
		for range 5 {
			body := decodeTokenResponse(t, basicToken(t, s, svcID, svcSecret, ccForm()))
			_, payload := jwtSegments(t, body.AccessToken)
			jti, _ := payload["jti"].(string)
			if seen[jti] {
				t.Fatalf("jti %q issued twice", jti)
			}
			seen[jti] = true
		}
	})

	t.Run("default audience is the issuer (RFC 9068 §3)", func(t *testing.T) {
		s := newTestServer(t, nil)
		body := decodeTokenResponse(t, basicToken(t, s, svcID, svcSecret, ccForm()))
		c, err := s.app.Verifier().Verify(body.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if !c.HasAudience(testIssuer) {
			t.Errorf("aud = %v, want %s", c.Audience, testIssuer)
		}
	})

	t.Run("another app's verifier refuses the token", func(t *testing.T) {
		body := decodeTokenResponse(t, basicToken(t, s, svcID, svcSecret, ccForm()))
		other := newApp(t, nil)
		if _, err := other.Verifier().Verify(body.AccessToken); err == nil {
			t.Fatal("a token signed with another keyring verified")
		}
	})
}

// TestTokenScope applies RFC 6749 §3.3: no scope gets the client's
// registered scopes; a requested scope must be a subset of them and is
// granted exactly; anything else is invalid_scope (§5.2).
func TestTokenScope(t *testing.T) {
	s := newTestServer(t, nil)
	tests := []struct {
		name      string
		form      url.Values
		wantScope []string // nil: an invalid_scope error is expected
	}{
		{"omitted gets all the client's scopes (§3.3)", ccForm(), []string{"user:read", "user:write"}},
		{"empty value is as if omitted (§3.2)", ccForm("scope", ""), []string{"user:read", "user:write"}},
		{"subset is granted exactly (§3.3)", ccForm("scope", "user:read"), []string{"user:read"}},
		{"other subset is granted exactly (§3.3)", ccForm("scope", "user:write"), []string{"user:write"}},
		{"both, any order (§3.3 order does not matter)", ccForm("scope", "user:write user:read"), []string{"user:read", "user:write"}},
		{"duplicates collapse (§3.3)", ccForm("scope", "user:read user:read"), []string{"user:read"}},
		{"not allowed for the client → invalid_scope (§5.2)", ccForm("scope", "admin"), nil},
		{"one of several not allowed → invalid_scope (§5.2)", ccForm("scope", "user:read admin"), nil},
		{"prefix of an allowed scope is another scope (§3.3)", ccForm("scope", "user"), nil},
		{"case matters (§3.3 case-sensitive)", ccForm("scope", "USER:READ"), nil},
		{"malformed: double space (§3.3)", ccForm("scope", "user:read  user:write"), nil},
		{"malformed: leading space (§3.3)", ccForm("scope", " user:read"), nil},
		{"malformed: tab is not a delimiter (§3.3)", ccForm("scope", "user:read\tuser:write"), nil},
		{"malformed: quote is not NQCHAR (§3.3)", ccForm("scope", `user"read`), nil},
		{"malformed: backslash is not NQCHAR (§3.3)", ccForm("scope", `user\read`), nil},
		{"malformed: non-ASCII (§3.3)", ccForm("scope", "usér:read"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := basicToken(t, s, svcID, svcSecret, tt.form)
			if tt.wantScope == nil {
				assertOAuthError(t, rec, http.StatusBadRequest, "invalid_scope")
				return
			}
			body := decodeTokenResponse(t, rec)
			got := strings.Split(body.Scope, " ")
			slices.Sort(got)
			if !slices.Equal(got, tt.wantScope) {
				t.Errorf("granted scope %q, want %q", body.Scope, tt.wantScope)
			}
			c, err := s.app.Verifier().Verify(body.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			claim := slices.Clone(c.Scopes())
			slices.Sort(claim)
			if !slices.Equal(claim, tt.wantScope) {
				t.Errorf("scope claim %q, want %q", c.Scopes(), tt.wantScope)
			}
		})
	}

	t.Run("reader cannot get user:write (§3.3)", func(t *testing.T) {
		assertOAuthError(t, basicToken(t, s, readerID, readerSecret, ccForm("scope", "user:write")), http.StatusBadRequest, "invalid_scope")
	})
}

// TestTokenRequestErrors: each malformed or unauthenticated token request
// gets the RFC 6749 §5.2 error it calls for, with no-store headers and an
// error body restricted to the §5.2 character set.
func TestTokenRequestErrors(t *testing.T) {
	s := newTestServer(t, nil)
	const form = "application/x-www-form-urlencoded"
	post := "client_id=" + svcID + "&client_secret=" + svcSecret
	tests := []struct {
		name        string
		method      string
		target      string // default /oauth2/token
		contentType string
		body        string
		authz       []string
		status      int
		code        string
		allow       string // Allow header expected
	}{
		{name: "GET (§3.2 MUST use POST)", method: "GET", status: 405, code: "invalid_request", allow: "POST"},
		{name: "PUT (§3.2 MUST use POST)", method: "PUT", contentType: form, body: post + "&grant_type=client_credentials", status: 405, code: "invalid_request", allow: "POST"},
		{name: "HEAD (§3.2 MUST use POST)", method: "HEAD", status: 405, code: "invalid_request", allow: "POST"},
		{name: "no Content-Type (Appendix B)", body: post + "&grant_type=client_credentials", status: 400, code: "invalid_request"},
		{name: "JSON body (Appendix B)", contentType: "application/json", body: `{"grant_type":"client_credentials"}`, status: 400, code: "invalid_request"},
		{name: "text/plain (Appendix B)", contentType: "text/plain", body: post + "&grant_type=client_credentials", status: 400, code: "invalid_request"},
		{name: "multipart (Appendix B)", contentType: "multipart/form-data; boundary=x", body: "--x--", status: 400, code: "invalid_request"},
		{name: "missing grant_type (§4.4.2 REQUIRED)", contentType: form, body: post, status: 400, code: "invalid_request"},
		{name: "empty grant_type is omitted (§3.2)", contentType: form, body: post + "&grant_type=", status: 400, code: "invalid_request"},
		{name: "unknown grant_type (§5.2 unsupported_grant_type)", contentType: form, body: post + "&grant_type=urn:example:nope", status: 400, code: "unsupported_grant_type"},
		{name: "password grant not offered (§5.2)", contentType: form, body: post + "&grant_type=password&username=a&password=b", status: 400, code: "unsupported_grant_type"},
		{name: "grant_type is case-sensitive (§5.2)", contentType: form, body: post + "&grant_type=Client_Credentials", status: 400, code: "unsupported_grant_type"},
		{name: "repeated grant_type (§3.2)", contentType: form, body: post + "&grant_type=client_credentials&grant_type=client_credentials", status: 400, code: "invalid_request"},
		{name: "repeated scope (§3.2)", contentType: form, body: post + "&grant_type=client_credentials&scope=user:read&scope=user:write", status: 400, code: "invalid_request"},
		{name: "repeated client_id (§3.2)", contentType: form, body: post + "&client_id=" + svcID + "&grant_type=client_credentials", status: 400, code: "invalid_request"},
		{name: "repeated parameter with an empty value (§3.2)", contentType: form, body: post + "&grant_type=client_credentials&scope=&scope=user:read", status: 400, code: "invalid_request"},
		{name: "malformed percent-encoding (Appendix B)", contentType: form, body: post + "&grant_type=client_credentials&x=%zz", status: 400, code: "invalid_request"},
		{name: "basic and client_secret both (§2.3)", contentType: form, body: "grant_type=client_credentials&client_secret=" + svcSecret, authz: []string{basicAuth(svcID, svcSecret)}, status: 400, code: "invalid_request"},
		{name: "two Authorization headers (§3.2 / §2.3)", contentType: form, body: "grant_type=client_credentials", authz: []string{basicAuth(svcID, svcSecret), basicAuth(svcID, svcSecret)}, status: 400, code: "invalid_request"},
		{name: "body client_id differs from basic (§2.3)", contentType: form, body: "grant_type=client_credentials&client_id=" + readerID, authz: []string{basicAuth(svcID, svcSecret)}, status: 400, code: "invalid_request"},
		{name: "client_secret without client_id (§2.3.1 client_id REQUIRED)", contentType: form, body: "grant_type=client_credentials&client_secret=" + svcSecret, status: 400, code: "invalid_request"},
		{name: "wrong secret, basic → 401 + Basic challenge (§5.2)", contentType: form, body: "grant_type=client_credentials", authz: []string{basicAuth(svcID, svcSecret+"x")}, status: 401, code: "invalid_client"},
		{name: "wrong secret, post → 400 without a challenge (§5.2, RFC 9110 §15.5.2)", contentType: form, body: "grant_type=client_credentials&client_id=" + svcID + "&client_secret=wrong-secret-0123456789", status: 400, code: "invalid_client"},
		{name: "another client's secret (§5.2)", contentType: form, body: "grant_type=client_credentials&client_id=" + svcID + "&client_secret=" + readerSecret, status: 400, code: "invalid_client"},
		{name: "empty secret, basic (§5.2)", contentType: form, body: "grant_type=client_credentials", authz: []string{basicAuth(svcID, "")}, status: 401, code: "invalid_client"},
		{name: "empty client_secret is no secret (§3.2)", contentType: form, body: "grant_type=client_credentials&client_id=" + svcID + "&client_secret=", status: 400, code: "invalid_client"},
		{name: "unknown client, basic (§5.2)", contentType: form, body: "grant_type=client_credentials", authz: []string{basicAuth("nobody", svcSecret)}, status: 401, code: "invalid_client"},
		{name: "unknown client, post (§5.2)", contentType: form, body: "grant_type=client_credentials&client_id=nobody&client_secret=" + svcSecret, status: 400, code: "invalid_client"},
		{name: "no client authentication (§5.2)", contentType: form, body: "grant_type=client_credentials", status: 400, code: "invalid_client"},
		{name: "client_id alone for a confidential client (§3.2.1)", contentType: form, body: "grant_type=client_credentials&client_id=" + svcID, status: 400, code: "invalid_client"},
		{name: "basic not base64 (RFC 7617 §2)", contentType: form, body: "grant_type=client_credentials", authz: []string{"Basic !!!notbase64!!!"}, status: 401, code: "invalid_client"},
		{name: "basic without colon (RFC 7617 §2)", contentType: form, body: "grant_type=client_credentials", authz: []string{"Basic " + b64(svcID)}, status: 401, code: "invalid_client"},
		{name: "basic with empty client_id (§2.3.1)", contentType: form, body: "grant_type=client_credentials", authz: []string{basicAuth("", svcSecret)}, status: 401, code: "invalid_client"},
		{name: "basic with bad percent-encoding (§2.3.1)", contentType: form, body: "grant_type=client_credentials", authz: []string{"Basic " + b64(svcID+":%zz")}, status: 401, code: "invalid_client"},
		{name: "credentials only in the URL query are ignored (§2.3.1)", target: "/oauth2/token?client_id=" + svcID + "&client_secret=" + svcSecret, contentType: form, body: "grant_type=client_credentials", status: 400, code: "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, target := tt.method, tt.target
			if method == "" {
				method = http.MethodPost
			}
			if target == "" {
				target = "/oauth2/token"
			}
			r, _ := http.NewRequest(method, "http://as.example"+target, strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			for _, a := range tt.authz {
				r.Header.Add("Authorization", a)
			}
			rec, next := serve(t, s, r)
			if next {
				t.Fatal("passed to the next handler")
			}
			assertOAuthError(t, rec, tt.status, tt.code)
			// Every 401 challenges (RFC 9110 §15.5.2; RFC 6749 §5.2 when
			// Basic was tried); no other status does.
			wantChallenge := tt.status == http.StatusUnauthorized
			if got := basicChallenge(rec.Header()); got != wantChallenge {
				t.Errorf("WWW-Authenticate Basic present = %v, want %v (%q)", got, wantChallenge, rec.Header().Values("WWW-Authenticate"))
			}
			if wantChallenge && !strings.Contains(rec.Header().Get("WWW-Authenticate"), "realm=") {
				t.Errorf("Basic challenge %q lacks realm (RFC 7617 §2 REQUIRED)", rec.Header().Get("WWW-Authenticate"))
			}
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

// TestTokenUnknownClientLooksLikeWrongSecret: an unknown client_id and a
// wrong secret get the same answer, so the response does not tell which
// client IDs exist.
func TestTokenUnknownClientLooksLikeWrongSecret(t *testing.T) {
	s := newTestServer(t, nil)
	wrong := basicToken(t, s, svcID, "wrong-secret-0123456789", ccForm())
	unknown := basicToken(t, s, "no-such-client", "wrong-secret-0123456789", ccForm())
	if wrong.Code != unknown.Code || wrong.Body.String() != unknown.Body.String() {
		t.Fatalf("wrong secret: %d %s; unknown client: %d %s", wrong.Code, wrong.Body, unknown.Code, unknown.Body)
	}
	assertOAuthError(t, wrong, http.StatusUnauthorized, "invalid_client")
}

// TestTokenBodyLimit: the body is capped; a body over the cap is 413, one
// exactly at the cap is processed (unrecognized parameters are ignored,
// RFC 6749 §3.2).
func TestTokenBodyLimit(t *testing.T) {
	s := newTestServer(t, nil)
	base := ccForm("client_id", svcID, "client_secret", svcSecret).Encode() + "&pad="
	atCap := base + strings.Repeat("a", maxFormBytes-len(base))
	if len(atCap) != maxFormBytes {
		t.Fatalf("test body has %d bytes, want %d", len(atCap), maxFormBytes)
	}

	rec, _ := serve(t, s, tokenRequest(atCap))
	decodeTokenResponse(t, rec)

	rec, _ = serve(t, s, tokenRequest(atCap+"a"))
	assertOAuthError(t, rec, http.StatusRequestEntityTooLarge, "invalid_request")

	rec, _ = serve(t, s, tokenRequest(base+strings.Repeat("a", 10*maxFormBytes)))
	assertOAuthError(t, rec, http.StatusRequestEntityTooLarge, "invalid_request")
}

// TestTokenQueryParametersIgnored: token requests are read from the body
// only; the URL query is never an authentication nor a parameter source
// (RFC 6749 §2.3.1: credentials "MUST NOT be included in the request URI";
// §3.2 parameters are sent in the request-body).
func TestTokenQueryParametersIgnored(t *testing.T) {
	s := newTestServer(t, nil)
	q := url.Values{"client_id": {readerID}, "client_secret": {readerSecret}, "grant_type": {"password"}, "scope": {"admin"}}

	r := tokenRequest(ccForm().Encode())
	r.URL.RawQuery = q.Encode()
	r.Header.Set("Authorization", basicAuth(svcID, svcSecret))
	rec, _ := serve(t, s, r)
	body := decodeTokenResponse(t, rec) // not "two methods", not "password", not "admin"
	c, err := s.app.Verifier().Verify(body.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientID != svcID || body.Scope != "user:read user:write" {
		t.Errorf("client_id %q scope %q: the query influenced the grant", c.ClientID, body.Scope)
	}

	r = tokenRequest("")
	r.URL.RawQuery = ccForm("client_id", svcID, "client_secret", svcSecret).Encode()
	rec, _ = serve(t, s, r)
	assertOAuthError(t, rec, http.StatusBadRequest, "invalid_client")
}

// TestTokenBasicFormURLEncoded: with client_secret_basic, the client_id and
// secret are form-urlencoded before base64 (RFC 6749 §2.3.1, Appendix B),
// so a secret with "+", "%", ":" and a client_id with ":" must arrive intact.
func TestTokenBasicFormURLEncoded(t *testing.T) {
	const weirdSecret = `a+b%20c:d&e=f g/h?i#j"k\l€`
	t.Setenv("CADDYOAUTH_TEST_WEIRD_SECRET", weirdSecret)
	cfg := baseConfig()
	cfg.Clients = append(cfg.Clients,
		&Client{ClientSettings: ClientSettings{ID: "weird", Scopes: []string{"a"}}, Secret: "{env.CADDYOAUTH_TEST_WEIRD_SECRET}"},
		&Client{ClientSettings: ClientSettings{ID: "urn:example:svc", Scopes: []string{"a"}}, SecretHash: sha256Hex(svcSecret)},
	)
	s := newTestServer(t, cfg)

	t.Run("secret with + % : encoded (§2.3.1)", func(t *testing.T) {
		decodeTokenResponse(t, basicToken(t, s, "weird", weirdSecret, ccForm()))
	})
	t.Run("client_id with : encoded (§2.3.1)", func(t *testing.T) {
		decodeTokenResponse(t, basicToken(t, s, "urn:example:svc", svcSecret, ccForm()))
	})
	t.Run("same secret through client_secret_post", func(t *testing.T) {
		decodeTokenResponse(t, postToken(t, s, ccForm("client_id", "weird", "client_secret", weirdSecret)))
	})
	t.Run("unencoded + decodes to a space, so the raw secret is wrong (Appendix B)", func(t *testing.T) {
		r := tokenRequest(ccForm().Encode())
		r.Header.Set("Authorization", "Basic "+b64("weird:"+weirdSecret))
		rec, _ := serve(t, s, r)
		assertOAuthError(t, rec, http.StatusUnauthorized, "invalid_client")
	})
	t.Run("encoded %2B is a literal + (Appendix B)", func(t *testing.T) {
		// The secret "a+b..." sent with "+" as "%2B": correct. As "+": a
		// space, wrong (previous case).
		enc := strings.Replace(url.QueryEscape(weirdSecret), "%2B", "%2b", 1) // hex digits are case-insensitive (RFC 3986 §2.1)
		r := tokenRequest(ccForm().Encode())
		r.Header.Set("Authorization", "Basic "+b64("weird:"+enc))
		rec, _ := serve(t, s, r)
		decodeTokenResponse(t, rec)
	})
}

// TestTokenErrorDescriptionCharset: descriptions that echo a parameter name
// or scope never carry characters RFC 6749 §5.2 excludes, whatever the
// client sent.
func TestTokenErrorDescriptionCharset(t *testing.T) {
	s := newTestServer(t, nil)
	auth := "client_id=" + svcID + "&client_secret=" + svcSecret + "&grant_type=client_credentials"
	long := strings.Repeat("n", 500)
	tests := []struct{ body, code string }{
		{auth + "&a%22b=1&a%22b=2", "invalid_request"},   // repeated name with "
		{auth + "&a%5Cb=1&a%5Cb=2", "invalid_request"},   // repeated name with \
		{auth + "&%C3%A9=1&%C3%A9=2", "invalid_request"}, // non-ASCII name
		{auth + "&%00%0A=1&%00%0A=2", "invalid_request"}, // control characters
		{auth + "&%7F=1&%7F=2", "invalid_request"},       // DEL
		{auth + "&" + long + "=1&" + long + "=2", "invalid_request"},
		{auth + "&scope=" + long, "invalid_scope"},                      // long scope token echoed
		{auth + "&scope=" + url.QueryEscape("a}{b~!"), "invalid_scope"}, // punctuation scope echoed
	}
	for _, tt := range tests {
		rec, _ := serve(t, s, tokenRequest(tt.body))
		body := assertOAuthError(t, rec, http.StatusBadRequest, tt.code)
		if d, _ := body["error_description"].(string); len(d) > 200 {
			t.Errorf("error_description of %d bytes echoes too much", len(d))
		}
	}
}

// TestTokenConcurrent issues tokens from many goroutines, with a fast and
// a slow-hash client, right and wrong secrets (run with -race).
func TestTokenConcurrent(t *testing.T) {
	const slowSecret = "slow-secret-0123456789"
	cfg := baseConfig()
	cfg.Clients = append(cfg.Clients, &Client{ClientSettings: ClientSettings{ID: "slow", Scopes: []string{"a"}}, SecretHash: bcryptHash(t, slowSecret)})
	s := newTestServer(t, cfg)
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			id, secret, want := svcID, svcSecret, http.StatusOK
			if i%2 == 0 {
				id, secret = "slow", slowSecret
			}
			if i%4 == 0 {
				secret, want = secret+"-wrong", http.StatusUnauthorized
			}
			r := tokenRequest(ccForm().Encode())
			r.Header.Set("Authorization", basicAuth(id, secret))
			rec := httptest.NewRecorder()
			if err := s.ServeHTTP(rec, r, next); err != nil {
				t.Errorf("goroutine %d: %v", i, err)
				return
			}
			if rec.Code != want {
				t.Errorf("goroutine %d (%s): status %d, want %d", i, id, rec.Code, want)
			}
		})
	}
	wg.Wait()
}

// TestTokenSetsClientPlaceholder: once the client is authenticated, the
// token endpoint names it on the request's replacer as {oauth.client_id}
// and {http.auth.user.id}, so Caddy's access log (user_id) and log_append
// see who asked for a token; a failed authentication names nobody, and a
// request without a replacer (not served by Caddy) still works.
func TestTokenSetsClientPlaceholder(t *testing.T) {
	s := newTestServer(t, nil)
	withRepl := func(r *http.Request) (*http.Request, *caddy.Replacer) {
		repl := caddy.NewReplacer()
		return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)), repl
	}
	for _, tc := range []struct {
		name   string
		authz  string
		body   string
		status int
		want   string // "" for unset
	}{
		{"Basic", basicAuth(svcID, svcSecret), "grant_type=client_credentials", http.StatusOK, svcID},
		{"client_secret_post", "", "grant_type=client_credentials&client_id=" + readerID + "&client_secret=" + readerSecret, http.StatusOK, readerID},
		{"authenticated, then refused for the grant", basicAuth(svcID, svcSecret), "grant_type=client_credentials&scope=nope", http.StatusBadRequest, svcID},
		{"wrong secret", basicAuth(svcID, "wrong-secret-0123456789"), "grant_type=client_credentials", http.StatusUnauthorized, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, repl := withRepl(tokenRequest(tc.body))
			if tc.authz != "" {
				r.Header.Set("Authorization", tc.authz)
			}
			rec, _ := serve(t, s, r)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			for _, key := range []string{"oauth.client_id", "http.auth.user.id"} {
				got, ok := repl.GetString(key)
				if got != tc.want || ok != (tc.want != "") {
					t.Errorf("{%s} = %q (set %v), want %q", key, got, ok, tc.want)
				}
			}
		})
	}
	// Without a replacer in the context.
	r := tokenRequest("grant_type=client_credentials")
	r.Header.Set("Authorization", basicAuth(svcID, svcSecret))
	if rec, _ := serve(t, s, r); rec.Code != http.StatusOK {
		t.Errorf("without a replacer: %d", rec.Code)
	}
}
