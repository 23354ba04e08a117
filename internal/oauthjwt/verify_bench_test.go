package oauthjwt

import (
	"testing"
)

// BenchmarkVerify measures a full verification (no cache) per algorithm.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range SupportedAlgs {
		b.Run(alg, func(b *testing.B) {
			s := newTestSetup(b, alg)
			tok := s.sign(b, goodClaims())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.v.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyCached measures the resource path's common case: a token
// already verified once, served from the cache.
func BenchmarkVerifyCached(b *testing.B) {
	k, _ := GenerateKey(ES256)
	kr, _ := NewKeyring(k)
	v := NewVerifier(VerifierConfig{Issuer: testIssuer, Keys: kr, RequireAccessTokenType: true})
	tok, _ := kr.SignAccessToken(goodClaims())
	if _, err := v.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSignAccessToken measures signing an RFC 9068 token per algorithm.
func BenchmarkSignAccessToken(b *testing.B) {
	for _, alg := range SupportedAlgs {
		b.Run(alg, func(b *testing.B) {
			k, err := GenerateKey(alg)
			if err != nil {
				b.Fatal(err)
			}
			kr, _ := NewKeyring(k)
			c := goodClaims()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := kr.SignAccessToken(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
