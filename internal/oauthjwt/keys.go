package oauthjwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	"github.com/golang-jwt/jwt/v5"
)

// Signing algorithms (RFC 7518 §3.1, RFC 8037 §3.1).
const (
	ES256 = "ES256"
	ES384 = "ES384"
	RS256 = "RS256"
	PS256 = "PS256"
	EdDSA = "EdDSA"
)

// SupportedAlgs lists the asymmetric algorithms a signing key may use, in the
// order the metadata document advertises them.
var SupportedAlgs = []string{ES256, ES384, RS256, PS256, EdDSA}

// minRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3).
const minRSABits = 2048

// ErrUnsupportedAlg reports an algorithm name this package does not sign with.
var ErrUnsupportedAlg = errors.New("unsupported signing algorithm")

// Key is one signing or verification key, pinned to exactly one algorithm.
// A token whose alg header differs from Alg is never verified with it.
type Key struct {
	ID     string           // kid; the RFC 7638 thumbprint unless set otherwise
	Alg    string           // the one JWS alg this key is used with
	Signer crypto.Signer    // nil for a verification-only key
	Public crypto.PublicKey // *ecdsa.PublicKey, *rsa.PublicKey or ed25519.PublicKey

	method jwt.SigningMethod
	header string // base64url of the protected header for access tokens
	idHdr  string // the same for ID tokens: typ JWT (OpenID Connect Core §2)
	hmac   []byte // the shared key of an HS256 key (NewHMACKey)
	owner  string // the client an HS256 key belongs to
}

// signingMethod maps an algorithm name to golang-jwt's implementation.
func signingMethod(alg string) (jwt.SigningMethod, error) {
	switch alg {
	case ES256:
		return jwt.SigningMethodES256, nil
	case ES384:
		return jwt.SigningMethodES384, nil
	case RS256:
		return jwt.SigningMethodRS256, nil
	case PS256:
		return jwt.SigningMethodPS256, nil
	case EdDSA:
		return jwt.SigningMethodEdDSA, nil
	}
	return nil, fmt.Errorf("%w: %q (supported: ES256, ES384, RS256, PS256, EdDSA)", ErrUnsupportedAlg, alg)
}

// GenerateKey makes a new private key for alg: P-256 for ES256, P-384 for
// ES384, RSA-2048 for RS256 and PS256 (the size every JOSE library accepts), Ed25519 for EdDSA.
func GenerateKey(alg string) (*Key, error) {
	var signer crypto.Signer
	var err error
	switch alg {
	case ES256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ES384:
		signer, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RS256, PS256:
		signer, err = rsa.GenerateKey(rand.Reader, minRSABits)
	case EdDSA:
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		_, err = signingMethod(alg)
	}
	if err != nil {
		return nil, err
	}
	return NewKey(alg, signer, "")
}

// NewKey wraps a private key for alg, checking that the key type fits the
// algorithm. An empty kid is replaced by the key's RFC 7638 thumbprint.
func NewKey(alg string, signer crypto.Signer, kid string) (*Key, error) {
	k, err := NewPublicKey(alg, signer.Public(), kid)
	if err != nil {
		return nil, err
	}
	k.Signer = signer
	return k, nil
}

// NewPublicKey wraps a public key for verification with alg only.
func NewPublicKey(alg string, pub crypto.PublicKey, kid string) (*Key, error) {
	method, err := signingMethod(alg)
	if err != nil {
		return nil, err
	}
	if err := checkKeyType(alg, pub); err != nil {
		return nil, err
	}
	k := &Key{ID: kid, Alg: alg, Public: pub, method: method}
	if k.ID == "" {
		k.ID, err = Thumbprint(pub)
		if err != nil {
			return nil, err
		}
	}
	hdr, _ := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, k.ID, AccessTokenType})
	k.header = base64.RawURLEncoding.EncodeToString(hdr)
	hdr, _ = json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, k.ID, IDTokenType})
	k.idHdr = base64.RawURLEncoding.EncodeToString(hdr)
	return k, nil
}

func checkKeyType(alg string, pub crypto.PublicKey) error {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{ES256: elliptic.P256(), ES384: elliptic.P384()}[alg]
		if want == nil || p.Curve != want {
			return fmt.Errorf("an EC key on %s cannot be used with %s", p.Curve.Params().Name, alg)
		}
	case *rsa.PublicKey:
		if alg != RS256 && alg != PS256 {
			return fmt.Errorf("an RSA key cannot be used with %s", alg)
		}
		if p.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key has %d bits; at least %d are required", p.N.BitLen(), minRSABits)
		}
	case ed25519.PublicKey:
		if alg != EdDSA {
			return fmt.Errorf("an Ed25519 key cannot be used with %s", alg)
		}
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	return nil
}

// ParsePrivateKeyPEM reads a PEM private key (PKCS #8, SEC 1 "EC PRIVATE KEY"
// or PKCS #1 "RSA PRIVATE KEY") for use with alg.
func ParsePrivateKeyPEM(alg string, data []byte) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing private key: %v", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	return NewKey(alg, signer, "")
}

// MarshalPrivateKeyPEM encodes the key's private half as PKCS #8 PEM.
func (k *Key) MarshalPrivateKeyPEM() ([]byte, error) {
	if k.Signer == nil {
		return nil, errors.New("key has no private half")
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Signer)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// JWK is the public JSON Web Key form of a key (RFC 7517 §4, RFC 7518 §6).
type JWK struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

// PublicJWK returns the public key as a JWK with use "sig" and its alg.
func (k *Key) PublicJWK() JWK {
	j := jwkMembers(k.Public)
	j.Use, j.Alg, j.Kid = "sig", k.Alg, k.ID
	return j
}

func jwkMembers(pub crypto.PublicKey) JWK {
	b64 := base64.RawURLEncoding.EncodeToString
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		// Bytes is the uncompressed point 0x04 || X || Y (SEC 1 §2.3.3),
		// each coordinate the curve's size, as RFC 7518 §6.2.1 wants them.
		pt, err := p.Bytes()
		if err != nil || len(pt) < 3 || pt[0] != 4 {
			return JWK{}
		}
		size := (len(pt) - 1) / 2
		return JWK{Kty: "EC", Crv: p.Curve.Params().Name, X: b64(pt[1 : 1+size]), Y: b64(pt[1+size:])}
	case *rsa.PublicKey:
		return JWK{Kty: "RSA", N: b64(p.N.Bytes()), E: b64(big.NewInt(int64(p.E)).Bytes())}
	case ed25519.PublicKey:
		return JWK{Kty: "OKP", Crv: "Ed25519", X: b64(p)}
	}
	return JWK{}
}

// Thumbprint is the RFC 7638 SHA-256 JWK thumbprint of pub, base64url-encoded.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	j := jwkMembers(pub)
	var canon string
	switch j.Kty {
	case "EC":
		canon = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, j.Crv, j.X, j.Y)
	case "RSA":
		canon = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, j.E, j.N)
	case "OKP":
		canon = fmt.Sprintf(`{"crv":%q,"kty":"OKP","x":%q}`, j.Crv, j.X)
	default:
		return "", fmt.Errorf("unsupported key type %T", pub)
	}
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// CheckAlg reports an error unless alg is one of SupportedAlgs.
func CheckAlg(alg string) error {
	_, err := signingMethod(alg)
	return err
}

// FitsAlg reports an error unless pub is a key alg can verify with: the
// curve of an EC key, an RSA key of at least 2048 bits, an Ed25519 key for
// EdDSA (keys pinned to their algorithm).
func FitsAlg(alg string, pub crypto.PublicKey) error {
	if _, err := signingMethod(alg); err != nil {
		return err
	}
	return checkKeyType(alg, pub)
}
