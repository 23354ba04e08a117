package caddyscope

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// TestServeBearer is the RFC 6750 table: what each request gets from a
// route that needs user:read for GET.
func TestServeBearer(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t) // another issuer's key
	good := f.token(t, claims("user:read", nil))
	parts := strings.Split(good, ".")
	active := f.kr.Active()
	esSign := func(in string) []byte {
		sig, err := jwt.SigningMethodES256.Sign(in, active.Signer)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	hdr := func(alg, kid, typ string) map[string]any {
		return map[string]any{"alg": alg, "kid": kid, "typ": typ}
	}
	// flip changes one character in the middle of a base64url segment.
	flip := func(s string) string {
		b := []byte(s)
		i := len(b) / 2
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	hour := time.Hour
	now := time.Now()

	const (
		noCode = "-" // 401 without an error code
	)
	tests := []struct {
		name   string
		target string
		authz  []string
		status int
		code   string // challenge error; noCode for none
	}{
		{"valid token with the scope: next runs", "/", []string{"Bearer " + good}, 200, ""},
		{"lower-case scheme accepted (RFC 9110 §11.1)", "/", []string{"bearer " + good}, 200, ""},
		{"several SP after the scheme (RFC 6750 §2.1 1*SP)", "/", []string{"Bearer    " + good}, 200, ""},

		{"no Authorization: challenge without error (RFC 6750 §3, §3.1)", "/", nil, 401, noCode},
		{"Basic scheme: as if no token (RFC 6750 §3.1)", "/", []string{"Basic dXNlcjpwYXNz"}, 401, noCode},
		{"unknown scheme: as if no token (RFC 6750 §3.1)", "/", []string{"MAC " + good}, 401, noCode},

		{"garbage token (RFC 6750 §3.1 invalid_token)", "/", []string{"Bearer garbage"}, 401, "invalid_token"},
		{"not a b64token: quote (RFC 6750 §2.1)", "/", []string{`Bearer "` + good + `"`}, 401, "invalid_token"},
		{"not a b64token: space inside (RFC 6750 §2.1)", "/", []string{"Bearer a b"}, 401, "invalid_token"},
		{"not a b64token: backslash (RFC 6750 §2.1)", "/", []string{`Bearer a\b`}, 401, "invalid_token"},
		{"not a b64token: control byte (RFC 6750 §2.1)", "/", []string{"Bearer a\x01b"}, 401, "invalid_token"},

		{"two Authorization headers (RFC 6750 §3.1 invalid_request)", "/", []string{"Bearer " + good, "Bearer " + good}, 400, "invalid_request"},
		{"access_token in the query (RFC 6750 §2.3, §3.1)", "/?access_token=" + good, nil, 400, "invalid_request"},
		{"query and header: two methods (RFC 6750 §3.1)", "/?access_token=" + good, []string{"Bearer " + good}, 400, "invalid_request"},

		{"expired (RFC 6750 §3.1 invalid_token)", "/", []string{"Bearer " + f.token(t, claims("user:read", map[string]any{"exp": now.Add(-hour).Unix(), "iat": now.Add(-2 * hour).Unix()}))}, 401, "invalid_token"},
		{"not yet valid: nbf (RFC 7519 §4.1.5)", "/", []string{"Bearer " + f.token(t, claims("user:read", map[string]any{"nbf": now.Add(hour).Unix()}))}, 401, "invalid_token"},
		{"no exp (RFC 9068 §2.2: REQUIRED)", "/", []string{"Bearer " + f.token(t, claims("user:read", map[string]any{"exp": nil}))}, 401, "invalid_token"},
		{"wrong issuer (RFC 9068 §4)", "/", []string{"Bearer " + f.token(t, claims("user:read", map[string]any{"iss": "https://evil.example"}))}, 401, "invalid_token"},
		{"no issuer (RFC 9068 §4)", "/", []string{"Bearer " + f.token(t, claims("user:read", map[string]any{"iss": nil}))}, 401, "invalid_token"},
		{"unknown kid", "/", []string{"Bearer " + rawToken(hdr(oauthjwt.ES256, "nope", oauthjwt.AccessTokenType), claims("user:read", nil), esSign)}, 401, "invalid_token"},
		{"other issuer's key", "/", []string{"Bearer " + other.token(t, claims("user:read", nil))}, 401, "invalid_token"},
		{"our kid, other key's signature", "/", []string{"Bearer " + rawToken(hdr(oauthjwt.ES256, active.ID, oauthjwt.AccessTokenType), claims("user:read", nil), func(in string) []byte {
			sig, _ := jwt.SigningMethodES256.Sign(in, other.kr.Active().Signer)
			return sig
		})}, 401, "invalid_token"},
		{"alg none (RFC 8725 §3.1)", "/", []string{"Bearer " + rawToken(hdr("none", active.ID, oauthjwt.AccessTokenType), claims("user:read", nil), func(string) []byte { return nil })}, 401, "invalid_token"},
		{"alg none, no signature segment", "/", []string{"Bearer " + strings.TrimSuffix(rawToken(hdr("none", active.ID, oauthjwt.AccessTokenType), claims("user:read", nil), func(string) []byte { return nil }), ".")}, 401, "invalid_token"},
		{"tampered signature", "/", []string{"Bearer " + parts[0] + "." + parts[1] + "." + flip(parts[2])}, 401, "invalid_token"},
		{"tampered payload", "/", []string{"Bearer " + parts[0] + "." + flip(parts[1]) + "." + parts[2]}, 401, "invalid_token"},
		{"signature stripped", "/", []string{"Bearer " + parts[0] + "." + parts[1] + "."}, 401, "invalid_token"},
		{"typ is not at+jwt (RFC 9068 §4)", "/", []string{"Bearer " + rawToken(hdr(oauthjwt.ES256, active.ID, "JWT"), claims("user:read", nil), esSign)}, 401, "invalid_token"},
		{"scope claim of the wrong type", "/", []string{"Bearer " + f.token(t, claims(42, nil))}, 401, "invalid_token"},
		{"token too large", "/", []string{"Bearer " + strings.Repeat("a", oauthjwt.MaxTokenSize+1)}, 401, "invalid_token"},

		{"valid token lacking the scope (RFC 6750 §3.1 insufficient_scope)", "/", []string{"Bearer " + f.token(t, claims("user:write", nil))}, 403, "insufficient_scope"},
		{"valid token with no scope at all", "/", []string{"Bearer " + f.token(t, claims(nil, nil))}, 403, "insufficient_scope"},
	}
	for _, realm := range []string{"", "api gateway"} {
		for _, tt := range tests {
			t.Run("realm="+realm+"/"+tt.name, func(t *testing.T) {
				h := newHandler(t, f, &Scope{
					Rules: []Rule{{Methods: []string{"GET"}, Scopes: []string{"user:read"}}},
					Realm: realm,
				})
				r, repl := newRequest(http.MethodGet, tt.target, tt.authz...)
				res := serve(t, h, r)
				if tt.status == 200 {
					if res.calls != 1 || res.err != nil || res.rec.Code != 200 {
						t.Fatalf("next ran %d times, status %d, err %v, body %s", res.calls, res.rec.Code, res.err, res.rec.Body)
					}
					if v := res.rec.Header().Values("WWW-Authenticate"); len(v) != 0 {
						t.Errorf("challenge %q on success", v)
					}
					return
				}
				code := tt.code
				if code == noCode {
					code = ""
				}
				body := checkRefused(t, res, tt.status, code)
				challenges := res.rec.Header().Values("WWW-Authenticate")
				if len(challenges) != 1 {
					t.Fatalf("WWW-Authenticate = %q, want one Bearer challenge", challenges)
				}
				ch := parseChallenge(t, challenges[0])
				if realm == "" {
					if _, ok := ch["realm"]; ok {
						t.Errorf("realm attribute %q without a realm configured", ch["realm"])
					}
				} else if ch["realm"] != realm {
					t.Errorf("realm = %q, want %q", ch["realm"], realm)
				}
				if ch["error"] != code {
					t.Errorf("challenge error = %q, want %q (challenge %q)", ch["error"], code, challenges[0])
				}
				if code == "" {
					// §3.1: no error code or other error information.
					if _, ok := ch["error_description"]; ok {
						t.Errorf("error_description in a challenge to a request without credentials: %q", challenges[0])
					}
					if body.Error == "invalid_token" || body.Error == "invalid_request" || body.Error == "insufficient_scope" {
						t.Errorf("body error %q for a request without credentials", body.Error)
					}
				} else if ch["error_description"] == "" {
					t.Errorf("no error_description in %q", challenges[0])
				}
				if tt.status == 403 && ch["scope"] != "user:read" {
					t.Errorf("403 scope attribute = %q, want user:read (RFC 6750 §3)", ch["scope"])
				}
				if s, ok := ch["scope"]; ok && s != "user:read" {
					t.Errorf("scope attribute = %q, want the required user:read", s)
				}
				// The description must not echo the token back.
				for _, a := range tt.authz {
					if tok := strings.TrimSpace(strings.TrimPrefix(a, "Bearer")); len(tok) > 8 &&
						(strings.Contains(challenges[0], tok) || strings.Contains(res.rec.Body.String(), tok)) {
						t.Errorf("the refusal echoes the token")
					}
				}
				if _, ok := repl.GetString("oauth.client_id"); ok {
					t.Error("oauth.client_id set on a refusal")
				}
				if _, ok := repl.GetString("http.auth.user.id"); ok {
					t.Error("http.auth.user.id set on a refusal")
				}
			})
		}
	}
}

// TestScopeClaimForms: the scope claim as RFC 9068 §2.2.3 defines it (a
// space-delimited string), as a JSON array, and as scp, which other
// issuers use; each grants the scopes it lists, no more.
func TestScopeClaimForms(t *testing.T) {
	f := newFixture(t)
	h := newHandler(t, f, &Scope{Rules: []Rule{{Methods: []string{"GET"}, Scopes: []string{"user:read", "notes:read"}}}})
	tests := []struct {
		name     string
		override map[string]any
		scope    any
		pass     bool
		text     string // {oauth.scope} on success
	}{
		{"space-delimited string (RFC 9068 §2.2.3)", nil, "notes:read user:read", true, "notes:read user:read"},
		{"string with extra scopes", nil, "a user:read b notes:read", true, "a user:read b notes:read"},
		{"string lacking one", nil, "user:read", false, ""},
		{"JSON array", nil, []string{"user:read", "notes:read"}, true, "user:read notes:read"},
		{"JSON array lacking one", nil, []string{"user:read"}, false, ""},
		{"one string holding both is not an array element", nil, []string{"user:read notes:read"}, false, ""},
		{"scp array (Azure AD, Okta)", map[string]any{"scp": []string{"user:read", "notes:read"}}, nil, true, "user:read notes:read"},
		{"scp string", map[string]any{"scp": "user:read notes:read"}, nil, true, "user:read notes:read"},
		{"scope and scp together grant their union", map[string]any{"scp": []string{"notes:read"}}, "user:read", true, "user:read notes:read"},
		{"empty array", nil, []string{}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, repl := newRequest(http.MethodGet, "/", "Bearer "+f.token(t, claims(tt.scope, tt.override)))
			res := serve(t, h, r)
			if !tt.pass {
				checkRefused(t, res, http.StatusForbidden, errInsufficientScope)
				return
			}
			if res.calls != 1 {
				t.Fatalf("refused: %d %s", res.rec.Code, res.rec.Body)
			}
			if got, _ := repl.GetString("oauth.scope"); !sameScopes(got, tt.text) || strings.Contains(got, "  ") {
				t.Errorf("oauth.scope = %q, want %q space-delimited", got, tt.text)
			}
		})
	}
}

// TestAudience: the token's aud must name one of the configured audiences,
// or by default the one the local authority issues (RFC 9068 §4: the resource server must check aud;
// RFC 7519 §4.1.3: aud is a string or an array of strings).
func TestAudience(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name     string
		audience []string
		aud      any // nil: no aud claim
		pass     bool
	}{
		{"aud string in the list", []string{"https://api.example"}, "https://api.example", true},
		{"aud array, one in the list", []string{"https://other.example", "https://api.example"}, []string{"https://x.example", "https://api.example"}, true},
		{"aud not in the list", []string{"https://api.example"}, "https://evil.example", false},
		{"aud array, none in the list", []string{"https://api.example"}, []string{"https://x.example", "https://y.example"}, false},
		{"aud missing", []string{"https://api.example"}, nil, false},
		{"aud differs by a trailing slash (exact match)", []string{"https://api.example"}, "https://api.example/", false},
		{"aud differs in case (exact match)", []string{"https://api.example"}, "HTTPS://API.EXAMPLE", false},
		// Without a list, the authority's own audience is required.
		{"no audience configured: the authority's aud passes", nil, testAudience, true},
		{"no audience configured: another aud refused", nil, "https://anything.example", false},
		{"no audience configured: no aud refused", nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(t, f, &Scope{Audience: tt.audience, Realm: "api"})
			c := claims("s", nil)
			if tt.aud == nil {
				delete(c, "aud")
			} else {
				c["aud"] = tt.aud
			}
			r, _ := newRequest(http.MethodGet, "/", "Bearer "+f.token(t, c))
			res := serve(t, h, r)
			if tt.pass {
				if res.calls != 1 {
					t.Fatalf("refused: %d %s", res.rec.Code, res.rec.Body)
				}
				return
			}
			checkRefused(t, res, http.StatusUnauthorized, errInvalidToken)
			if ch := parseChallenge(t, res.rec.Header().Get("WWW-Authenticate")); ch["error"] != errInvalidToken {
				t.Errorf("challenge %v, want invalid_token", ch)
			}
		})
	}
}

// TestPreflight: a CORS preflight (Fetch standard, "CORS-preflight
// request": OPTIONS with Origin and Access-Control-Request-Method) passes
// without a token only when allow_preflight is set.
func TestPreflight(t *testing.T) {
	f := newFixture(t)
	getOnly := []Rule{{Methods: []string{"GET"}, Scopes: []string{"r"}}}
	anyMethod := []Rule{{Methods: []string{"*"}, Scopes: []string{"r"}}}
	preflight := map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
	tests := []struct {
		name    string
		allow   bool
		rules   []Rule
		method  string
		headers map[string]string
		status  int // 204: answered here, next not run
	}{
		{"allowed preflight answered 204", true, getOnly, "OPTIONS", preflight, 204},
		{"allowed preflight answered 204 with a * rule", true, anyMethod, "OPTIONS", preflight, 204},
		{"preflight not allowed: no OPTIONS rule, 405", false, getOnly, "OPTIONS", preflight, 405},
		{"preflight not allowed: * rule needs a token, 401", false, anyMethod, "OPTIONS", preflight, 401},
		{"OPTIONS without Origin is not a preflight", true, getOnly, "OPTIONS", map[string]string{"Access-Control-Request-Method": "POST"}, 405},
		{"OPTIONS without Access-Control-Request-Method is not a preflight", true, anyMethod, "OPTIONS", map[string]string{"Origin": "https://app.example"}, 401},
		{"plain OPTIONS is not a preflight", true, anyMethod, "OPTIONS", nil, 401},
		{"empty Origin is not a preflight", true, anyMethod, "OPTIONS", map[string]string{"Origin": "", "Access-Control-Request-Method": "POST"}, 401},
		{"GET with preflight headers is not a preflight", true, getOnly, "GET", preflight, 401},
		{"POST with preflight headers is not a preflight", true, anyMethod, "POST", preflight, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(t, f, &Scope{Rules: tt.rules, AllowPreflight: tt.allow})
			r, repl := newRequest(tt.method, "/api/users")
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			res := serve(t, h, r)
			switch tt.status {
			case 204:
				// Never passed on: an OPTIONS without a token must not
				// reach the upstream, whatever its Origin.
				if res.calls != 0 || res.rec.Code != http.StatusNoContent {
					t.Fatalf("preflight: status %d, next ran %d times", res.rec.Code, res.calls)
				}
				if _, ok := repl.GetString("oauth.client_id"); ok {
					t.Error("identity placeholders set on an unauthenticated preflight")
				}
			case 401:
				checkRefused(t, res, 401, "")
			case 405:
				checkRefused(t, res, 405, "")
			}
		})
	}
}

// TestPlaceholders: after success the identity is published for later
// handlers, access logs and rate-limit keys.
func TestPlaceholders(t *testing.T) {
	f := newFixture(t)
	h := newHandler(t, f, &Scope{Rules: []Rule{{Methods: []string{"GET"}, Scopes: []string{"user:read"}}}})
	tok := f.token(t, claims([]string{"user:read", "notes:read"}, map[string]any{
		"tenant": "acme",
		"level":  3,
		"ratio":  0.5,
		"admin":  true,
		"groups": []string{"a", "b"},
		"org":    map[string]any{"id": 7},
		"quote":  `say "hi"`,
	}))
	r, repl := newRequest(http.MethodGet, "/", "Bearer "+tok)
	var inNext map[string]string
	keys := []string{"oauth.client_id", "oauth.client_name", "oauth.sub", "oauth.scope", "oauth.jti", "http.auth.user.id"}
	res := result{}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		res.calls++
		inNext = map[string]string{}
		for _, k := range keys {
			inNext[k], _ = repl.GetString(k)
		}
		return nil
	})
	if err := h.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
		t.Fatal(err)
	}
	if res.calls != 1 {
		t.Fatalf("next ran %d times", res.calls)
	}
	want := map[string]string{
		"oauth.client_id":   testClientID,
		"oauth.client_name": "Reports service",
		"oauth.sub":         "svc-subject",
		"oauth.scope":       "user:read notes:read", // RFC 9068 §2.2.3: space-delimited
		"oauth.jti":         "jti-42",
		"http.auth.user.id": "svc-subject",
	}
	for k, v := range want {
		if inNext[k] != v {
			t.Errorf("in next: {%s} = %q, want %q", k, inNext[k], v)
		}
	}

	tests := []struct {
		key  string
		want string
	}{
		{"oauth.claims.tenant", "acme"},                      // strings as they are
		{"oauth.claims.level", "3"},                          // numbers as JSON
		{"oauth.claims.ratio", "0.5"},                        // numbers as JSON
		{"oauth.claims.admin", "true"},                       // booleans as JSON
		{"oauth.claims.groups", `["a","b"]`},                 // arrays as JSON
		{"oauth.claims.org", `{"id":7}`},                     // objects as JSON
		{"oauth.claims.quote", `say "hi"`},                   // a string is unquoted
		{"oauth.claims.aud", testAudience},                   // registered claims too
		{"oauth.claims.client_id", testClientID},             // RFC 9068 §2.2
		{"oauth.claims.missing", ""},                         // unknown claim: empty
		{"oauth.client.metadata.tier", "gold"},               // configured metadata
		{"oauth.client.metadata.missing", ""},                // unknown key: empty
		{"oauth.client_name", "Reports service"},             // after next as well
		{"http.auth.user.id", "svc-subject"},                 // Caddy's access-log key
		{"oauth.scope", "user:read notes:read"},              // after next as well
		{"oauth.claims.scope", `["user:read","notes:read"]`}, // the raw claim, an array here
	}
	for _, tt := range tests {
		got, ok := repl.GetString(tt.key)
		if !ok || got != tt.want {
			t.Errorf("{%s} = %q, %v; want %q", tt.key, got, ok, tt.want)
		}
		if r := repl.ReplaceAll("{"+tt.key+"}", "<empty>"); tt.want != "" && r != tt.want {
			t.Errorf("ReplaceAll({%s}) = %q, want %q", tt.key, r, tt.want)
		}
	}
	// Placeholders outside the handler's prefixes are not claimed by it.
	if v, ok := repl.GetString("oauth.other"); ok {
		t.Errorf("{oauth.other} = %q, want unknown", v)
	}
}

// TestUnknownClientRefused: a correctly signed token whose client is not
// (or no longer) registered is refused, so removing a client from the
// config cuts its tokens off at the next reload (RFC 6750 §3.1
// invalid_token: "revoked ... or invalid for other reasons").
func TestUnknownClientRefused(t *testing.T) {
	f := newFixture(t)
	h := newHandler(t, f, &Scope{ForwardHeaders: identityHeaders()})
	r, repl := newRequest(http.MethodGet, "/", "Bearer "+f.token(t, claims("s", map[string]any{"client_id": "ghost"})))
	spoof(r.Header)
	res := serve(t, h, r)
	checkRefused(t, res, http.StatusUnauthorized, errInvalidToken)
	if _, ok := repl.GetString("oauth.client_id"); ok {
		t.Error("identity placeholders set for a refused token")
	}
	checkNoSpoof(t, r.Header, nil)
}

// TestClientScopesNarrowed: a token keeps only the scopes its client is
// still allowed; narrowing the client's scopes applies to tokens already
// issued (403 insufficient_scope, RFC 6750 §3.1).
func TestClientScopesNarrowed(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, claims("user:read user:write", nil))
	h := newHandler(t, f, &Scope{Rules: []Rule{
		{Methods: []string{"GET"}, Scopes: []string{"user:read"}},
		{Methods: []string{"POST"}, Scopes: []string{"user:write"}},
	}})
	info := f.auth.clients[testClientID]
	info.Scopes = []string{"user:read"} // user:write withdrawn after issuance
	f.auth.clients[testClientID] = info

	r, _ := newRequest(http.MethodGet, "/", "Bearer "+tok)
	if res := serve(t, h, r); res.calls != 1 {
		t.Fatalf("GET refused: %d %s", res.rec.Code, res.rec.Body)
	}
	r, _ = newRequest(http.MethodPost, "/", "Bearer "+tok)
	checkRefused(t, serve(t, h, r), http.StatusForbidden, errInsufficientScope)
}

// identityHeaders is a forward_headers config with one header per identity
// placeholder.
func identityHeaders() map[string]string {
	return map[string]string{
		"X-Client-Id":   "{oauth.client_id}",
		"X-Client-Name": "{oauth.client_name}",
		"X-Tier":        "{oauth.client.metadata.tier}",
		"x-scope":       "{oauth.scope}",         // configured in lower case
		"X_User":        "{oauth.sub}",           // configured with _
		"X-Tenant":      "{oauth.claims.tenant}", // absent from the token: empty
	}
}

// spoof adds incoming copies of the identity headers in the spellings an
// upstream may read as the same header, and two that are not the same.
func spoof(h http.Header) {
	h["X-Client-Id"] = []string{"evil"}
	h["x_client_id"] = []string{"evil"}
	h["X-CLIENT-ID"] = []string{"evil"}
	h["x-client_id"] = []string{"evil"}
	h["X_Client_Name"] = []string{"evil"}
	h["X-Tier"] = []string{"platinum"}
	h["X-Scope"] = []string{"admin"}
	h["x-user"] = []string{"root"}
	h["X_USER"] = []string{"root"}
	h["X-Tenant"] = []string{"other"}
	h["X-Client-Ident"] = []string{"kept"} // another header
	h["X-Request-Id"] = []string{"kept"}   // not configured
}

// checkNoSpoof fails if any spelling of a configured header still carries a
// client's value, or if an unconfigured header was touched.
func checkNoSpoof(t *testing.T, h http.Header, forwarded map[string]string) {
	t.Helper()
	for name := range identityHeaders() {
		keys := normalizedHeaderKeys(h, name)
		want, set := forwarded[name]
		switch {
		case !set && len(keys) != 0:
			t.Errorf("%s: incoming copies %q left in place", name, keys)
		case set && len(keys) != 1:
			t.Errorf("%s: keys %q, want exactly the handler's own", name, keys)
		case set:
			if got := h[keys[0]]; len(got) != 1 || got[0] != want {
				t.Errorf("%s = %q, want [%q]", keys[0], got, want)
			}
		}
	}
	if got := h.Get("X-Client-Ident"); got != "kept" {
		t.Errorf("X-Client-Ident = %q: a header that is not configured was touched", got)
	}
	if got := h.Get("X-Request-Id"); got != "kept" {
		t.Errorf("X-Request-Id = %q: a header that is not configured was touched", got)
	}
}

// TestForwardHeaders: on success the configured headers carry the identity
// and nothing the client sent under those names (in any case, with _ for -)
// survives; the same stripping happens on every refusal and on preflights.
func TestForwardHeaders(t *testing.T) {
	f := newFixture(t)
	good := f.token(t, claims("user:read notes:read", nil))
	rules := []Rule{{Methods: []string{"GET"}, Scopes: []string{"user:read"}}}

	t.Run("success", func(t *testing.T) {
		h := newHandler(t, f, &Scope{Rules: rules, ForwardHeaders: identityHeaders()})
		r, _ := newRequest(http.MethodGet, "/", "Bearer "+good)
		spoof(r.Header)
		res := serve(t, h, r)
		if res.calls != 1 {
			t.Fatalf("refused: %d %s", res.rec.Code, res.rec.Body)
		}
		checkNoSpoof(t, res.nextHeader, map[string]string{
			"X-Client-Id":   testClientID,
			"X-Client-Name": "Reports service",
			"X-Tier":        "gold",
			"x-scope":       "user:read notes:read",
			"X_User":        "svc-subject",
			// X-Tenant: the placeholder is empty, so no header.
		})
		if got := res.nextHeader.Get("Authorization"); got != "" {
			t.Errorf("Authorization = %q: the token must not reach the rest of the route (pass_credentials off)", got)
		}
	})

	refusals := []struct {
		name   string
		method string
		authz  []string
		status int
	}{
		{"no token (401)", http.MethodGet, nil, 401},
		{"invalid token (401)", http.MethodGet, []string{"Bearer garbage"}, 401},
		{"two Authorization headers (400)", http.MethodGet, []string{"Bearer a", "Bearer b"}, 400},
		{"insufficient scope (403)", http.MethodGet, []string{"Bearer " + f.token(t, claims("notes:read", nil))}, 403},
		{"no rule for the method (405)", http.MethodDelete, []string{"Bearer " + good}, 405},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(t, f, &Scope{Rules: rules, ForwardHeaders: identityHeaders()})
			r, _ := newRequest(tt.method, "/", tt.authz...)
			spoof(r.Header)
			res := serve(t, h, r)
			checkRefused(t, res, tt.status, "")
			// handle_errors routes see this same request.
			checkNoSpoof(t, r.Header, nil)
		})
	}

	t.Run("preflight", func(t *testing.T) {
		h := newHandler(t, f, &Scope{Rules: rules, ForwardHeaders: identityHeaders(), AllowPreflight: true})
		r, _ := newRequest(http.MethodOptions, "/")
		r.Header.Set("Origin", "https://app.example")
		r.Header.Set("Access-Control-Request-Method", "GET")
		spoof(r.Header)
		res := serve(t, h, r)
		if res.calls != 0 || res.rec.Code != http.StatusNoContent {
			t.Fatalf("preflight: status %d, next ran %d times", res.rec.Code, res.calls)
		}
		// handle_errors and logging see this same request.
		checkNoSpoof(t, r.Header, nil)
	})

	t.Run("no forward_headers: nothing stripped", func(t *testing.T) {
		h := newHandler(t, f, &Scope{Rules: rules})
		r, _ := newRequest(http.MethodGet, "/", "Bearer "+good)
		r.Header.Set("X-Client-Id", "client-sent")
		res := serve(t, h, r)
		if res.calls != 1 {
			t.Fatalf("refused: %d", res.rec.Code)
		}
		if got := res.nextHeader.Get("X-Client-Id"); got != "client-sent" {
			t.Errorf("X-Client-Id = %q: only configured headers are the handler's", got)
		}
	})
}

// TestProvisionRefusals: configuration that would produce a malformed
// challenge or header is refused, naming the field.
func TestProvisionRefusals(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name    string
		s       Scope
		wantErr string
	}{
		{"realm with a quote (RFC 6750 §3: quoted-string, no escapes)", Scope{Realm: `a"b`}, "realm"},
		{"realm with a backslash", Scope{Realm: `a\b`}, "realm"},
		{"forward header name with a colon (RFC 9110 §5.1: token)", Scope{ForwardHeaders: map[string]string{"X-A:b": "v"}}, "forward_headers"},
		{"forward header name with a space", Scope{ForwardHeaders: map[string]string{"X A": "v"}}, "forward_headers"},
		{"forward header name with a newline", Scope{ForwardHeaders: map[string]string{"X-A\r\nX-B": "v"}}, "forward_headers"},
		{"forward header name with a non-token character (RFC 9110 §5.6.2)", Scope{ForwardHeaders: map[string]string{"X-A(b)": "v"}}, "forward_headers"},
		{"forwarding Authorization would strip the token", Scope{ForwardHeaders: map[string]string{"authorization": "{oauth.sub}"}}, "Authorization"},
		{"empty forward header name", Scope{ForwardHeaders: map[string]string{"": "v"}}, "forward_headers"},
		{"same forward header in two spellings", Scope{ForwardHeaders: map[string]string{"X-Client-Id": "{oauth.client_id}", "x_client_id": "{oauth.sub}"}}, "forward_headers"},
		{"bad rule", Scope{Rules: []Rule{{Methods: []string{"get"}}}}, "rules[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s
			err := s.provision(f.auth, zap.NewNop())
			if err == nil {
				t.Fatalf("provision accepted %+v", tt.s)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not name %q", err, tt.wantErr)
			}
		})
	}
	// And a realm with spaces and punctuation is fine.
	s := Scope{Realm: "api gateway, v2 (prod)"}
	if err := s.provision(f.auth, zap.NewNop()); err != nil {
		t.Fatalf("provision refused realm %q: %v", s.Realm, err)
	}
}

// TestNextError: an error from a later handler is returned unchanged.
func TestNextError(t *testing.T) {
	f := newFixture(t)
	h := newHandler(t, f, &Scope{})
	r, _ := newRequest(http.MethodGet, "/", "Bearer "+f.token(t, claims("s", nil)))
	boom := errors.New("boom")
	err := h.ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return boom }))
	if !errors.Is(err, boom) {
		t.Fatalf("ServeHTTP = %v, want the next handler's error", err)
	}
}

// TestRefusalLogNoToken: refusals are logged at info level with the
// reason, never with the token (RFC 6750 §5.3 treats tokens as secrets).
func TestRefusalLogNoToken(t *testing.T) {
	f := newFixture(t)
	core, logs := observer.New(zapcore.DebugLevel)
	h := &Scope{Rules: []Rule{{Methods: []string{"GET"}, Scopes: []string{"admin"}}}}
	if err := h.provision(f.auth, zap.New(core)); err != nil {
		t.Fatal(err)
	}
	tok := f.token(t, claims("user:read", nil))
	r, _ := newRequest(http.MethodGet, "/x", "Bearer "+tok)
	checkRefused(t, serve(t, h, r), http.StatusForbidden, errInsufficientScope)
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d log entries, want 1", len(entries))
	}
	if entries[0].Level != zapcore.InfoLevel {
		t.Errorf("logged at %v, want info", entries[0].Level)
	}
	fields := entries[0].ContextMap()
	if fields["error"] != errInsufficientScope || fields["status"] != int64(http.StatusForbidden) ||
		fields["reason"] != "token lacks a required scope" || fields["path"] != "/x" {
		t.Errorf("log fields %v", fields)
	}
	for k, v := range fields {
		if s, ok := v.(string); ok && strings.Contains(s, tok[:20]) {
			t.Errorf("log field %s carries the token", k)
		}
	}
}

// TestConcurrent runs one provisioned handler from many goroutines, as Caddy
// does, for the race detector: shared rules, verifier cache and claims.
func TestConcurrent(t *testing.T) {
	f := newFixture(t)
	h := newHandler(t, f, &Scope{
		Rules:          []Rule{{Methods: []string{"GET"}, Scopes: []string{"user:read"}}},
		ForwardHeaders: map[string]string{"X-Tenant": "{oauth.claims.tenant}"},
	})
	tok := f.token(t, claims("user:read", map[string]any{"tenant": "acme"}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				r, repl := newRequest(http.MethodGet, "/", "Bearer "+tok)
				res := serve(t, h, r)
				if res.calls != 1 {
					t.Errorf("refused: %d", res.rec.Code)
					return
				}
				if v, _ := repl.GetString("oauth.claims.tenant"); v != "acme" {
					t.Errorf("tenant = %q", v)
				}
				if v := res.nextHeader.Get("X-Tenant"); v != "acme" {
					t.Errorf("X-Tenant = %q", v)
				}
			}
		})
	}
	wg.Wait()
}

// TestRefusalLogNoQueryToken: a token sent in the query is refused and the
// debug log names the path only, not the query that carries the token.
func TestRefusalLogNoQueryToken(t *testing.T) {
	f := newFixture(t)
	core, logs := observer.New(zapcore.DebugLevel)
	h := &Scope{Rules: []Rule{{Methods: []string{"GET"}}}}
	if err := h.provision(f.auth, zap.New(core)); err != nil {
		t.Fatal(err)
	}
	tok := f.token(t, claims("user:read", nil))
	r, _ := newRequest(http.MethodGet, "/x?access_token="+tok)
	checkRefused(t, serve(t, h, r), http.StatusBadRequest, errInvalidRequest)
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d log entries, want 1", len(entries))
	}
	for k, v := range entries[0].ContextMap() {
		if s, ok := v.(string); ok && strings.Contains(s, tok[:20]) {
			t.Errorf("log field %s carries the token: %q", k, s)
		}
	}
}

// TestRevokedTokenRefused: a token revoked by jti (RFC 7009 §2), or issued
// before its client's revocation mark, is refused with invalid_token (RFC
// 6750 §3.1: "revoked"); other tokens of the client still pass.
func TestRevokedTokenRefused(t *testing.T) {
	f := newFixture(t)
	h := newHandler(t, f, &Scope{})
	f.auth.revoked = map[string]bool{"jti-revoked": true}

	r, _ := newRequest(http.MethodGet, "/", "Bearer "+f.token(t, claims("s", map[string]any{"jti": "jti-revoked"})))
	checkRefused(t, serve(t, h, r), http.StatusUnauthorized, errInvalidToken)
	r, _ = newRequest(http.MethodGet, "/", "Bearer "+f.token(t, claims("s", map[string]any{"jti": "jti-live"})))
	if res := serve(t, h, r); res.calls != 1 {
		t.Fatalf("live token refused: %d %s", res.rec.Code, res.rec.Body)
	}

	info := f.auth.clients[testClientID]
	info.RevokedBefore = time.Now().Add(time.Minute)
	f.auth.clients[testClientID] = info
	r, _ = newRequest(http.MethodGet, "/", "Bearer "+f.token(t, claims("s", map[string]any{"jti": "jti-live"})))
	checkRefused(t, serve(t, h, r), http.StatusUnauthorized, errInvalidToken)
}

// TestClientUnreadableIs503: issue 15. When the authorization server
// cannot read a local token's client (a store-kept client during a store
// outage, or one whose revocation mark it never read), the token is
// neither accepted (it may have been revoked) nor refused with 401 (the
// client would throw a valid token away): 503 temporarily_unavailable with
// Retry-After, which the client retries with the same token.
func TestClientUnreadableIs503(t *testing.T) {
	f := newFixture(t)
	h := newHandler(t, f, &Scope{})
	f.auth.clientErr = errors.New("the store is unavailable")
	r, _ := newRequest(http.MethodGet, "/", "Bearer "+f.token(t, claims("s", nil)))
	res := serve(t, h, r)
	if res.calls != 0 || res.rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("unreadable client: %d (passed on %d times), want 503", res.rec.Code, res.calls)
	}
	if ra := res.rec.Header().Get("Retry-After"); ra == "" {
		t.Error("503 without Retry-After")
	}
	if ch := res.rec.Header().Get("WWW-Authenticate"); !strings.Contains(ch+res.rec.Body.String(), "temporarily_unavailable") {
		t.Errorf("503 does not say temporarily_unavailable: %q %s", ch, res.rec.Body)
	}
	f.auth.clientErr = nil
	r, _ = newRequest(http.MethodGet, "/", "Bearer "+f.token(t, claims("s", nil)))
	if res := serve(t, h, r); res.calls != 1 {
		t.Fatalf("once readable again: %d %s", res.rec.Code, res.rec.Body)
	}
}
