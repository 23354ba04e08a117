package mtls

import (
	"testing"

	"github.com/caddyapigw/gateway/internal/mtls/mtlstest"
)

// BenchmarkCheckBinding is the per-request cost of RFC 8705 §3 in
// oauth_scope: a SHA-256 of the connection's certificate and a compare.
func BenchmarkCheckBinding(b *testing.B) {
	ca, err := mtlstest.NewCA("bench CA")
	if err != nil {
		b.Fatal(err)
	}
	c, err := ca.Issue(mtlstest.Names{DNS: []string{"client.example"}})
	if err != nil {
		b.Fatal(err)
	}
	st, x5t := c.State(true), Thumbprint(c.Cert)
	b.ReportAllocs()
	for b.Loop() {
		if CheckBinding(st, x5t) != "" {
			b.Fatal("refused")
		}
	}
}
