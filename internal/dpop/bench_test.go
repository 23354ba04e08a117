package dpop_test

import (
	"testing"
	"time"

	"github.com/caddyapigw/gateway/internal/dpop"
	"github.com/caddyapigw/gateway/internal/dpop/dpoptest"
)

// BenchmarkCheck measures one proof check (RFC 9449 §4.3) by algorithm:
// header, signature, claims, thumbprint; no replay record.
func BenchmarkCheck(b *testing.B) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		b.Run(alg, func(b *testing.B) {
			k := mustKey(b, alg)
			p := k.Proof("GET", "https://api.example/notes", dpoptest.Options{AccessToken: "tok"})
			want := dpop.Expect{Method: "GET", URL: "https://api.example/notes", AccessToken: "tok", Now: time.Now()}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dpop.Check(p, want); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
