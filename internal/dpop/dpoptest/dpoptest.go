// Package dpoptest makes DPoP proofs (RFC 9449 §4.2) for tests: a client
// key and a proof per request, with knobs to make each kind of bad proof.
package dpoptest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// Key is a client's DPoP key.
type Key struct {
	*oauthjwt.Key
	JKT string // its RFC 7638 thumbprint, as a bound token's cnf.jkt
}

// NewKey makes a key for alg (ES256, EdDSA, ...).
func NewKey(alg string) (*Key, error) {
	k, err := oauthjwt.GenerateKey(alg)
	if err != nil {
		return nil, err
	}
	jkt, err := oauthjwt.Thumbprint(k.Public)
	if err != nil {
		return nil, err
	}
	return &Key{Key: k, JKT: jkt}, nil
}

// Options change a proof from the good one Proof makes by default.
type Options struct {
	AccessToken string         // sets ath
	Nonce       string         // sets nonce
	IAT         time.Time      // iat; now if zero
	JTI         string         // jti; random if empty
	Typ         string         // typ; dpop+jwt if empty
	Header      map[string]any // extra or replaced header members (jwk: nil removes it)
	Claims      map[string]any // extra or replaced claims (nil value removes one)
}

// Proof signs a proof for method and url.
func (k *Key) Proof(method, url string, o Options) string {
	iat := o.IAT
	if iat.IsZero() {
		iat = time.Now()
	}
	jti := o.JTI
	if jti == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		jti = base64.RawURLEncoding.EncodeToString(b)
	}
	claims := jwt.MapClaims{"jti": jti, "htm": method, "htu": url, "iat": iat.Unix()}
	if o.AccessToken != "" {
		sum := sha256.Sum256([]byte(o.AccessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if o.Nonce != "" {
		claims["nonce"] = o.Nonce
	}
	for name, v := range o.Claims {
		if v == nil {
			delete(claims, name)
		} else {
			claims[name] = v
		}
	}
	method0 := jwt.GetSigningMethod(k.Alg)
	t := jwt.NewWithClaims(method0, claims)
	typ := o.Typ
	if typ == "" {
		typ = "dpop+jwt"
	}
	t.Header["typ"] = typ
	j := k.PublicJWK()
	jwk := map[string]any{"kty": j.Kty}
	for name, v := range map[string]string{"crv": j.Crv, "x": j.X, "y": j.Y, "n": j.N, "e": j.E} {
		if v != "" {
			jwk[name] = v
		}
	}
	t.Header["jwk"] = jwk
	for name, v := range o.Header {
		if v == nil {
			delete(t.Header, name)
		} else {
			t.Header[name] = v
		}
	}
	s, err := t.SignedString(k.Signer)
	if err != nil {
		panic("dpoptest: signing: " + err.Error())
	}
	return s
}
