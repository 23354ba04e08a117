package mtls

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A subject distinguished name as tls_client_auth_subject_dn gives it
// (RFC 8705 §2.1.2): the string representation of RFC 4514, matched
// against the certificate's subject attribute by attribute rather than as
// a string, so spacing, the case of attribute names and escaping do not
// matter, and a name the certificate spells differently is not mistaken
// for it.

// maxDNLen bounds the text of a configured DN (a certificate subject is
// far shorter in practice).
const maxDNLen = 4096

// DN is a parsed distinguished name, its RDNs in RFC 4514 order (the most
// specific, e.g. CN, first; the certificate's ASN.1 order is the reverse).
type DN []RDN

// RDN is a relative distinguished name: one or more attributes joined by
// "+", compared as a set (X.501 §9.3).
type RDN []Attribute

// Attribute is one attribute type and value.
type Attribute struct {
	Type  asn1.ObjectIdentifier
	Value string
}

// attributeKeywords are the attribute type names of RFC 4514 §3 and the
// others commonly found in client certificates, by upper-case keyword.
var attributeKeywords = map[string]asn1.ObjectIdentifier{
	"CN":                     {2, 5, 4, 3},
	"SN":                     {2, 5, 4, 4},
	"SERIALNUMBER":           {2, 5, 4, 5},
	"C":                      {2, 5, 4, 6},
	"L":                      {2, 5, 4, 7},
	"ST":                     {2, 5, 4, 8},
	"STREET":                 {2, 5, 4, 9},
	"O":                      {2, 5, 4, 10},
	"OU":                     {2, 5, 4, 11},
	"TITLE":                  {2, 5, 4, 12},
	"POSTALCODE":             {2, 5, 4, 17},
	"GN":                     {2, 5, 4, 42},
	"ORGANIZATIONIDENTIFIER": {2, 5, 4, 97},
	"DC":                     {0, 9, 2342, 19200300, 100, 1, 25},
	"UID":                    {0, 9, 2342, 19200300, 100, 1, 1},
	"EMAILADDRESS":           {1, 2, 840, 113549, 1, 9, 1},
}

// keywordOf is the keyword String writes for an attribute type, or "" for
// the dotted OID.
func keywordOf(oid asn1.ObjectIdentifier) string {
	for k, v := range attributeKeywords {
		if v.Equal(oid) {
			switch k {
			case "SERIALNUMBER":
				return "serialNumber"
			case "POSTALCODE":
				return "postalCode"
			case "ORGANIZATIONIDENTIFIER":
				return "organizationIdentifier"
			case "EMAILADDRESS":
				return "emailAddress"
			case "TITLE":
				return "title"
			}
			return k
		}
	}
	return ""
}

// ParseDN reads an RFC 4514 string such as `CN=client-1,O=Example\, Inc.,C=DE`.
// Attribute types are the usual keywords (CN, O, OU, C, L, ST, STREET, DC,
// UID, serialNumber, emailAddress, …, any case) or dotted OIDs; values use
// RFC 4514 §2.4 escapes (`\,` or `\2C`). Spaces around `,`, `+` and `=`
// are ignored. A value in the `#hex` BER form is refused: write it as text.
func ParseDN(s string) (DN, error) {
	if len(s) > maxDNLen {
		return nil, fmt.Errorf("longer than %d bytes", maxDNLen)
	}
	if !utf8.ValidString(s) {
		return nil, errors.New("not valid UTF-8")
	}
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty")
	}
	var (
		dn  DN
		rdn RDN
		p   = dnParser{s: s}
	)
	for {
		a, sep, err := p.attribute()
		if err != nil {
			return nil, err
		}
		for _, prev := range rdn {
			if prev.Type.Equal(a.Type) {
				return nil, fmt.Errorf("attribute %s twice in one RDN", a.Type)
			}
		}
		rdn = append(rdn, a)
		switch sep {
		case '+':
			continue
		case ',':
			dn, rdn = append(dn, rdn), nil
			continue
		}
		return append(dn, rdn), nil
	}
}

// dnParser walks an RFC 4514 string.
type dnParser struct {
	s string
	i int
}

func (p *dnParser) skipSpaces() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

// attribute reads `type=value` and the separator after it (',' or '+'),
// or 0 at the end.
func (p *dnParser) attribute() (Attribute, byte, error) {
	p.skipSpaces()
	eq := strings.IndexByte(p.s[p.i:], '=')
	if eq < 0 {
		return Attribute{}, 0, fmt.Errorf("at byte %d: attribute without =", p.i)
	}
	name := strings.TrimRight(p.s[p.i:p.i+eq], " ")
	oid, err := attributeType(name)
	if err != nil {
		return Attribute{}, 0, err
	}
	p.i += eq + 1
	p.skipSpaces()
	if p.i < len(p.s) && p.s[p.i] == '#' {
		return Attribute{}, 0, fmt.Errorf("%s: #hex (BER) values are not supported; write the value as text", name)
	}
	var (
		val     []byte
		trimmed = 0 // length of val without trailing unescaped spaces
	)
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == ',' || c == '+':
			p.i++
			return finish(oid, val[:trimmed], c)
		case c == '\\':
			b, err := p.escape()
			if err != nil {
				return Attribute{}, 0, err
			}
			val = append(val, b)
			trimmed = len(val)
			continue
		case c == '"' || c == ';' || c == '<' || c == '>' || c == 0:
			return Attribute{}, 0, fmt.Errorf("at byte %d: %q must be escaped with \\ (RFC 4514 section 2.4)", p.i, c)
		}
		val = append(val, c)
		if c != ' ' {
			trimmed = len(val)
		}
		p.i++
	}
	return finish(oid, val[:trimmed], 0)
}

// finish checks an unescaped value: hex escapes must still spell UTF-8.
func finish(oid asn1.ObjectIdentifier, val []byte, sep byte) (Attribute, byte, error) {
	if !utf8.Valid(val) {
		return Attribute{}, 0, fmt.Errorf("%s: the value is not UTF-8 once unescaped", oid)
	}
	return Attribute{Type: oid, Value: string(val)}, sep, nil
}

// escape reads `\c` or `\hh` (RFC 4514 §2.4, §3).
func (p *dnParser) escape() (byte, error) {
	if p.i+1 >= len(p.s) {
		return 0, errors.New("\\ at the end")
	}
	c := p.s[p.i+1]
	if strings.IndexByte(` "#+,;<=>\`, c) >= 0 {
		p.i += 2
		return c, nil
	}
	if p.i+2 < len(p.s) {
		if v, err := strconv.ParseUint(p.s[p.i+1:p.i+3], 16, 8); err == nil {
			p.i += 3
			return byte(v), nil
		}
	}
	return 0, fmt.Errorf("at byte %d: \\ must be followed by a special character or two hex digits", p.i)
}

// attributeType reads a keyword or a dotted OID.
func attributeType(name string) (asn1.ObjectIdentifier, error) {
	if name == "" {
		return nil, errors.New("attribute without a type")
	}
	if oid, ok := attributeKeywords[strings.ToUpper(name)]; ok {
		return oid, nil
	}
	if name[0] < '0' || name[0] > '9' {
		return nil, fmt.Errorf("unknown attribute type %q: use a dotted OID", name)
	}
	parts := strings.Split(name, ".")
	if len(parts) < 2 || len(parts) > 32 {
		return nil, fmt.Errorf("attribute type %q is not a dotted OID", name)
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, part := range parts {
		n, err := strconv.ParseUint(part, 10, 31)
		if err != nil || (len(part) > 1 && part[0] == '0') {
			return nil, fmt.Errorf("attribute type %q is not a dotted OID", name)
		}
		oid[i] = int(n)
	}
	return oid, nil
}

// String writes the DN in RFC 4514 form, escaping what must be escaped;
// ParseDN reads it back to the same DN.
func (d DN) String() string {
	var b strings.Builder
	for i, rdn := range d {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, a := range rdn {
			if j > 0 {
				b.WriteByte('+')
			}
			if k := keywordOf(a.Type); k != "" {
				b.WriteString(k)
			} else {
				b.WriteString(a.Type.String())
			}
			b.WriteByte('=')
			writeValue(&b, a.Value)
		}
	}
	return b.String()
}

func writeValue(b *strings.Builder, v string) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case strings.IndexByte(`"+,;<=>\`, c) >= 0,
			c == '#' && i == 0,
			c == ' ' && (i == 0 || i == len(v)-1):
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(b, "\\%02X", c)
		default:
			b.WriteByte(c)
		}
	}
}

// MatchSubject reports whether rawSubject, a certificate's DER subject
// (x509.Certificate.RawSubject), is this DN: the same RDNs in the same
// order, each the same set of attributes, values compared as X.520's
// caseIgnoreMatch does (case and runs of spaces do not matter, RFC 4518
// §2.6.1).
func (d DN) MatchSubject(rawSubject []byte) bool {
	var seq pkix.RDNSequence
	rest, err := asn1.Unmarshal(rawSubject, &seq)
	if err != nil || len(rest) != 0 || len(seq) != len(d) {
		return false
	}
	for i, rdn := range d {
		if !rdn.matchSet(seq[len(seq)-1-i]) {
			return false
		}
	}
	return true
}

func (r RDN) matchSet(set pkix.RelativeDistinguishedNameSET) bool {
	if len(set) != len(r) {
		return false
	}
	for _, a := range r {
		found := false
		for _, atv := range set {
			if v, ok := atv.Value.(string); ok && atv.Type.Equal(a.Type) && sameValue(v, a.Value) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// sameValue compares two attribute values ignoring case and insignificant
// spaces (RFC 4518 §2.6.1: leading and trailing removed, inner runs as one).
func sameValue(a, b string) bool {
	return strings.EqualFold(strings.Join(strings.Fields(a), " "), strings.Join(strings.Fields(b), " "))
}
