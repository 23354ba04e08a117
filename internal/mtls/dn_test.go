package mtls

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"

	"github.com/caddyapigw/gateway/internal/mtls/mtlstest"
)

// TestSubjectDN: tls_client_auth_subject_dn (RFC 8705 §2.1.2) is the RFC
// 4514 string of the expected subject, matched attribute by attribute.
func TestSubjectDN(t *testing.T) {
	ca, err := mtlstest.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	subject := pkix.Name{CommonName: "client-1", Organization: []string{"Example, Inc."}, OrganizationalUnit: []string{"Payments"}, Country: []string{"DE"}}
	c, err := ca.Issue(mtlstest.Names{Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	multi := pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "svc"}}}
	mc, err := ca.Issue(mtlstest.Names{Subject: multi})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dn string
		match    bool
	}{
		{"RFC 4514 §2: CN first, as Go writes it", `CN=client-1,OU=Payments,O=Example\, Inc.,C=DE`, true},
		{"§3: keywords in any case, spaces around separators", ` cn = client-1 , ou=Payments, o=Example\, Inc. ,c=DE`, true},
		{"§2.4: hex escape of the comma", `CN=client-1,OU=Payments,O=Example\2C Inc.,C=DE`, true},
		{"dotted OIDs for the types", `2.5.4.3=client-1,2.5.4.11=Payments,2.5.4.10=Example\, Inc.,2.5.4.6=DE`, true},
		{"RFC 4518 §2.6.1: values ignore case and inner space runs", `CN=CLIENT-1,OU=payments,O=Example\,   Inc.,C=de`, true},
		{"another CN", `CN=client-2,OU=Payments,O=Example\, Inc.,C=DE`, false},
		{"a prefix of the subject", `CN=client-1,OU=Payments`, false},
		{"a longer subject", `CN=client-1,OU=Payments,O=Example\, Inc.,C=DE,DC=example`, false},
		{"reversed (ASN.1) order", `C=DE,O=Example\, Inc.,OU=Payments,CN=client-1`, false},
		{"the comma unescaped splits the RDN", `CN=client-1,OU=Payments,O=Example, Inc.,C=DE`, false},
		{"two attributes in one RDN against separate RDNs", `CN=client-1+OU=Payments,O=Example\, Inc.,C=DE`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dn, err := ParseDN(tt.dn)
			if err != nil {
				if tt.match {
					t.Fatalf("ParseDN(%q): %v", tt.dn, err)
				}
				return
			}
			if got := dn.MatchSubject(c.Cert.RawSubject); got != tt.match {
				t.Fatalf("%q against %q: %v, want %v", tt.dn, c.Cert.Subject, got, tt.match)
			}
		})
	}
	dn, err := ParseDN("cn=SVC")
	if err != nil || !dn.MatchSubject(mc.Cert.RawSubject) {
		t.Fatalf("CN=SVC against %s: %v", mc.Cert.Subject, err)
	}
}

// TestParseDNRefuses: what RFC 4514 does not allow, or this parser does
// not take, is refused at load with a reason.
func TestParseDNRefuses(t *testing.T) {
	for _, s := range []string{
		"",
		"   ",
		"CN",                 // no =
		"=x",                 // no type
		"XYZ=x",              // unknown keyword
		"1.2.x=x",            // not an OID
		"01.2=x",             // leading zero
		"CN=#04026869",       // BER form
		`CN=a"b`,             // §2.4: " must be escaped
		`CN=a;b`,             // ; is not a separator here and must be escaped
		`CN=a<b`,             // must be escaped
		`CN=ab\`,             // dangling escape
		`CN=a\zz`,            // neither special nor hex
		`CN=\FF`,             // not UTF-8 once unescaped
		"CN=a+CN=b",          // one type twice in an RDN
		"CN=a,",              // empty RDN after the comma
		string([]byte{0xff}), // not UTF-8
	} {
		if dn, err := ParseDN(s); err == nil {
			t.Errorf("ParseDN(%q) = %v, want an error", s, dn)
		}
	}
}

// TestDNStringRoundTrip: String writes what ParseDN reads back.
func TestDNStringRoundTrip(t *testing.T) {
	for _, s := range []string{
		`CN=client-1,O=Example\, Inc.,C=DE`,
		`CN=\ lead and trail\ ,OU=\#hash,O=a\+b\=c`,
		`1.2.3.4=x+CN=y,DC=example,DC=com`,
		`emailAddress=a@example.com,serialNumber=42`,
	} {
		dn, err := ParseDN(s)
		if err != nil {
			t.Fatalf("ParseDN(%q): %v", s, err)
		}
		again, err := ParseDN(dn.String())
		if err != nil || !equalDN(dn, again) {
			t.Fatalf("%q → %q → %v, %v", s, dn.String(), again, err)
		}
	}
}

func equalDN(a, b DN) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if !a[i][j].Type.Equal(b[i][j].Type) || a[i][j].Value != b[i][j].Value {
				return false
			}
		}
	}
	return true
}
