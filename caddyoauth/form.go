package caddyoauth

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
)

// maxFormBytes caps the body of a token request. The largest legitimate one,
// a JWT assertion with a client assertion, stays well below it.
const maxFormBytes = 64 << 10

// parseForm reads an application/x-www-form-urlencoded POST body (RFC 6749
// §3.2, Appendix B). Parameters in the URL query are ignored: credentials
// must not travel there (RFC 6749 §2.3.1). A parameter sent twice is an
// error (§3.2: "MUST NOT be included more than once"), except `resource`,
// which RFC 8707 §2 lets a client repeat.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, badRequest(errInvalidRequest, "Content-Type must be application/x-www-form-urlencoded")
	}
	lift := bodyDeadline(w)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes))
	lift()
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &oauthError{Status: http.StatusRequestEntityTooLarge, Code: errInvalidRequest, Description: "request body too large"}
		}
		if isTimeout(err) {
			w.Header().Set("Connection", "close")
			return nil, &oauthError{Status: http.StatusRequestTimeout, Code: errInvalidRequest, Description: "the request body came too slowly"}
		}
		return nil, badRequest(errInvalidRequest, "could not read the request body")
	}
	return parseFormBody(string(body))
}

// parseFormBody parses and checks the body of a form POST.
func parseFormBody(body string) (url.Values, *oauthError) {
	form, err := url.ParseQuery(body)
	if err != nil {
		return nil, badRequest(errInvalidRequest, "malformed form body")
	}
	for k, v := range form {
		if len(v) > 1 && k != "resource" {
			return nil, badRequest(errInvalidRequest, "parameter "+safeParam(k)+" is repeated")
		}
	}
	return form, nil
}

// safeParam returns a parameter name fit for an error_description: the
// name if it is short printable ASCII without quotes or backslashes
// (RFC 6749 §5.2 restricts error_description to %x20-21 / %x23-5B / %x5D-7E).
func safeParam(k string) string {
	if len(k) > 40 {
		return "(name too long)"
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c == '"' || c == '\\' || c > 0x7e {
			return "(unprintable name)"
		}
	}
	return k
}
