package bearer

import (
	"net/http"
	"net/url"
	"strings"
)

// Token extracts the access token of an RFC 6750 §2.1 Authorization
// request header. Tokens in the URI query (§2.3) are refused: they end up
// in logs and browser history, and RFC 9700 §4.3.2 advises against them.
func Token(r *http.Request) (string, *Error) {
	tok, scheme, err := Credentials(r)
	if err != nil {
		return "", err
	}
	if scheme != SchemeBearer {
		return "", &Error{Status: http.StatusUnauthorized, Desc: "bearer token required"}
	}
	return tok, nil
}

// Authorization schemes Credentials reads.
const (
	SchemeBearer = "Bearer" // RFC 6750 §2.1
	SchemeDPoP   = "DPoP"   // RFC 9449 §7.1
)

// Credentials is Token for a resource that also takes DPoP-bound tokens:
// it reads `Authorization: Bearer <token>` or `Authorization: DPoP
// <token>` (RFC 9449 §7.1) and reports which scheme carried the token.
func Credentials(r *http.Request) (token, scheme string, e *Error) {
	if queryHasParam(r.URL.RawQuery, "access_token") {
		return "", "", &Error{Status: http.StatusBadRequest, Code: InvalidRequest, Desc: "access tokens in the URI query are not accepted; use the Authorization header"}
	}
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", "", &Error{Status: http.StatusUnauthorized, Desc: "bearer token required"}
	case 1:
	default:
		return "", "", &Error{Status: http.StatusBadRequest, Code: InvalidRequest, Desc: "more than one Authorization header"}
	}
	scheme = SchemeBearer
	tok, ok := parseScheme(vals[0], SchemeBearer)
	if !ok {
		scheme = SchemeDPoP
		tok, ok = parseScheme(vals[0], SchemeDPoP)
	}
	if !ok {
		// Another scheme (Basic, say) carries no bearer credentials: a
		// challenge without an error code (§3.1).
		return "", "", &Error{Status: http.StatusUnauthorized, Desc: "bearer token required"}
	}
	if !isB64Token(tok) {
		return "", "", &Error{Status: http.StatusUnauthorized, Code: InvalidToken, Desc: "token malformed"}
	}
	return tok, scheme, nil
}

// queryHasParam reports whether a raw query names param, splitting on both
// & and ; (some upstreams accept either) and percent-decoding each name
// (access%5Ftoken is access_token to most servers).
func queryHasParam(raw, param string) bool {
	if raw == "" {
		return false
	}
	if !strings.Contains(raw, param) && !strings.Contains(raw, "%") {
		return false
	}
	for part := range strings.FieldsFuncSeq(raw, func(c rune) bool { return c == '&' || c == ';' }) {
		name, _, _ := strings.Cut(part, "=")
		if dec, err := url.QueryUnescape(name); err == nil {
			name = dec
		}
		if name == param {
			return true
		}
	}
	return false
}

// parseScheme returns what follows the scheme name and one or more spaces; the
// scheme name is case-insensitive (RFC 9110 §11.1).
func parseScheme(v, scheme string) (string, bool) {
	if len(v) <= len(scheme) || v[len(scheme)] != ' ' || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimLeft(v[len(scheme):], " "), true
}

// isB64Token checks the b64token syntax of RFC 6750 §2.1:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
func isB64Token(s string) bool {
	end := len(s)
	for end > 0 && s[end-1] == '=' {
		end--
	}
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}
