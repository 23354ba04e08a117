package dpop_test

import (
	"testing"
	"time"

	"github.com/caddyapigw/gateway/internal/dpop"
	"github.com/caddyapigw/gateway/internal/dpop/dpoptest"
)

// FuzzCheck feeds untrusted DPoP headers to the proof checker: it must
// never panic, and whatever it accepts must carry a thumbprint and a jti.
func FuzzCheck(f *testing.F) {
	k, err := dpoptest.NewKey("ES256")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(k.Proof("POST", tokenURL, dpoptest.Options{}))
	f.Add(k.Proof("GET", tokenURL, dpoptest.Options{AccessToken: "t"}))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	now := time.Now()
	f.Fuzz(func(t *testing.T, proof string) {
		p, err := dpop.Check(proof, dpop.Expect{Method: "POST", URL: tokenURL, Now: now})
		if err == nil && (p.JKT == "" || p.JTI == "") {
			t.Fatalf("accepted a proof without jkt or jti: %+v", p)
		}
	})
}

// FuzzSameURL checks that htu comparison never panics and is symmetric.
func FuzzSameURL(f *testing.F) {
	f.Add("https://h.example/a/./b", "https://H.example:443/a/b")
	f.Add("http://[::1]:80/%7e", "http://[::1]/~")
	f.Fuzz(func(t *testing.T, a, b string) {
		if dpop.SameURL(a, b) != dpop.SameURL(b, a) {
			t.Fatalf("not symmetric: %q %q", a, b)
		}
	})
}
