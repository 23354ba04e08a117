package oauthjwt

import (
	"crypto"
	"errors"
	"fmt"
	"slices"

	"github.com/MicahParks/jwkset"
)

// PinJWK turns a JWK from someone else's JWK Set (an issuer's, a client's)
// into a verification key pinned to one algorithm: the JWK's alg (RFC 7517
// §4.4), or fallback for a JWK without one ("" refuses such keys). A key
// not for signatures, with private or symmetric material, or whose alg is
// not among allowed (when allowed is not empty) is refused, so a token can
// never be checked with HS256 keyed by a public key.
func PinJWK(jwk jwkset.JWK, kid string, allowed []string, fallback string) (*Key, error) {
	m := jwk.Marshal()
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, fmt.Errorf("use is %q, not sig (RFC 7517 §4.2)", m.USE)
	}
	if m.D != "" || m.K != "" {
		return nil, errors.New("the JWKS publishes private or symmetric key material")
	}
	alg := string(m.ALG)
	switch {
	case alg == "" && fallback == "":
		return nil, errors.New("key has no alg (RFC 7517 §4.4) and no single algorithm is configured for it")
	case alg == "":
		alg = fallback
	case len(allowed) > 0 && !slices.Contains(allowed, alg):
		return nil, fmt.Errorf("alg %s is not among the configured algorithms", alg)
	}
	pub := jwk.Key()
	if p, ok := pub.(interface{ Public() crypto.PublicKey }); ok {
		pub = p.Public()
	}
	// NewPublicKey refuses algorithms other than ES256, ES384, RS256,
	// PS256 and EdDSA, and a key whose type does not fit the algorithm.
	return NewPublicKey(alg, pub, kid)
}
