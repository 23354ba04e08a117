package oauthjwt

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
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

// BenchmarkVerifierCacheMemory measures what the verified-token cache
// holds per token: the Go heap in use (runtime.MemStats.HeapAlloc, after a
// collection) before and after 10,000 distinct tokens are verified and
// cached, divided by 10,000, reported as B/entry. Each token reaches the
// verifier as a fresh copy of its text, as a request header would, so a
// cache that keeps the text pays for it. Tokens look like the example's
// (about 450 bytes, EdDSA to keep the setup short: ES256's are as long):
// one_subject are one client's tokens for one person (what the load
// script sends), distinct_subjects each for a person of its own.
func BenchmarkVerifierCacheMemory(b *testing.B) {
	for _, distinct := range []bool{false, true} {
		name := "one_subject"
		if distinct {
			name = "distinct_subjects"
		}
		b.Run(name, func(b *testing.B) { benchCacheMemory(b, distinct) })
	}
}

func benchCacheMemory(b *testing.B, distinctSubjects bool) {
	const entries = 10000
	k, err := GenerateKey(EdDSA)
	if err != nil {
		b.Fatal(err)
	}
	kr, _ := NewKeyring(k)
	now := time.Now()
	tokens := make([]string, entries)
	for i := range tokens {
		sub := "person-00000000-4f2a-9c1e-3b7d5a6e8f01"
		if distinctSubjects {
			sub = fmt.Sprintf("person-%08d-4f2a-9c1e-3b7d5a6e8f01", i)
		}
		tokens[i], err = kr.SignAccessToken(&Claims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer:    testIssuer,
				Subject:   sub,
				Audience:  jwt.ClaimStrings{"https://localhost:8443/api/users"},
				ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
				IssuedAt:  jwt.NewNumericDate(now),
				ID:        fmt.Sprintf("Xk3%019d", i),
			},
			ClientID: "reports-service",
			Scope:    ScopeClaim{"user:read", "notes:read"},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	var perEntry float64
	for b.Loop() {
		v := NewVerifier(VerifierConfig{Issuer: testIssuer, Keys: kr, RequireAccessTokenType: true, CacheSize: 2 * entries})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, tok := range tokens {
			if _, err := v.Verify(strings.Clone(tok)); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if n := v.cache.Len(); n != entries {
			b.Fatalf("cache holds %d entries, want %d", n, entries)
		}
		perEntry = float64(after.HeapAlloc-before.HeapAlloc) / entries
		runtime.KeepAlive(v)
	}
	b.ReportMetric(perEntry, "B/entry")
	b.ReportMetric(float64(len(tokens[0])), "token-bytes")
}
