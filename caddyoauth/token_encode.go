package caddyoauth

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The access token's claims and the token response are written by hand
// into pooled buffers: encoding/json's reflection was a tenth of the
// token endpoint (issue 18). TestClaimsEncoderMatchesJSON holds both
// encoders to byte-for-byte the output of encoding/json.

// encodePool recycles the buffers of appendJSON and writeTokenResponse.
var encodePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuf() *[]byte { return encodePool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 16<<10 { // a rare huge one is not kept
		return
	}
	*b = (*b)[:0]
	encodePool.Put(b)
}

// appendJSON appends the claims as encoding/json writes them: members in
// the struct's order, omitempty members left out when empty, aud a string
// when there is one audience (audience.MarshalJSON).
func (c *accessTokenClaims) appendJSON(b []byte) []byte {
	b = append(b, `{"iss":`...)
	b = appendJSONString(b, c.Issuer)
	b = append(b, `,"sub":`...)
	b = appendJSONString(b, c.Subject)
	b = append(b, `,"aud":`...)
	switch {
	case len(c.Audience) == 1:
		b = appendJSONString(b, c.Audience[0])
	case c.Audience == nil:
		b = append(b, "null"...)
	default:
		b = append(b, '[')
		for i, a := range c.Audience {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, a)
		}
		b = append(b, ']')
	}
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, c.Expiry, 10)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, c.IssuedAt, 10)
	b = append(b, `,"jti":`...)
	b = appendJSONString(b, c.ID)
	b = append(b, `,"client_id":`...)
	b = appendJSONString(b, c.ClientID)
	if c.Scope != "" {
		b = append(b, `,"scope":`...)
		b = appendJSONString(b, c.Scope)
	}
	if c.AuthTime != 0 {
		b = append(b, `,"auth_time":`...)
		b = strconv.AppendInt(b, c.AuthTime, 10)
	}
	if c.Cnf != nil {
		b = append(b, `,"cnf":{`...)
		sep := ""
		if c.Cnf.JKT != "" {
			b = append(b, `"jkt":`...)
			b = appendJSONString(b, c.Cnf.JKT)
			sep = ","
		}
		if c.Cnf.X5TS256 != "" {
			b = append(b, sep...)
			b = append(b, `"x5t#S256":`...)
			b = appendJSONString(b, c.Cnf.X5TS256)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendJSON appends the token response (RFC 6749 §5.1) as encoding/json
// writes tokenResponse.
func (t *tokenResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"access_token":`...)
	b = appendJSONString(b, t.AccessToken)
	b = append(b, `,"token_type":`...)
	b = appendJSONString(b, t.TokenType)
	b = append(b, `,"expires_in":`...)
	b = strconv.AppendInt(b, t.ExpiresIn, 10)
	for _, m := range [...]struct{ name, value string }{
		{`,"refresh_token":`, t.RefreshToken},
		{`,"scope":`, t.Scope},
		{`,"id_token":`, t.IDToken},
	} {
		if m.value != "" {
			b = append(b, m.name...)
			b = appendJSONString(b, m.value)
		}
	}
	return append(b, '}')
}

// writeTokenResponse writes a successful token response with status 200
// and the headers writeJSONBytes and noStore set (RFC 6749 §5.1:
// Cache-Control no-store, Pragma no-cache), whose values share one
// allocation.
func writeTokenResponse(w http.ResponseWriter, t *tokenResponse) {
	buf := getBuf()
	*buf = t.appendJSON(*buf)
	v := [...]string{"application/json", "nosniff", "no-store", "no-cache"}
	vals := v[:] // escapes: one allocation for the four values
	h := w.Header()
	h["Content-Type"] = vals[0:1:1]
	h["X-Content-Type-Options"] = vals[1:2:2]
	h["Cache-Control"] = vals[2:3:3]
	h["Pragma"] = vals[3:4:4]
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(*buf)
	putBuf(buf)
}

// appendJSONString appends s as a JSON string exactly as encoding/json
// writes it. Printable ASCII other than " \ < > & (which encoding/json
// escapes for HTML) is copied as it is; anything else (controls, non-ASCII,
// invalid UTF-8) goes through encoding/json itself, so the two cannot
// differ.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil { // cannot happen for a string
				return append(b, `""`...)
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
