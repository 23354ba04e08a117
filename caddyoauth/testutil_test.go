package caddyoauth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap/zaptest"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

const (
	testIssuer = "https://as.example"

	// svcID/svcSecret is the confidential client most tests use; its
	// secret is registered as a SHA-256 hash.
	svcID     = "reports-service"
	svcSecret = "svc-secret-0123456789-abcdefghijklmnopqrstu"

	// readerID may only get user:read.
	readerID     = "reader"
	readerSecret = "reader-secret-0123456789abcdef"
)

// sha256Hex is the secret_hash form documented for `caddy oauth-secret`:
// "sha256:" and the 64 lower-case hex digits of SHA-256 (FIPS 180-4).
// Computed here, independently of HashSecret.
func sha256Hex(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// argon2idHash renders an argon2id PHC string in the format `caddy
// hash-password --algorithm argon2id` prints, with cheap parameters so the
// tests stay fast under -race.
func argon2idHash(secret string) string {
	salt := []byte("fixed-test-salt!")
	const mem, iter, threads = 64, 1, 1
	key := argon2.IDKey([]byte(secret), salt, iter, mem, threads, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, mem, iter, threads, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// baseConfig returns an unprovisioned app with two confidential clients.
func baseConfig() *App {
	return &App{
		Issuer: testIssuer,
		Clients: []*Client{
			{ClientSettings: ClientSettings{ID: svcID, Name: "Reports service", Scopes: []string{"user:read", "user:write"}, Metadata: map[string]string{"tier": "gold"}}, SecretHash: sha256Hex(svcSecret)},
			{ClientSettings: ClientSettings{ID: readerID, Scopes: []string{"user:read"}}, Secret: readerSecret},
		},
	}
}

// newStorage returns a Caddy file storage in a fresh temporary directory.
func newStorage(t testing.TB) certmagic.Storage {
	t.Helper()
	return &certmagic.FileStorage{Path: t.TempDir()}
}

// provisionApp provisions a on storage and fails the test on error.
func provisionApp(t testing.TB, a *App, storage certmagic.Storage) *App {
	t.Helper()
	if err := a.provision(t.Context(), storage, zaptest.NewLogger(t)); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return a
}

// newApp provisions a (baseConfig() when nil) on fresh storage.
func newApp(t testing.TB, a *App) *App {
	t.Helper()
	if a == nil {
		a = baseConfig()
	}
	return provisionApp(t, a, newStorage(t))
}

// newServer provisions an oauth_server handler for app.
func newServer(t testing.TB, app *App, prefix string) *Server {
	t.Helper()
	s := &Server{Prefix: prefix}
	if err := s.provision(app, zaptest.NewLogger(t)); err != nil {
		t.Fatalf("server provision: %v", err)
	}
	return s
}

// newTestServer is newServer(newApp(cfg), "").
func newTestServer(t testing.TB, cfg *App) *Server {
	t.Helper()
	return newServer(t, newApp(t, cfg), "")
}

// serve runs r through s and reports whether s passed it to the next handler.
func serve(t testing.TB, s *Server, r *http.Request) (rec *httptest.ResponseRecorder, nextCalled bool) {
	t.Helper()
	rec = httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		nextCalled = true
		w.WriteHeader(http.StatusTeapot)
		return nil
	})
	if err := s.ServeHTTP(rec, r, next); err != nil {
		t.Fatalf("ServeHTTP returned error: %v", err)
	}
	return rec, nextCalled
}

// tokenRequest is a form POST to the default token endpoint.
func tokenRequest(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// basicAuth builds the RFC 6749 §2.3.1 Authorization value: client_id and
// secret are each form-urlencoded (Appendix B), then joined with ":" and
// base64-encoded as RFC 7617 §2 describes.
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// postToken sends form as client_secret_post (or without credentials when
// the form has none) and returns the recorder.
func postToken(t testing.TB, s *Server, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	rec, next := serve(t, s, tokenRequest(form.Encode()))
	if next {
		t.Fatal("token request was passed to the next handler")
	}
	return rec
}

// basicToken sends form with HTTP Basic client credentials.
func basicToken(t testing.TB, s *Server, id, secret string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	r := tokenRequest(form.Encode())
	r.Header.Set("Authorization", basicAuth(id, secret))
	rec, next := serve(t, s, r)
	if next {
		t.Fatal("token request was passed to the next handler")
	}
	return rec
}

// ccForm is a client_credentials request body, with extra key/value pairs.
func ccForm(kv ...string) url.Values {
	f := url.Values{"grant_type": {"client_credentials"}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// tokenBody is the RFC 6749 §5.1 success body, decoded loosely so that
// member types can be checked.
type tokenBody struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// assertNoStore checks the RFC 6749 §5.1 caching headers (§5.2 applies the
// same to errors).
func assertNoStore(t testing.TB, h http.Header) {
	t.Helper()
	if got := h.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store (RFC 6749 §5.1)", got)
	}
	if got := h.Get("Pragma"); got != "no-cache" {
		t.Errorf("Pragma = %q, want no-cache (RFC 6749 §5.1)", got)
	}
}

// assertJSON checks that the response is application/json (RFC 6749 §5.1).
func assertJSON(t testing.TB, h http.Header) {
	t.Helper()
	ct := h.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); strings.TrimSpace(mt) != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
}

// decodeTokenResponse checks a 200 token response and returns its body.
func decodeTokenResponse(t testing.TB, rec *httptest.ResponseRecorder) tokenBody {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
	}
	assertJSON(t, rec.Header())
	assertNoStore(t, rec.Header())
	var raw map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, rec.Body)
	}
	// RFC 6749 §5.1: access_token and token_type are strings, expires_in a number.
	if _, ok := raw["access_token"].(string); !ok {
		t.Errorf("access_token missing or not a string: %s", rec.Body)
	}
	if _, ok := raw["token_type"].(string); !ok {
		t.Errorf("token_type missing or not a string: %s", rec.Body)
	}
	if _, ok := raw["expires_in"].(float64); !ok {
		t.Errorf("expires_in missing or not a number: %s", rec.Body)
	}
	if _, has := raw["refresh_token"]; has {
		t.Errorf("refresh_token in a client_credentials response (RFC 6749 §4.4.3 says SHOULD NOT): %s", rec.Body)
	}
	var body tokenBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(body.TokenType, "Bearer") {
		t.Errorf("token_type = %q, want Bearer (RFC 6750 §4, case-insensitive per RFC 6749 §7.1)", body.TokenType)
	}
	return body
}

// errorCharsOK reports whether s uses only the characters RFC 6749 §5.2
// allows in error and error_description: %x20-21 / %x23-5B / %x5D-7E.
func errorCharsOK(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

// assertOAuthError checks an RFC 6749 §5.2 error response.
func assertOAuthError(t testing.TB, rec *httptest.ResponseRecorder, status int, code string) map[string]any {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	assertJSON(t, rec.Header())
	assertNoStore(t, rec.Header())
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body is not JSON: %v: %q", err, rec.Body)
	}
	got, ok := body["error"].(string)
	if !ok || got != code {
		t.Errorf("error = %v, want %q; body %s", body["error"], code, rec.Body)
	}
	if !errorCharsOK(got) || strings.ContainsAny(got, " ") {
		t.Errorf("error %q has characters outside RFC 6749 §5.2", got)
	}
	if d, has := body["error_description"]; has {
		ds, ok := d.(string)
		if !ok || !errorCharsOK(ds) {
			t.Errorf("error_description %q has characters outside RFC 6749 §5.2", d)
		}
	}
	if _, has := body["access_token"]; has {
		t.Errorf("error response carries an access_token: %s", rec.Body)
	}
	return body
}

// basicChallenge reports whether the response challenges with the Basic
// scheme (RFC 6749 §5.2; schemes are case-insensitive, RFC 9110 §11.1).
func basicChallenge(h http.Header) bool {
	for _, v := range h.Values("WWW-Authenticate") {
		if len(v) >= 6 && strings.EqualFold(v[:6], "Basic ") {
			return true
		}
	}
	return false
}

// jwtSegments decodes the header and payload of a compact JWS.
func jwtSegments(t testing.TB, tok string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3 (RFC 7515 §7.1)", len(parts))
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("segment is not base64url without padding (RFC 7515 §2): %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("segment is not a JSON object: %v", err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

// b64 is standard base64 with padding, as RFC 7617 §2 uses.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// bcryptHash hashes secret with bcrypt at the minimum cost, to keep tests
// fast under -race; the cost is part of the hash, so verification is the
// same code path as for `caddy hash-password` output (cost 14).
func bcryptHash(t testing.TB, secret string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// tokenEndpointServer serves s's token endpoint on a loopback HTTP server,
// for client libraries that want a URL.
func tokenEndpointServer(t *testing.T, s *Server) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = "/oauth2/token"
		rec, _ := serve(t, s, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv
}
