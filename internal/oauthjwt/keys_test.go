package oauthjwt

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"testing"
)

// TestThumbprintRFC7638 checks the worked example of RFC 7638 §3.1.
func TestThumbprintRFC7638(t *testing.T) {
	n, _ := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	got, err := Thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("thumbprint = %s, want %s", got, want)
	}
}

// TestKeyAlgPinning: a key is bound to one algorithm (RFC 8725 §3.1); a key
// of the wrong type or size for the algorithm is refused.
func TestKeyAlgPinning(t *testing.T) {
	ec, err := GenerateKey(ES256)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{ES384, RS256, PS256, EdDSA, "HS256", "none"} {
		if _, err := NewKey(alg, ec.Signer, ""); err == nil {
			t.Errorf("P-256 key accepted for %s", alg)
		}
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewKey(RS256, small, ""); err == nil {
		t.Error("1024-bit RSA key accepted (RFC 7518 §3.3 requires 2048)")
	}
}

func TestPEMRoundTrip(t *testing.T) {
	for _, alg := range SupportedAlgs {
		t.Run(alg, func(t *testing.T) {
			k, err := GenerateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			pemBytes, err := k.MarshalPrivateKeyPEM()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParsePrivateKeyPEM(alg, pemBytes)
			if err != nil {
				t.Fatal(err)
			}
			if back.ID != k.ID {
				t.Fatalf("kid changed across PEM round trip: %s != %s", back.ID, k.ID)
			}
			j := k.PublicJWK()
			if j.Alg != alg || j.Use != "sig" || j.Kid != k.ID {
				t.Fatalf("JWK = %+v", j)
			}
		})
	}
	if _, err := ParsePrivateKeyPEM(ES256, []byte("not pem")); err == nil {
		t.Fatal("garbage accepted as PEM")
	}
}

func TestKeyringRefusesOneKidTwoAlgs(t *testing.T) {
	k, _ := GenerateKey(RS256)
	twin, _ := NewKey(PS256, k.Signer, k.ID)
	if _, err := NewKeyring(k, twin); err == nil {
		t.Fatal("keyring accepted one kid with RS256 and PS256")
	}
	pub, _ := NewPublicKey(RS256, k.Public, "")
	if _, err := NewKeyring(pub); err == nil {
		t.Fatal("keyring accepted an active key without a private half")
	}
}
