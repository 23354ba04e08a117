package oauthjwt

import (
	"strconv"
	"unsafe"
)

// fieldSet says which members of a token's payload the fields of Claims
// hold exactly, so that Claim answers them from the fields and the cached
// claims need not keep their text.
type fieldSet uint16

const (
	heldIss fieldSet = 1 << iota
	heldSub
	heldAud     // aud, a string
	heldAudList // aud, an array of strings
	heldExp
	heldNbf
	heldIat
	heldJti
	heldClientID
	heldScope
)

// heldMember is a payload member Claims has a field for.
type heldMember struct {
	name string
	bit  fieldSet
}

var heldMembers = [...]heldMember{
	{"iss", heldIss}, {"sub", heldSub}, {"aud", heldAud}, {"exp", heldExp}, {"nbf", heldNbf},
	{"iat", heldIat}, {"jti", heldJti}, {"client_id", heldClientID}, {"scope", heldScope},
}

// heldBit is the bit of the member named name (heldAud for aud), or 0
// for a member Claims has no field for.
func heldBit(name string) fieldSet {
	for _, m := range heldMembers {
		if m.name == name {
			return m.bit
		}
	}
	return 0
}

// splitPayload shrinks payload to the members that the fields do not
// hold exactly: a member is held when the text Claim would give for it
// from the payload (claimText) is the text fieldClaim gives from the
// fields, so Claim answers every member as before. The rest keep their
// text, as written, in a smaller JSON object ("" when none is left). A
// payload that repeats a member the fields hold, or that does not scan,
// is kept whole (Claim then reads every member from it, the last of
// duplicates winning, as encoding/json does).
func (c *Claims) splitPayload() {
	if c.payload == "" {
		return
	}
	obj := unsafe.Slice(unsafe.StringData(c.payload), len(c.payload))
	var held, seen fieldSet
	var whole bool // a member the fields hold is repeated
	var rest []byte
	var scratch [64]byte
	err := eachMember(obj, func(key string, quoted, raw []byte) {
		if bit := heldBit(key); bit != 0 {
			if seen&bit != 0 {
				whole = true
				return
			}
			seen |= bit
			if bit == heldAud && len(raw) > 0 && raw[0] == '[' {
				bit = heldAudList
			}
			if got, ok := claimText(raw); ok {
				if want, ok := c.fieldText(bit, scratch[:0]); ok && string(got) == string(want) {
					held |= bit
					return
				}
			}
		}
		if rest == nil {
			rest = append(make([]byte, 0, len(obj)/2), '{')
		} else {
			rest = append(rest, ',')
		}
		rest = append(append(append(rest, quoted...), ':'), raw...)
	})
	if err != nil || whole || held == 0 {
		return // whole
	}
	c.fields = held
	if rest == nil {
		c.payload = ""
	} else {
		c.payload = string(append(rest, '}'))
	}
}

// claimText is the text Claim gives for a member's raw value: a string
// decoded, anything else as written. ok is false for a string with
// escapes, which is left in the payload rather than decoded here.
func claimText(raw []byte) ([]byte, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return raw, true
	}
	if len(raw) < 2 || raw[len(raw)-1] != '"' {
		return nil, false
	}
	inner := raw[1 : len(raw)-1]
	for _, b := range inner {
		if b == '\\' || b < 0x20 {
			return nil, false
		}
	}
	return inner, true
}

// fieldString is the text Claim gives for a member held as a string
// (iss, sub, jti, client_id, a one-string aud); ok is false for the
// others.
func (c *Claims) fieldString(bit fieldSet) (string, bool) {
	switch bit {
	case heldIss:
		return c.Issuer, true
	case heldSub:
		return c.Subject, true
	case heldJti:
		return c.ID, true
	case heldClientID:
		return c.ClientID, true
	case heldAud:
		if len(c.Audience) == 1 {
			return c.Audience[0], true
		}
	}
	return "", false
}

// fieldText appends to buf the text Claim gives for the member bit names,
// made from the fields; ok is false when the fields cannot give it.
func (c *Claims) fieldText(bit fieldSet, buf []byte) ([]byte, bool) {
	if s, ok := c.fieldString(bit); ok {
		return append(buf, s...), true
	}
	switch bit {
	case heldScope:
		for i, s := range c.Scope {
			if i > 0 {
				buf = append(buf, ' ')
			}
			buf = append(buf, s...)
		}
		return buf, true
	case heldAudList:
		return appendStringList(buf, c.Audience)
	case heldExp, heldNbf, heldIat:
		d := c.ExpiresAt
		if bit == heldNbf {
			d = c.NotBefore
		} else if bit == heldIat {
			d = c.IssuedAt
		}
		if d == nil {
			return nil, false
		}
		return strconv.AppendInt(buf, d.Unix(), 10), true
	}
	return nil, false
}

// appendStringList appends list as a JSON array of strings written
// without spaces, as encoding/json writes it; ok is false when an element
// would need escapes (such a list stays in the payload).
func appendStringList(buf []byte, list []string) ([]byte, bool) {
	buf = append(buf, '[')
	for i, s := range list {
		for j := 0; j < len(s); j++ {
			if b := s[j]; b < 0x20 || b == '"' || b == '\\' || b == '<' || b == '>' || b == '&' || b >= 0x80 {
				return nil, false
			}
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(append(append(buf, '"'), s...), '"')
	}
	return append(buf, ']'), true
}

// fieldClaim is Claim for the members the fields hold.
func (c *Claims) fieldClaim(name string) (string, bool) {
	bit := heldBit(name)
	if bit == heldAud && c.fields&heldAudList != 0 {
		bit = heldAudList
	}
	if bit == 0 || c.fields&bit == 0 {
		return "", false
	}
	if s, ok := c.fieldString(bit); ok {
		return s, true // no copy
	}
	b, ok := c.fieldText(bit, nil)
	return string(b), ok
}
