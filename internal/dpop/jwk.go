package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
)

// proofJWK is the jwk member of a proof's header (RFC 7517): the public
// members this package reads, and the private ones it refuses.
type proofJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
	Alg string `json:"alg"`
	Use string `json:"use"`

	// Private or symmetric members (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC
	// 8037 §2): any of them present refuses the proof (§4.3 item 7).
	D   string          `json:"d"`
	P   string          `json:"p"`
	Q   string          `json:"q"`
	DP  string          `json:"dp"`
	DQ  string          `json:"dq"`
	QI  string          `json:"qi"`
	K   string          `json:"k"`
	Oth json.RawMessage `json:"oth"`
}

var (
	errPrivateJWK = errors.New("private or symmetric key")
	errBadJWK     = errors.New("malformed key")
)

// publicKey returns the key the JWK describes, refusing private members,
// a use other than sig, and an alg member other than alg.
func (j *proofJWK) publicKey(alg string) (crypto.PublicKey, error) {
	if j.D != "" || j.P != "" || j.Q != "" || j.DP != "" || j.DQ != "" || j.QI != "" || j.K != "" || len(j.Oth) > 0 {
		return nil, errPrivateJWK
	}
	if (j.Use != "" && j.Use != "sig") || (j.Alg != "" && j.Alg != alg) {
		return nil, errBadJWK
	}
	b64 := base64.RawURLEncoding
	switch j.Kty {
	case "EC":
		curve, size := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384()}[j.Crv], 0
		if curve == nil {
			return nil, errBadJWK
		}
		size = (curve.Params().BitSize + 7) / 8
		x, errX := b64.DecodeString(j.X)
		y, errY := b64.DecodeString(j.Y)
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return nil, errBadJWK
		}
		pt := make([]byte, 0, 1+2*size)
		pt = append(append(append(pt, 4), x...), y...)
		// Refuses a point that is not on the curve.
		return ecdsa.ParseUncompressedPublicKey(curve, pt)
	case "OKP":
		x, err := b64.DecodeString(j.X)
		if j.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errBadJWK
		}
		return ed25519.PublicKey(x), nil
	case "RSA":
		n, errN := b64.DecodeString(j.N)
		e, errE := b64.DecodeString(j.E)
		if errN != nil || errE != nil || len(n) == 0 || n[0] == 0 || len(e) == 0 || len(e) > 4 || e[0] == 0 {
			return nil, errBadJWK
		}
		var exp int
		for _, c := range e {
			exp = exp<<8 | int(c)
		}
		if exp < 3 || exp%2 == 0 || exp > 1<<31-1 {
			return nil, errBadJWK
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}, nil
	}
	return nil, errBadJWK
}
