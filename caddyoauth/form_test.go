package caddyoauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestParseFormBody: application/x-www-form-urlencoded bodies (RFC 6749
// Appendix B) with the §3.2 rule that a parameter is sent at most once.
func TestParseFormBody(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    url.Values // nil when an error is expected
		wantErr bool
	}{
		{"empty body", "", url.Values{}, false},
		{"one parameter", "grant_type=client_credentials", url.Values{"grant_type": {"client_credentials"}}, false},
		{"several", "a=1&b=2", url.Values{"a": {"1"}, "b": {"2"}}, false},
		{"+ is a space (Appendix B)", "scope=a+b", url.Values{"scope": {"a b"}}, false},
		{"%2B is a plus (Appendix B)", "s=a%2Bb", url.Values{"s": {"a+b"}}, false},
		{"percent-encoded UTF-8 (Appendix B)", "n=%E2%82%AC", url.Values{"n": {"€"}}, false},
		{"name without value", "a", url.Values{"a": {""}}, false},
		{"empty value", "a=", url.Values{"a": {""}}, false},
		{"= in value", "a=b=c", url.Values{"a": {"b=c"}}, false},
		{"names are case-sensitive", "Scope=a&scope=b", url.Values{"Scope": {"a"}, "scope": {"b"}}, false},
		{"repeated (§3.2)", "a=1&a=2", nil, true},
		{"repeated with the same value (§3.2)", "a=1&a=1", nil, true},
		{"repeated, one empty (§3.2)", "a=&a=1", nil, true},
		{"repeated through encoding (§3.2)", "scope=a&%73cope=b", nil, true},
		{"resource may repeat (RFC 8707 §2)", "resource=urn:a&resource=urn:b", url.Values{"resource": {"urn:a", "urn:b"}}, false},
		{"bad percent-encoding", "a=%zz", nil, true},
		{"truncated percent-encoding", "a=%2", nil, true},
		{"semicolon separator refused", "a=1;b=2", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, oerr := parseFormBody(tt.body)
			if tt.wantErr {
				if oerr == nil {
					t.Fatalf("accepted: %v", got)
				}
				if oerr.Code != "invalid_request" || oerr.Status != http.StatusBadRequest || !errorCharsOK(oerr.Description) {
					t.Fatalf("error %+v, want a 400 invalid_request with an RFC 6749 §5.2 description", oerr)
				}
				return
			}
			if oerr != nil {
				t.Fatalf("refused: %v", oerr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if g := got[k]; !slices.Equal(g, v) {
					t.Errorf("%s = %q, want %q", k, g, v)
				}
			}
		})
	}
}

// TestParseFormRequest covers the request level: media type and size cap.
func TestParseFormRequest(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		status                  int // 0: accepted
	}{
		{"form", "application/x-www-form-urlencoded", "a=1", 0},
		{"form with charset (Appendix B: UTF-8)", "application/x-www-form-urlencoded; charset=utf-8", "a=1", 0},
		{"media type is case-insensitive (RFC 9110 §8.3.1)", "APPLICATION/X-WWW-FORM-URLENCODED", "a=1", 0},
		{"no content type", "", "a=1", 400},
		{"broken content type", "application/x-www-form-urlencoded; =", "a=1", 400},
		{"json", "application/json", `{"a":1}`, 400},
		{"form prefix only", "application/x-www-form-urlencoded-extra", "a=1", 400},
		{"at the cap", "application/x-www-form-urlencoded", "a=" + strings.Repeat("x", maxFormBytes-2), 0},
		{"over the cap", "application/x-www-form-urlencoded", "a=" + strings.Repeat("x", maxFormBytes-1), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			form, oerr := parseForm(httptest.NewRecorder(), r)
			if tt.status == 0 {
				if oerr != nil {
					t.Fatalf("refused: %v", oerr)
				}
				if form.Get("a") == "" {
					t.Fatalf("parameter a missing: %v", form)
				}
				return
			}
			if oerr == nil || oerr.Status != tt.status || oerr.Code != "invalid_request" {
				t.Fatalf("error %+v, want %d invalid_request", oerr, tt.status)
			}
		})
	}
}

// TestSafeParam: what is echoed in error_description stays within the RFC
// 6749 §5.2 character set and short.
func TestSafeParam(t *testing.T) {
	tests := []struct{ in, want string }{
		{"scope", "scope"},
		{"a b", "a b"},
		{"x!#$%&'()*+,-./:;<=>?@[]^_`{|}~", "x!#$%&'()*+,-./:;<=>?@[]^_`{|}~"},
		{`a"b`, "(unprintable name)"},
		{`a\b`, "(unprintable name)"},
		{"a\x00b", "(unprintable name)"},
		{"a\nb", "(unprintable name)"},
		{"a\x7fb", "(unprintable name)"},
		{"é", "(unprintable name)"},
		{strings.Repeat("a", 40), strings.Repeat("a", 40)},
		{strings.Repeat("a", 41), "(name too long)"},
	}
	for _, tt := range tests {
		if got := safeParam(tt.in); got != tt.want {
			t.Errorf("safeParam(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParseFormBody: parseFormBody never panics; what it accepts has every
// parameter exactly once (RFC 6749 §3.2) but resource, which may repeat
// (RFC 8707 §2); what it refuses is a 400
// invalid_request whose description fits RFC 6749 §5.2.
func FuzzParseFormBody(f *testing.F) {
	for _, s := range []string{
		"", "grant_type=client_credentials", "a=1&a=2", "a=%zz", "a=1;b=2", "a", "=", "&&", "%", "a=%2",
		"scope=a+b&client_id=x%3Ay", "%22=1&%22=2", "resource=a&resource=b", "resource=a&%72esource=a", "%00=1&%00=2", strings.Repeat("a=1&", 50),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, oerr := parseFormBody(body)
		if oerr != nil {
			if form != nil {
				t.Fatalf("error with a form: %v", form)
			}
			if oerr.Status != http.StatusBadRequest || oerr.Code != "invalid_request" {
				t.Fatalf("error %+v", oerr)
			}
			if !errorCharsOK(oerr.Description) {
				t.Fatalf("description %q outside RFC 6749 §5.2", oerr.Description)
			}
			return
		}
		for k, v := range form {
			if len(v) != 1 && k != "resource" {
				t.Fatalf("accepted %q with %q repeated: %q", body, k, v)
			}
		}
		// Accepted bodies are what url.ParseQuery reads, no more, no less.
		if q, err := url.ParseQuery(body); err != nil || len(q) != len(form) {
			t.Fatalf("accepted %q that ParseQuery reads differently: %v %v", body, q, err)
		}
	})
}
