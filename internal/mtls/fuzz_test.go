package mtls

import (
	"testing"

	"github.com/caddyapigw/gateway/internal/mtls/mtlstest"
)

// FuzzParseDN: a DN comes from a client's registration (RFC 8705 §2.1.2),
// which the admin API may take from outside. Whatever the text, ParseDN
// must not panic, and what it accepts must survive String and ParseDN
// unchanged and be matched against a certificate without panicking.
func FuzzParseDN(f *testing.F) {
	for _, s := range []string{
		`CN=client-1,O=Example\, Inc.,C=DE`,
		`cn = a + ou = b , dc=example`,
		`2.5.4.3=x`,
		`CN=\2C\ \#`,
		`CN=#0400`,
		`CN=a\`,
	} {
		f.Add(s)
	}
	ca, err := mtlstest.NewCA("fuzz CA")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dn, err := ParseDN(s)
		if err != nil {
			return
		}
		again, err := ParseDN(dn.String())
		if err != nil || !equalDN(dn, again) {
			t.Fatalf("%q → %q → %v, %v", s, dn.String(), again, err)
		}
		dn.MatchSubject(ca.Cert.RawSubject)
	})
}
