// Package dpop checks DPoP proofs (RFC 9449): the JWTs a client signs with
// its own key to show that it holds the key an access token is bound to.
// The authorization server (caddyoauth, at the token endpoint) and the
// resource server (oauth_scope) share it, as they share package bearer.
//
// It checks one proof against one request (§4.3) and computes the key's
// thumbprint (RFC 7638) that a token's cnf.jkt names. Replay of a proof's
// jti and server nonces are the caller's (see Replay and Nonces), since
// they need the store shared by every instance.
package dpop

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// MaxProofSize caps the DPoP header read: a proof carries one public key,
// a few kilobytes at most even for RSA-4096.
const MaxProofSize = 8 << 10

// DefaultWindow is how far a proof's iat may be from now, either way
// (RFC 9449 §11.1 leaves it to the server: "a few seconds to minutes").
const DefaultWindow = 60 * time.Second

// maxJTI bounds the jti kept for replay detection (§11.1): a UUID or 96
// random bits base64url-encoded is far shorter.
const maxJTI = 256

// Algs are the proof algorithms accepted and advertised
// (dpop_signing_alg_values_supported): asymmetric only (§4.3 item 5).
var Algs = slices.Clone(oauthjwt.SupportedAlgs)

// Expect is the request a proof must be for.
type Expect struct {
	Method string // htm (§4.2): the HTTP method, compared exactly
	URL    string // htu: the request's URL; compared after normalisation
	// AccessToken, when set, makes the ath claim required and checked
	// (§4.3 item 12): a proof presented with an access token at a
	// protected resource.
	AccessToken string
	Now         time.Time
	Window      time.Duration // iat acceptance either way; DefaultWindow if 0
	Algs        []string      // accepted algorithms; Algs if nil
}

// Proof is a checked proof.
type Proof struct {
	JKT      string // RFC 7638 SHA-256 thumbprint of the proof's public key
	JTI      string
	IssuedAt time.Time
	Nonce    string // the nonce claim, "" if none; the caller checks it (§8, §9)
}

// Error is a proof refused, with a description safe to send back in
// error_description: it never echoes the proof.
type Error struct{ Desc string }

func (e *Error) Error() string { return "invalid DPoP proof: " + e.Desc }

func invalid(format string, args ...any) *Error {
	return &Error{Desc: fmt.Sprintf(format, args...)}
}

// proofClaims is the payload of a proof (§4.2).
type proofClaims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.RawMessage `json:"iat"`
	ATH   string          `json:"ath,omitempty"`
	Nonce string          `json:"nonce,omitempty"`
}

// Check verifies one proof against the request it came with, every step
// of RFC 9449 §4.3 but the nonce (item 10) and jti replay (item 11),
// which need state: the caller checks Proof.Nonce and claims Proof.JTI.
// The proof must be the only DPoP header of the request (item 1): the
// caller counts them.
func Check(proof string, want Expect) (*Proof, error) {
	if proof == "" {
		return nil, invalid("missing DPoP proof")
	}
	if len(proof) > MaxProofSize {
		return nil, invalid("DPoP proof too large")
	}
	if strings.Count(proof, ".") != 2 {
		return nil, invalid("DPoP proof is not a signed JWT") // item 2 (a JWE has four dots, none has one)
	}
	algs := want.Algs
	if algs == nil {
		algs = Algs
	}
	dot1, dot2 := strings.IndexByte(proof, '.'), strings.LastIndexByte(proof, '.')
	b64 := base64.RawURLEncoding.Strict()
	// The header first (items 3, 4, 5, 7), so that a refusal says why
	// and the signature is checked with the key pinned to its algorithm.
	hb, err := b64.DecodeString(proof[:dot1])
	if err != nil {
		return nil, invalid("DPoP proof is malformed")
	}
	var h proofHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, invalid("DPoP proof is malformed")
	}
	key, err := h.key(algs)
	if err != nil {
		return nil, err
	}
	// Item 6: the signature, by the header's key, over the proof's first
	// two segments.
	sig, err := b64.DecodeString(proof[dot2+1:])
	if err != nil {
		return nil, invalid("DPoP proof is malformed")
	}
	if err := jwt.GetSigningMethod(h.Alg).Verify(proof[:dot2], sig, key); err != nil {
		return nil, invalid("DPoP proof signature does not verify")
	}
	pb, err := b64.DecodeString(proof[dot1+1 : dot2])
	if err != nil {
		return nil, invalid("DPoP proof is malformed")
	}
	var claims proofClaims
	if err := json.Unmarshal(pb, &claims); err != nil {
		return nil, invalid("DPoP proof is malformed")
	}
	return checkClaims(&claims, key, want)
}

// proofHeader is a proof's JOSE header.
type proofHeader struct {
	Typ  string          `json:"typ"`
	Alg  string          `json:"alg"`
	JWK  *proofJWK       `json:"jwk"`
	Crit json.RawMessage `json:"crit"`
	Jku  json.RawMessage `json:"jku"`
	X5u  json.RawMessage `json:"x5u"`
}

// key checks the header (§4.3 items 3, 4, 5, 7) and returns the public
// key of its jwk member, pinned to the header's alg.
func (h *proofHeader) key(algs []string) (crypto.PublicKey, error) {
	if h.Typ != "dpop+jwt" {
		return nil, invalid("DPoP proof typ must be dpop+jwt") // item 4
	}
	if h.Alg == "" || h.Alg == "none" || !slices.Contains(algs, h.Alg) || jwt.GetSigningMethod(h.Alg) == nil {
		return nil, invalid("DPoP proof algorithm not accepted") // item 5
	}
	if len(h.Crit) > 0 || len(h.Jku) > 0 || len(h.X5u) > 0 {
		// No critical extension is understood here (RFC 7515 §4.1.11),
		// and the key is the jwk member, never fetched.
		return nil, invalid("DPoP proof header has members this server does not accept")
	}
	if h.JWK == nil {
		return nil, invalid("DPoP proof header has no jwk") // item 3
	}
	pub, err := h.JWK.publicKey(h.Alg)
	switch {
	case errors.Is(err, errPrivateJWK):
		// The client leaked its private key, or sent a symmetric one,
		// which cannot prove possession to anyone else (item 7).
		return nil, invalid("DPoP proof jwk must be a public key")
	case err != nil:
		return nil, invalid("DPoP proof jwk does not fit its alg")
	}
	// Keys pinned to their algorithm: an RSA key for ES256, a P-384 key
	// for ES256, an RSA key under 2048 bits are refused.
	if err := oauthjwt.FitsAlg(h.Alg, pub); err != nil {
		return nil, invalid("DPoP proof jwk does not fit its alg")
	}
	return pub, nil
}

// checkClaims applies §4.3 items 3, 8, 9, 11 (iat) and 12.
func checkClaims(c *proofClaims, key crypto.PublicKey, want Expect) (*Proof, error) {
	if c.JTI == "" || c.HTM == "" || c.HTU == "" || len(c.IAT) == 0 {
		return nil, invalid("DPoP proof lacks jti, htm, htu or iat") // item 3
	}
	if len(c.JTI) > maxJTI {
		return nil, invalid("DPoP proof jti too long")
	}
	if c.HTM != want.Method {
		return nil, invalid("DPoP proof htm does not match the request method") // item 8
	}
	if !SameURL(c.HTU, want.URL) {
		return nil, invalid("DPoP proof htu does not match the request URL") // item 9
	}
	iat, err := numericDate(c.IAT)
	if err != nil {
		return nil, invalid("DPoP proof iat is not a number")
	}
	window := want.Window
	if window <= 0 {
		window = DefaultWindow
	}
	if d := iat.Sub(want.Now); d > window || d < -window {
		return nil, invalid("DPoP proof iat is outside the accepted window") // item 11
	}
	if want.AccessToken != "" {
		sum := sha256.Sum256([]byte(want.AccessToken))
		ath := base64.RawURLEncoding.EncodeToString(sum[:])
		// Both are public values (a hash of the token the request carries),
		// so a plain comparison leaks nothing.
		if c.ATH != ath {
			return nil, invalid("DPoP proof ath does not match the access token") // item 12
		}
	}
	jkt, err := oauthjwt.Thumbprint(key)
	if err != nil {
		return nil, invalid("DPoP proof key type not supported")
	}
	return &Proof{JKT: jkt, JTI: c.JTI, IssuedAt: iat, Nonce: c.Nonce}, nil
}

// numericDate reads a NumericDate (RFC 7519 §2): a JSON number of
// seconds, possibly with a fraction.
func numericDate(raw json.RawMessage) (time.Time, error) {
	var f float64
	d := json.NewDecoder(bytes.NewReader(raw))
	if err := d.Decode(&f); err != nil {
		return time.Time{}, err
	}
	if f < 0 || f > 1e11 {
		return time.Time{}, errors.New("out of range")
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
}
