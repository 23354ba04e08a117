package caddyoauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestParseBasicCredentials: RFC 7617 §2 user-pass with the RFC 6749
// §2.3.1 rule that client_id and secret are form-urlencoded first.
func TestParseBasicCredentials(t *testing.T) {
	tests := []struct {
		name, value, id, secret string
		ok                      bool
	}{
		{"plain", "Basic " + b64("svc:secret"), "svc", "secret", true},
		{"encoded colon in id (§2.3.1)", "Basic " + b64("urn%3Asvc:secret"), "urn:svc", "secret", true},
		{"colon in secret need not be encoded (RFC 7617 §2: first colon splits)", "Basic " + b64("svc:a:b"), "svc", "a:b", true},
		{"plus is a space (Appendix B)", "Basic " + b64("svc:a+b"), "svc", "a b", true},
		{"%2B is a plus (Appendix B)", "Basic " + b64("svc:a%2Bb"), "svc", "a+b", true},
		{"percent-encoded percent (Appendix B)", "Basic " + b64("svc:100%25"), "svc", "100%", true},
		{"empty secret", "Basic " + b64("svc:"), "svc", "", true},
		{"extra spaces around the token", "Basic   " + b64("svc:s") + "  ", "svc", "s", true},
		{"empty id (§2.3.1 client_id required)", "Basic " + b64(":secret"), "", "", false},
		{"no colon (RFC 7617 §2)", "Basic " + b64("svc"), "", "", false},
		{"not base64", "Basic ***", "", "", false},
		{"unpadded base64 (RFC 7617 §2 uses RFC 4648 §4)", "Basic " + base64.RawStdEncoding.EncodeToString([]byte("svc:s")), "", "", false},
		{"bad escape in id", "Basic " + b64("%zz:s"), "", "", false},
		{"bad escape in secret", "Basic " + b64("svc:%"), "", "", false},
		{"empty credentials", "Basic ", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, secret, ok := parseBasicCredentials(tt.value)
			if ok != tt.ok || id != tt.id || secret != tt.secret {
				t.Fatalf("parseBasicCredentials(%q) = %q, %q, %v; want %q, %q, %v", tt.value, id, secret, ok, tt.id, tt.secret, tt.ok)
			}
		})
	}
}

// TestHasScheme: auth schemes are case-insensitive tokens followed by a
// space (RFC 9110 §11.1, §11.4).
func TestHasScheme(t *testing.T) {
	tests := []struct {
		value string
		want  bool
	}{
		{"Basic abc", true},
		{"basic abc", true},
		{"BASIC abc", true},
		{"Basic ", true}, // the scheme; empty credentials fail later
		{"Basic", false},
		{"Basicabc", false},
		{"Bearer abc", false},
		{"Basi abc", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := hasScheme(tt.value, "Basic"); got != tt.want {
			t.Errorf("hasScheme(%q) = %v, want %v", tt.value, got, tt.want)
		}
	}
}

// TestReadClientCredentials: which client authentication method a request
// uses (RFC 6749 §2.3), and the refusals of §2.3 ("MUST NOT use more than
// one authentication method in each request").
func TestReadClientCredentials(t *testing.T) {
	tests := []struct {
		name    string
		authz   []string
		form    url.Values
		want    clientCredentials
		errCode string
	}{
		{name: "basic", authz: []string{basicAuth("svc", "s")}, want: clientCredentials{method: authBasic, id: "svc", secret: "s"}},
		{name: "basic + same client_id", authz: []string{basicAuth("svc", "s")}, form: url.Values{"client_id": {"svc"}}, want: clientCredentials{method: authBasic, id: "svc", secret: "s"}},
		{name: "post", form: url.Values{"client_id": {"svc"}, "client_secret": {"s"}}, want: clientCredentials{method: authPost, id: "svc", secret: "s"}},
		{name: "client_id only", form: url.Values{"client_id": {"svc"}}, want: clientCredentials{method: authNone, id: "svc"}},
		{name: "nothing", want: clientCredentials{}},
		{name: "bearer is not client authentication", authz: []string{"Bearer xyz"}, form: url.Values{"client_id": {"svc"}, "client_secret": {"s"}}, want: clientCredentials{method: authPost, id: "svc", secret: "s"}},
		{name: "basic + client_secret (§2.3)", authz: []string{basicAuth("svc", "s")}, form: url.Values{"client_secret": {"s"}}, errCode: "invalid_request"},
		{name: "basic + other client_id", authz: []string{basicAuth("svc", "s")}, form: url.Values{"client_id": {"other"}}, errCode: "invalid_request"},
		{name: "two Authorization headers", authz: []string{basicAuth("svc", "s"), "Bearer x"}, errCode: "invalid_request"},
		{name: "client_secret alone", form: url.Values{"client_secret": {"s"}}, errCode: "invalid_request"},
		{name: "malformed basic", authz: []string{"Basic %%%"}, errCode: "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
			for _, a := range tt.authz {
				r.Header.Add("Authorization", a)
			}
			form := tt.form
			if form == nil {
				form = url.Values{}
			}
			got, oerr := readClientCredentials(r, form)
			if tt.errCode != "" {
				if oerr == nil || oerr.Code != tt.errCode {
					t.Fatalf("got %+v, %+v; want error %s", got, oerr, tt.errCode)
				}
				return
			}
			if oerr != nil || got.method != tt.want.method || got.id != tt.want.id || got.secret != tt.want.secret {
				t.Fatalf("got %+v, %v; want %+v", got, oerr, tt.want)
			}
		})
	}
}

// TestAuthenticate: every failure is invalid_client (RFC 6749 §5.2).
func TestAuthenticate(t *testing.T) {
	a := newApp(t, nil)
	tests := []struct {
		name string
		cc   clientCredentials
		ok   bool
	}{
		{"basic right", clientCredentials{method: authBasic, id: svcID, secret: svcSecret}, true},
		{"post right", clientCredentials{method: authPost, id: readerID, secret: readerSecret}, true},
		{"basic wrong", clientCredentials{method: authBasic, id: svcID, secret: readerSecret}, false},
		{"post wrong", clientCredentials{method: authPost, id: svcID, secret: readerSecret}, false},
		{"basic unknown", clientCredentials{method: authBasic, id: "nobody", secret: svcSecret}, false},
		{"post unknown", clientCredentials{method: authPost, id: "nobody", secret: svcSecret}, false},
		{"none for a confidential client", clientCredentials{method: authNone, id: svcID, secret: ""}, false},
		{"none unknown", clientCredentials{method: authNone, id: "nobody", secret: ""}, false},
		{"nothing", clientCredentials{}, false},
		{"the stand-in for unknown clients is not a client", clientCredentials{method: authPost, id: newFakeClient().ID, secret: "\x00no client has this secret"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, oerr := a.authenticate(context.Background(), tt.cc)
			if tt.ok {
				if oerr != nil || c == nil || c.ID != tt.cc.id {
					t.Fatalf("got %v, %v; want client %s", c, oerr, tt.cc.id)
				}
				return
			}
			if c != nil || oerr == nil {
				t.Fatalf("authenticated as %v", c)
			}
			// 400 here; the endpoint makes it 401 when Basic was used
			// (challengeIfBasic, TestClientAuthFailureChallenge).
			if oerr.Code != "invalid_client" || oerr.Status != http.StatusBadRequest {
				t.Fatalf("error %+v, want 400 invalid_client", oerr)
			}
		})
	}
}

// FuzzParseBasicCredentials: parseBasicCredentials never panics on any
// value that its caller passes it (one that hasScheme accepted), and for
// any client_id and secret, the RFC 6749 §2.3.1 encoding
// base64(urlencode(id) ":" urlencode(secret)) parses back to exactly them
// when the id is not empty.
func FuzzParseBasicCredentials(f *testing.F) {
	f.Add("Basic "+b64("svc:secret"), "svc", "secret")
	f.Add("Basic ", "urn:svc", "a+b%20c:d")
	f.Add("basic ::", "", "x")
	f.Add("Basic "+b64(":"), "a b", "")
	f.Add("Basic "+b64("%zz:%"), "é\x00", "\xff")
	f.Add("Basic  ====", "%", "%25")
	f.Fuzz(func(t *testing.T, header, id, secret string) {
		if hasScheme(header, "Basic") {
			gotID, _, ok := parseBasicCredentials(header)
			if ok && gotID == "" {
				t.Fatalf("accepted %q with an empty client_id", header)
			}
		}

		enc := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
		gotID, gotSecret, ok := parseBasicCredentials("Basic " + enc)
		if id == "" {
			if ok {
				t.Fatalf("empty client_id accepted (secret %q)", secret)
			}
			return
		}
		if !ok || gotID != id || gotSecret != secret {
			t.Fatalf("round trip of %q/%q: got %q/%q ok=%v", id, secret, gotID, gotSecret, ok)
		}
		// The same credentials through the request reader.
		r := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
		r.Header.Set("Authorization", "Basic "+enc)
		cc, oerr := readClientCredentials(r, url.Values{})
		if oerr != nil || cc.method != authBasic || cc.id != id || cc.secret != secret {
			t.Fatalf("readClientCredentials: %+v, %v", cc, oerr)
		}
	})
}

// TestClientAuthFailureChallenge: RFC 6749 §5.2, invalid_client "MAY
// return an HTTP 401 ... If the client attempted to authenticate via the
// Authorization request header field, the authorization server MUST
// respond with an HTTP 401 (Unauthorized) status code and include the
// WWW-Authenticate response header field matching the authentication
// scheme used by the client." A client that did not use the header gets
// 400 and no challenge: a 401 must carry one (RFC 9110 §15.5.2), and Basic
// is not how that client authenticates. The same holds at the
// introspection (RFC 7662 §2.1) and revocation (RFC 7009 §2.1) endpoints,
// which authenticate clients the same way.
func TestClientAuthFailureChallenge(t *testing.T) {
	f := newAssertionFixture(t)
	badAssertion := f.assertion(func(c jwt.MapClaims, _ *jwt.Token) { c["aud"] = "https://other.example" })
	for _, tc := range []struct {
		name   string
		authz  string
		form   url.Values
		status int
	}{
		{"Basic, wrong secret", basicAuth(svcID, "wrong-secret-0123456789"), nil, http.StatusUnauthorized},
		{"Basic, unknown client", basicAuth("nobody", svcSecret), nil, http.StatusUnauthorized},
		{"Basic, malformed", "Basic !!!", nil, http.StatusUnauthorized},
		{"basic scheme in lower case (RFC 9110 §11.1)", "basic " + b64(svcID+":wrong"), nil, http.StatusUnauthorized},
		{"client_secret_post, wrong secret", "", url.Values{"client_id": {svcID}, "client_secret": {"wrong-secret-0123456789"}}, http.StatusBadRequest},
		{"client_secret_post, unknown client", "", url.Values{"client_id": {"nobody"}, "client_secret": {svcSecret}}, http.StatusBadRequest},
		{"private_key_jwt, bad assertion", "", url.Values{"client_assertion_type": {assertType}, "client_assertion": {badAssertion}}, http.StatusBadRequest},
		{"client_id alone for a confidential client (RFC 6749 §3.2.1)", "", url.Values{"client_id": {svcID}}, http.StatusBadRequest},
		{"nothing", "", nil, http.StatusBadRequest},
		{"a Bearer header is not client authentication", "Bearer abc", nil, http.StatusBadRequest},
	} {
		for _, ep := range []struct{ path, param, value string }{
			{"/oauth2/token", "grant_type", "client_credentials"},
			{"/oauth2/introspect", "token", "abc"},
			{"/oauth2/revoke", "token", "abc"},
		} {
			t.Run(tc.name+" "+ep.path, func(t *testing.T) {
				form := url.Values{ep.param: {ep.value}}
				for k, v := range tc.form {
					form[k] = v
				}
				r := httptest.NewRequest(http.MethodPost, ep.path, strings.NewReader(form.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if tc.authz != "" {
					r.Header.Set("Authorization", tc.authz)
				}
				rec, _ := serve(t, f.s, r)
				assertOAuthError(t, rec, tc.status, errInvalidClient)
				challenges := rec.Header().Values("WWW-Authenticate")
				if tc.status == http.StatusUnauthorized {
					if !basicChallenge(rec.Header()) || !strings.Contains(challenges[0], "realm=") {
						t.Errorf("WWW-Authenticate %q, want a Basic challenge with a realm", challenges)
					}
				} else if len(challenges) != 0 {
					t.Errorf("WWW-Authenticate %q on a %d", challenges, rec.Code)
				}
			})
		}
	}
}

// TestOAuth2AutoDetectAuthStyle: golang.org/x/oauth2 with
// AuthStyleAutoDetect tries the Authorization header first and, on any
// error, the request body (internal.RetrieveToken). The status of the
// failure does not change that: with a wrong secret it sees 401 (Basic)
// then 400 (body) and reports the second, invalid_client; with the right
// secret the header works at once.
func TestOAuth2AutoDetectAuthStyle(t *testing.T) {
	s := newTestServer(t, nil)
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = "/oauth2/token"
		rec, _ := serve(t, s, r)
		style := "body"
		if r.Header.Get("Authorization") != "" {
			style = "header"
		}
		seen = append(seen, fmt.Sprintf("%s %d %q", style, rec.Code, rec.Header().Get("WWW-Authenticate")))
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)

	cfg := clientcredentials.Config{ClientID: svcID, ClientSecret: "wrong-secret-0123456789", TokenURL: srv.URL, AuthStyle: oauth2.AuthStyleAutoDetect}
	_, err := cfg.Token(t.Context())
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != errInvalidClient || re.Response.StatusCode != http.StatusBadRequest {
		t.Fatalf("wrong secret: %v, want invalid_client from the second (body) try", err)
	}
	want := []string{`header 401 "Basic realm=\"oauth\", charset=\"UTF-8\""`, `body 400 ""`}
	if !slices.Equal(seen, want) {
		t.Errorf("tries %q, want %q", seen, want)
	}

	seen = nil
	cfg.ClientSecret = svcSecret
	if _, err := cfg.Token(t.Context()); err != nil {
		t.Fatalf("right secret: %v", err)
	}
	if len(seen) != 1 || !strings.HasPrefix(seen[0], "header 200") {
		t.Errorf("tries %q, want the header once", seen)
	}
}
