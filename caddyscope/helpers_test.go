package caddyscope

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

const (
	testIssuer   = "https://as.example"
	testAudience = "https://api.example"
	testClientID = "reports-service"
)

// testAuthority is the oauthjwt.Authority the handler provisions with: a
// real verifier over a real keyring, and a fixed client registry.
type testAuthority struct {
	verifier *oauthjwt.Verifier
	clients  map[string]oauthjwt.ClientInfo
	revoked  map[string]bool // jti
	declared []string        // DeclareResource calls
	// clientErr, when set, is Client's answer for every id: a store
	// that cannot be read.
	clientErr error
}

func (a *testAuthority) DeclareResource(uri string) { a.declared = append(a.declared, uri) }

func (a *testAuthority) Verifier() *oauthjwt.Verifier { return a.verifier }

func (a *testAuthority) TokenAudience() string { return testAudience }

func (a *testAuthority) Revoked(jti string) bool { return a.revoked[jti] }

func (a *testAuthority) Client(id string) (oauthjwt.ClientInfo, bool, error) {
	if a.clientErr != nil {
		return oauthjwt.ClientInfo{}, false, a.clientErr
	}
	c, ok := a.clients[id]
	return c, ok, nil
}

// fixture holds a signing keyring and the authority that trusts it.
type fixture struct {
	kr   *oauthjwt.Keyring
	auth *testAuthority
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	kr := newTestKeyring(t)
	return &fixture{
		kr: kr,
		auth: &testAuthority{
			verifier: oauthjwt.NewVerifier(oauthjwt.VerifierConfig{
				Issuer:                 testIssuer,
				Keys:                   kr,
				RequireAccessTokenType: true,
			}),
			clients: map[string]oauthjwt.ClientInfo{
				testClientID: {
					ID: testClientID, Name: "Reports service", Metadata: map[string]string{"tier": "gold"},
					// Every scope the tests' tokens carry: the handler also
					// requires the client to still be allowed the scope.
					Scopes: []string{
						"user:read", "user:write", "notes:read", "notes:write", "audit",
						"r", "w", "read", "write", "admin", "s", "any", "a", "b",
						"h", "meta", "diag", "base", "lecture", "écriture",
					},
				},
			},
		},
	}
}

// claims returns a valid RFC 9068 §2.2 payload granting scope (a string, a
// []string, or nil for none); set a key to nil to leave the claim out.
func claims(scope any, override map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss":       testIssuer,
		"sub":       "svc-subject",
		"aud":       testAudience,
		"exp":       now.Add(time.Hour).Unix(),
		"iat":       now.Unix(),
		"jti":       "jti-42",
		"client_id": testClientID,
	}
	if scope != nil {
		c["scope"] = scope
	}
	return applyChanges(c, override)
}

// token signs c with the fixture's active key.
func (f *fixture) token(t testing.TB, c any) string {
	t.Helper()
	tok, err := f.kr.SignAccessToken(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// rawToken assembles a JWS with any header, for tokens SignAccessToken
// would never make (alg none, unknown kid, wrong typ).
func rawToken(header map[string]any, c any, sign func(string) []byte) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(c)
	enc := base64.RawURLEncoding
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	return in + "." + enc.EncodeToString(sign(in))
}

// newHandler provisions s against the fixture's authority.
func newHandler(t testing.TB, f *fixture, s *Scope) *Scope {
	t.Helper()
	if err := s.provision(f.auth, zap.NewNop()); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return s
}

// newRequest builds a request carrying a Caddy replacer, as the Caddy HTTP
// server does, with one Authorization header per authz value.
func newRequest(method, target string, authz ...string) (*http.Request, *caddy.Replacer) {
	r := httptest.NewRequest(method, target, nil)
	for _, a := range authz {
		r.Header.Add("Authorization", a)
	}
	repl := caddy.NewReplacer()
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)), repl
}

// result is what one ServeHTTP call did.
type result struct {
	rec     *httptest.ResponseRecorder
	err     error
	calls   int           // how many times next ran
	nextReq *http.Request // the request next received
	// headers next saw, copied when it ran
	nextHeader http.Header
}

// serve runs h on r with a next handler that records what it receives and
// answers 200 "next".
func serve(t testing.TB, h *Scope, r *http.Request) result {
	t.Helper()
	var res result
	res.rec = httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		res.calls++
		res.nextReq = r
		res.nextHeader = r.Header.Clone()
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("next"))
		return nil
	})
	res.err = h.ServeHTTP(res.rec, r, next)
	return res
}

// errorBodyJSON is the JSON body of a refusal.
type errorBodyJSON struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Scope       string `json:"scope"`
}

// The error codes of RFC 6750 §3.1.
var rfc6750Codes = []string{"invalid_request", "invalid_token", "insufficient_scope"}

// checkRefused checks a refusal: the status, that next did not run, and a
// JSON body with error and error_description that is not cached (RFC 6749
// §5.1 asks for no-store on token responses; a refusal naming the reason
// must not be cached for another caller either).
// checkUnavailable checks the answer to a token its issuer could not
// check: 503, a Retry-After in whole seconds, no challenge (the token is
// not at fault).
func checkUnavailable(t testing.TB, res result) errorBodyJSON {
	t.Helper()
	body := checkRefused(t, res, http.StatusServiceUnavailable, "temporarily_unavailable")
	if n, err := strconv.Atoi(res.rec.Header().Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After = %q, want whole seconds >= 1", res.rec.Header().Get("Retry-After"))
	}
	if ch := res.rec.Header().Get("WWW-Authenticate"); ch != "" {
		t.Errorf("WWW-Authenticate = %q on a 503: the token is not at fault", ch)
	}
	return body
}

func checkRefused(t testing.TB, res result, status int, code string) errorBodyJSON {
	t.Helper()
	if res.err != nil {
		t.Fatalf("ServeHTTP returned %v; refusals are written, not returned", res.err)
	}
	if res.calls != 0 {
		t.Fatalf("next ran %d times on a refused request", res.calls)
	}
	if got := res.rec.Code; got != status {
		t.Fatalf("status = %d, want %d (body %s)", got, status, res.rec.Body)
	}
	if got := res.rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if ct := res.rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body errorBodyJSON
	if err := json.Unmarshal(res.rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", res.rec.Body, err)
	}
	if code != "" && body.Error != code {
		t.Errorf("body error = %q, want %q", body.Error, code)
	}
	if body.Error == "" {
		t.Error("body has no error member")
	}
	if body.Description == "" {
		t.Error("body has no error_description member")
	}
	return body
}

// challenge is a parsed WWW-Authenticate Bearer challenge.
type challenge map[string]string

// parseChallenge parses value strictly as RFC 6750 §3 writes a challenge:
//
//	challenge = "Bearer" [ 1*SP 1#param ], param = attr "=" quoted-string
//
// The attribute values RFC 6750 defines (realm, scope, error,
// error_description) exclude '"' and '\', so a quoted-string here never
// needs an escape: a '\' in a value, or a '"' that breaks the structure,
// fails the parse. An attribute may appear once (RFC 6750 §3, RFC 9110 §11.2).
func parseChallenge(t testing.TB, value string) challenge {
	t.Helper()
	rest, ok := strings.CutPrefix(value, "Bearer")
	if !ok {
		t.Fatalf("challenge %q: scheme is not Bearer", value)
	}
	ch := challenge{}
	if rest == "" {
		return ch
	}
	rest, ok = strings.CutPrefix(rest, " ")
	if !ok {
		t.Fatalf("challenge %q: no SP after the scheme", value)
	}
	for {
		rest = strings.TrimLeft(rest, " ")
		name, after, ok := strings.Cut(rest, `="`)
		if !ok || name == "" || strings.ContainsAny(name, " ,\"\\") {
			t.Fatalf("challenge %q: bad parameter at %q", value, rest)
		}
		val, after, ok := strings.Cut(after, `"`)
		if !ok {
			t.Fatalf("challenge %q: unterminated value of %s", value, name)
		}
		if strings.Contains(val, `\`) {
			t.Fatalf("challenge %q: %s has a backslash", value, name)
		}
		if _, dup := ch[name]; dup {
			t.Fatalf("challenge %q: %s appears twice", value, name)
		}
		ch[name] = val
		if after == "" {
			break
		}
		rest, ok = strings.CutPrefix(after, ",")
		if !ok {
			t.Fatalf("challenge %q: junk %q after %s", value, after, name)
		}
	}
	// Every '"' in the header is one of the delimiters parsed above.
	if n := strings.Count(value, `"`); n != 2*len(ch) {
		t.Fatalf("challenge %q: %d quotes for %d attributes", value, n, len(ch))
	}
	checkChallengeValues(t, value, ch)
	return ch
}

// checkChallengeValues checks each attribute against its RFC 6750 grammar.
func checkChallengeValues(t testing.TB, value string, ch challenge) {
	t.Helper()
	for name, v := range ch {
		switch name {
		case "error", "error_description":
			// §3: error = 1*( %x20-21 / %x23-5B / %x5D-7E ), same for
			// error_description.
			if v == "" {
				t.Errorf("challenge %q: empty %s", value, name)
			}
			for i := 0; i < len(v); i++ {
				if c := v[i]; c < 0x20 || c == 0x22 || c == 0x5c || c > 0x7e {
					t.Errorf("challenge %q: %s has byte %#x outside RFC 6750 §3", value, name, c)
				}
			}
		case "scope":
			// §3: scope = scope-token *( SP scope-token ) (RFC 6749 §3.3).
			if _, err := oauthjwt.ParseScope(v); err != nil || v == "" {
				t.Errorf("challenge %q: scope %q is not a scope list", value, v)
			}
		case "realm":
		default:
			t.Errorf("challenge %q: unexpected attribute %s", value, name)
		}
	}
	if e, ok := ch["error"]; ok && !slices.Contains(rfc6750Codes, e) {
		t.Errorf("challenge %q: error %q is not an RFC 6750 §3.1 code", value, e)
	}
}

// sameScopes compares space-delimited scope lists as sets: RFC 6749 §3.3
// gives the order no meaning.
func sameScopes(a, b string) bool {
	x, y := strings.Fields(a), strings.Fields(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// normalizedHeaderKeys lists the keys of h that, ignoring case and reading
// '_' as '-', equal name.
func normalizedHeaderKeys(h http.Header, name string) []string {
	want := strings.ReplaceAll(strings.ToLower(name), "_", "-")
	var out []string
	for k := range h {
		if strings.ReplaceAll(strings.ToLower(k), "_", "-") == want {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// get sends GET / with token through h.
func get(t testing.TB, h *Scope, token string) result {
	t.Helper()
	r, _ := newRequest(http.MethodGet, "/", "Bearer "+token)
	return serve(t, h, r)
}

func mustAccept(t testing.TB, res result) {
	t.Helper()
	if res.err != nil || res.calls != 1 {
		t.Fatalf("refused: status %d, err %v, body %s", res.rec.Code, res.err, res.rec.Body)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
