package bearer

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestParseBearer checks how the Bearer credentials of RFC 6750 §2.1 are
// recognised: credentials = "Bearer" 1*SP b64token, with the scheme name
// compared case-insensitively (RFC 9110 §11.1).
func TestParseBearer(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   string
		wantOK bool
	}{
		{"canonical (RFC 6750 §2.1)", "Bearer mF_9.B5f-4.1JqM", "mF_9.B5f-4.1JqM", true},
		{"lower-case scheme (RFC 9110 §11.1)", "bearer abc", "abc", true},
		{"upper-case scheme (RFC 9110 §11.1)", "BEARER abc", "abc", true},
		{"mixed-case scheme (RFC 9110 §11.1)", "bEaReR abc", "abc", true},
		{"several SP (1*SP, RFC 6750 §2.1)", "Bearer   abc", "abc", true},
		{"padding kept (b64token *\"=\", RFC 6750 §2.1)", "Bearer abc==", "abc==", true},
		{"no credentials after the scheme", "Bearer", "", false},
		{"HTAB is not SP (RFC 6750 §2.1)", "Bearer\tabc", "", false},
		{"no separator: another scheme name", "Bearerabc", "", false},
		{"longer scheme name", "Bearer2 abc", "", false},
		{"Basic scheme (RFC 7617)", "Basic dXNlcjpwYXNz", "", false},
		{"Digest scheme", `Digest username="u"`, "", false},
		{"empty value", "", "", false},
		{"scheme prefix only", "Bear abc", "", false},
		{"leading space before the scheme", " Bearer abc", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseScheme(tt.in, "Bearer")
			if ok != tt.wantOK || got != tt.want {
				t.Fatalf("parseScheme(%q, Bearer) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestIsB64Token checks the b64token syntax of RFC 6750 §2.1:
//
//	b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
func TestIsB64Token(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"a", true},
		{"Z9", true},
		{"-._~+/", true},
		{"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", true},
		{"abc=", true},
		{"abc==", true},
		{"abc===", true}, // *"=" has no upper bound
		{"", false},      // 1*( … )
		{"=", false},     // padding alone: no b64 character
		{"==", false},
		{"a=b", false},  // "=" only at the end
		{"=abc", false}, // "=" only at the end
		{"a b", false},
		{"a\tb", false},
		{`a"b`, false},
		{`a\b`, false},
		{"a,b", false},
		{"a:b", false},
		{"a%2Fb", false},
		{"a!b", false},
		{"a*b", false},
		{"a\x00b", false},
		{"a\x7f", false},
		{"é", false},
	}
	for _, tt := range tests {
		if got := isB64Token(tt.in); got != tt.want {
			t.Errorf("isB64Token(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestBearerToken checks where bearerToken looks for the token and how it
// refuses (RFC 6750 §2 and §3.1).
func TestBearerToken(t *testing.T) {
	tests := []struct {
		name      string
		target    string
		authz     []string
		wantToken string
		status    int    // 0: accepted
		code      string // RFC 6750 §3.1 error code, "" for none
	}{
		{"header token (RFC 6750 §2.1)", "/", []string{"Bearer abc.def"}, "abc.def", 0, ""},
		{"lower-case scheme (RFC 9110 §11.1)", "/", []string{"bearer abc"}, "abc", 0, ""},
		{"unrelated query parameters", "/?q=1&page=2", []string{"Bearer abc"}, "abc", 0, ""},
		{"access_token as a query value is not the parameter", "/?q=access_token", []string{"Bearer abc"}, "abc", 0, ""},
		{"longer parameter name is not access_token", "/?my_access_token_hint=1", []string{"Bearer abc"}, "abc", 0, ""},

		{"no Authorization: no error code (RFC 6750 §3.1)", "/", nil, "", http.StatusUnauthorized, ""},
		{"Basic scheme is no bearer token (RFC 6750 §3.1)", "/", []string{"Basic dXNlcjpwYXNz"}, "", http.StatusUnauthorized, ""},
		{"empty Authorization", "/", []string{""}, "", http.StatusUnauthorized, ""},
		{"scheme without a token", "/", []string{"Bearer"}, "", http.StatusUnauthorized, ""},

		{"not a b64token: space inside (RFC 6750 §2.1)", "/", []string{"Bearer abc def"}, "", http.StatusUnauthorized, "invalid_token"},
		{"not a b64token: quote (RFC 6750 §2.1)", "/", []string{`Bearer "abc"`}, "", http.StatusUnauthorized, "invalid_token"},
		{"not a b64token: comma (RFC 6750 §2.1)", "/", []string{"Bearer a,b"}, "", http.StatusUnauthorized, "invalid_token"},
		{"not a b64token: padding only (RFC 6750 §2.1)", "/", []string{"Bearer =="}, "", http.StatusUnauthorized, "invalid_token"},
		{"not a b64token: non-ASCII (RFC 6750 §2.1)", "/", []string{"Bearer tökén"}, "", http.StatusUnauthorized, "invalid_token"},
		{"scheme and SP but no token (RFC 6750 §2.1)", "/", []string{"Bearer "}, "", http.StatusUnauthorized, "invalid_token"},
		{"HTAB after the SP is not part of 1*SP (RFC 6750 §2.1)", "/", []string{"Bearer \tabc"}, "", http.StatusUnauthorized, "invalid_token"},

		{"two Authorization headers (RFC 6750 §3.1 invalid_request)", "/", []string{"Bearer abc", "Bearer def"}, "", http.StatusBadRequest, "invalid_request"},
		{"two headers, one Basic (RFC 6750 §3.1 invalid_request)", "/", []string{"Basic dXNlcjpwYXNz", "Bearer def"}, "", http.StatusBadRequest, "invalid_request"},
		{"access_token in the query alone (RFC 6750 §2.3, RFC 9700 §4.3.2)", "/?access_token=abc", nil, "", http.StatusBadRequest, "invalid_request"},
		{"access_token in query and header: two methods (RFC 6750 §3.1)", "/?access_token=abc", []string{"Bearer abc"}, "", http.StatusBadRequest, "invalid_request"},
		{"access_token among other parameters", "/?a=1&access_token=abc&b=2", []string{"Bearer abc"}, "", http.StatusBadRequest, "invalid_request"},
		{"access_token without a value", "/?access_token", []string{"Bearer abc"}, "", http.StatusBadRequest, "invalid_request"},
		// A query parameter name is percent-decoded (RFC 6750 §2.3 uses the
		// application/x-www-form-urlencoded format): access%5Ftoken is the
		// access_token parameter to every server that reads the query.
		{"percent-encoded parameter name (RFC 6750 §2.3)", "/?access%5Ftoken=abc", []string{"Bearer abc"}, "", http.StatusBadRequest, "invalid_request"},
		{"percent-encoded letter in the name (RFC 6750 §2.3)", "/?%61ccess_token=abc", nil, "", http.StatusBadRequest, "invalid_request"},
		// Go's query parser drops pairs with ';', but upstreams that split
		// on ';' would see the token: refused too.
		{"access_token after a semicolon", "/?a=1;access_token=abc", []string{"Bearer abc"}, "", http.StatusBadRequest, "invalid_request"},
		{"semicolon-separated without the parameter", "/?a=1;b=2", []string{"Bearer abc"}, "abc", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.target, nil)
			for _, a := range tt.authz {
				r.Header.Add("Authorization", a)
			}
			tok, berr := Token(r)
			if tt.status == 0 {
				if berr != nil {
					t.Fatalf("refused: %d %q %q", berr.Status, berr.Code, berr.Desc)
				}
				if tok != tt.wantToken {
					t.Fatalf("token = %q, want %q", tok, tt.wantToken)
				}
				return
			}
			if berr == nil {
				t.Fatalf("accepted token %q, want %d %q", tok, tt.status, tt.code)
			}
			if tok != "" {
				t.Errorf("refusal also returned token %q", tok)
			}
			if berr.Status != tt.status || berr.Code != tt.code {
				t.Fatalf("refusal = %d %q, want %d %q", berr.Status, berr.Code, tt.status, tt.code)
			}
			if berr.Desc == "" {
				t.Error("refusal has no description")
			}
		})
	}
}

// FuzzBearerToken checks that bearerToken never panics and that a token it
// returns is a b64token (RFC 6750 §2.1) taken from the one Authorization
// header, never from the query.
func FuzzBearerToken(f *testing.F) {
	seeds := []struct {
		authz string
		query string
		n     uint8
	}{
		{"Bearer abc", "", 1},
		{"bearer abc==", "x=1", 1},
		{"Bearer   a.b.c", "", 1},
		{"Basic dXNlcjpwYXNz", "", 1},
		{"Bearer ", "", 1},
		{"Bearer", "", 1},
		{"Bearer a b", "", 1},
		{"Bearer \"x\"", "", 1},
		{"Bearer abc", "access_token=abc", 1},
		{"Bearer abc", "access%5Ftoken=abc", 1},
		{"Bearer abc", "%zz&access_token", 1},
		{"Bearer abc", "a=1;access_token=2", 1},
		{"Bearer abc", "", 2},
		{"", "", 0},
		{"Bearer \xff\xfe", "", 1},
		{"Bearer ====", "", 1},
	}
	for _, s := range seeds {
		f.Add(s.authz, s.query, s.n)
	}
	f.Fuzz(func(t *testing.T, authz, query string, n uint8) {
		r := &http.Request{
			Method: http.MethodGet,
			URL:    &url.URL{Path: "/", RawQuery: query},
			Header: http.Header{},
		}
		for range n % 3 {
			r.Header["Authorization"] = append(r.Header["Authorization"], authz)
		}
		tok, berr := Token(r)
		if berr != nil {
			if tok != "" {
				t.Fatalf("refusal with a token %q", tok)
			}
			switch {
			case berr.Status == http.StatusBadRequest && berr.Code == InvalidRequest:
			case berr.Status == http.StatusUnauthorized && (berr.Code == "" || berr.Code == InvalidToken):
			default:
				t.Fatalf("refusal %d %q is not an RFC 6750 §3.1 pair", berr.Status, berr.Code)
			}
			if strings.ContainsAny(berr.Desc, "\"\\") {
				t.Fatalf("description %q has a quote or backslash", berr.Desc)
			}
			return
		}
		if n%3 != 1 {
			t.Fatalf("accepted %q from %d Authorization headers", tok, n%3)
		}
		if !isB64Token(tok) {
			t.Fatalf("token %q is not a b64token", tok)
		}
		if len(tok) > len(authz) || !strings.HasSuffix(authz, tok) {
			t.Fatalf("token %q is not the tail of the header %q", tok, authz)
		}
		if !strings.EqualFold(authz[:len("Bearer ")], "Bearer ") {
			t.Fatalf("token %q accepted from a non-Bearer header %q", tok, authz)
		}
		if r.URL.Query().Has("access_token") {
			t.Fatalf("token accepted although the query %q has access_token", query)
		}
	})
}

// FuzzParseBearer checks parseScheme against the grammar it implements:
// "Bearer" (any case) 1*SP, then the rest.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  abc", "Bearer", "Bearer ", "Basic x", "BEARER\tx", "Bearerx", "", "Bearer \x00", "beaRer ===", "Bearer \tabc", "Bearer  \t abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, ok := parseScheme(v, "Bearer")
		const prefix = "Bearer "
		isBearer := len(v) >= len(prefix) && strings.EqualFold(v[:len(prefix)], prefix)
		if ok != isBearer {
			t.Fatalf("parseScheme(%q, Bearer) ok = %v, want %v", v, ok, isBearer)
		}
		if !ok {
			if tok != "" {
				t.Fatalf("parseScheme(%q, Bearer) = %q on refusal", v, tok)
			}
			return
		}
		if !strings.HasSuffix(v, tok) || len(tok) >= len(v) {
			t.Fatalf("parseScheme(%q, Bearer) = %q, not a proper tail", v, tok)
		}
		if strings.HasPrefix(tok, " ") {
			t.Fatalf("parseScheme(%q, Bearer) = %q keeps leading SP", v, tok)
		}
		if strings.TrimLeft(v[len(prefix)-1:], " ") != tok {
			t.Fatalf("parseScheme(%q, Bearer) = %q, dropped more than the SP run", v, tok)
		}
	})
}

// TestCredentialsSchemes: RFC 9449 §7.1, a DPoP-bound token comes with the
// DPoP scheme; Token (for bearer-only endpoints) refuses it as no bearer
// credentials, Credentials reports the scheme.
func TestCredentialsSchemes(t *testing.T) {
	cases := []struct {
		header, tok, scheme string
		ok                  bool
	}{
		{"Bearer abc", "abc", SchemeBearer, true},
		{"DPoP abc", "abc", SchemeDPoP, true},
		{"dpop  abc", "abc", SchemeDPoP, true},
		{"DPoPabc", "", "", false},
		{"Basic abc", "", "", false},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", tc.header)
		tok, scheme, err := Credentials(r)
		if tc.ok != (err == nil) || tok != tc.tok || scheme != tc.scheme {
			t.Errorf("%q: got %q %q %v", tc.header, tok, scheme, err)
		}
		if _, berr := Token(r); (berr == nil) != (tc.ok && tc.scheme == SchemeBearer) {
			t.Errorf("%q: Token error %v", tc.header, berr)
		}
	}
}
