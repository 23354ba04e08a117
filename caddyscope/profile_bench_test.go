package caddyscope

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// BenchmarkProfileVerify compares token validation under each issuer
// profile with the strict RFC 9068 one, all RS256 (what the providers
// use) with one key. Each provider's token as documented, read with its
// preset, runs next to its RFC 9068 twin: the same header and payload
// with typ at+jwt and the claims RFC 9068 §2.2 requires added (client_id,
// sub, iat, jti), verified under the default profile. The pair differs
// only by the profile, so the difference is the profile's cost:
//
//   - first: a full verification, the verifier's cache off (signature,
//     claims, and under a preset the claim mapping);
//   - cached: the same token again, from the verifier's cache;
//   - serve: a whole accepted request through oauth_scope (route cache,
//     rules, placeholders, forwarded headers), token seen before.
func BenchmarkProfileVerify(b *testing.B) {
	pj := newProviderJWKS(b)
	kr := providerKeyring(b, pj)
	for _, pt := range providerTokens() {
		if pt.name == "entra v2 app-only" {
			continue
		}
		twin := pt
		twin.profile = "" // opts kept: Entra's keys need algorithms RS256
		twin.header = maps.Clone(pt.header)
		twin.header["typ"] = "at+jwt"
		twin.claims = maps.Clone(pt.claims)
		twin.claims["client_id"] = pt.client
		for k, v := range map[string]any{"sub": "subject", "iat": time.Now().Unix(), "jti": "jti-1"} {
			if _, ok := twin.claims[k]; !ok {
				twin.claims[k] = v
			}
		}
		for _, c := range []struct {
			label string
			pt    providerToken
		}{{"rfc9068", twin}, {pt.profile, pt}} {
			c := c
			var mapping *oauthjwt.ClaimMapping
			if c.pt.profile != "" {
				is := Issuer{Issuer: c.pt.issuer, Profile: c.pt.profile}
				if c.pt.opts != nil {
					c.pt.opts(&is)
				}
				var err error
				if mapping, err = is.claimMapping(); err != nil {
					b.Fatal(err)
				}
			}
			tok := pj.sign(b, c.pt.header, c.pt.claims)
			verifier := func(cache int) *oauthjwt.Verifier {
				return oauthjwt.NewVerifier(oauthjwt.VerifierConfig{Issuer: c.pt.issuer, Keys: kr, RequireAccessTokenType: true, Mapping: mapping, CacheSize: cache})
			}
			check := func(b *testing.B, v *oauthjwt.Verifier) {
				cl, err := v.Verify(tok)
				if err != nil || cl.ClientID != c.pt.client {
					b.Fatalf("%s under %s: %v, claims %v", c.pt.name, c.label, err, cl)
				}
			}
			name := strings.ReplaceAll(pt.name, " ", "_") + "/" + c.label
			b.Run(name+"/first", func(b *testing.B) {
				v := verifier(-1)
				b.ReportAllocs()
				for b.Loop() {
					check(b, v)
				}
			})
			b.Run(name+"/cached", func(b *testing.B) {
				v := verifier(0)
				check(b, v)
				b.ReportAllocs()
				for b.Loop() {
					check(b, v)
				}
			})
			b.Run(name+"/serve", func(b *testing.B) {
				h, _ := issuerHandler(b, nil, providerScope(pj, c.pt, c.pt.profile, nil))
				mustAccept(b, get(b, h, tok))
				benchAccepted(b, h, tok, c.pt.client)
			})
		}
	}
}

// providerKeyring holds the test RSA key under every provider kid.
func providerKeyring(b *testing.B, pj *providerJWKS) *oauthjwt.Keyring {
	b.Helper()
	var keys []*oauthjwt.Key
	for _, k := range pj.keys {
		keys = append(keys, k)
	}
	kr, err := oauthjwt.NewKeyring(keys[0], keys[1:]...)
	if err != nil {
		b.Fatal(err)
	}
	return kr
}
