// Package mtls holds what the authorization server and the resource
// server share for OAuth 2.0 mutual-TLS (RFC 8705): the certificate
// thumbprint a bound token carries, the check of a connection's
// certificate against it, and the matching of a client certificate's
// subject and subject alternative names.
package mtls

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/url"
	"strings"
)

// Thumbprint is a certificate's x5t#S256 (RFC 8705 §3.1): the base64url
// SHA-256 of its DER encoding.
func Thumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// PeerCertificate is the client's certificate on a TLS connection, or nil
// for none (a plain connection, or no certificate presented).
func PeerCertificate(state *tls.ConnectionState) *x509.Certificate {
	if state == nil || len(state.PeerCertificates) == 0 {
		return nil
	}
	return state.PeerCertificates[0]
}

// Verified reports whether the connection's certificate chain was
// validated during the handshake (Caddy's client_auth with a trust pool,
// modes verify_if_given or require_and_verify).
func Verified(state *tls.ConnectionState) bool {
	return PeerCertificate(state) != nil && len(state.VerifiedChains) > 0
}

// CheckBinding applies RFC 8705 §3 to a token bound to the certificate
// whose thumbprint is x5t: the connection must carry that certificate.
// It returns "" when it does, else why not, for an invalid_token answer.
func CheckBinding(state *tls.ConnectionState, x5t string) string {
	cert := PeerCertificate(state)
	if cert == nil {
		return NoCertificate
	}
	if subtle.ConstantTimeCompare([]byte(Thumbprint(cert)), []byte(x5t)) != 1 {
		return OtherCertificate
	}
	return ""
}

// The descriptions CheckBinding answers.
const (
	NoCertificate    = "this token is bound to a TLS client certificate (RFC 8705): present it on the connection"
	OtherCertificate = "the TLS client certificate is not the one this token is bound to (RFC 8705 section 3)"
)

// SAN kinds of RFC 8705 §2.1.2's client metadata.
const (
	SANDNS   = "dns"
	SANURI   = "uri"
	SANIP    = "ip"
	SANEmail = "email"
)

// MatchSAN reports whether cert has a subject alternative name of kind
// equal to want (RFC 8705 §2.1.2): a DNS name ignoring case, a URI
// exactly, an IP address as an address (so 2001:db8::1 is
// 2001:DB8:0::1), an e-mail address with its domain ignoring case.
func MatchSAN(cert *x509.Certificate, kind, want string) bool {
	switch kind {
	case SANDNS:
		for _, n := range cert.DNSNames {
			if strings.EqualFold(n, want) {
				return true
			}
		}
	case SANURI:
		for _, u := range cert.URIs {
			if u.String() == want {
				return true
			}
		}
	case SANIP:
		ip := net.ParseIP(want)
		for _, a := range cert.IPAddresses {
			if ip != nil && a.Equal(ip) {
				return true
			}
		}
	case SANEmail:
		for _, e := range cert.EmailAddresses {
			if sameEmail(e, want) {
				return true
			}
		}
	}
	return false
}

// CheckSAN checks a configured SAN value of kind, so that a typo is
// refused at load rather than never matching.
func CheckSAN(kind, v string) string {
	switch {
	case v == "":
		return "empty"
	case kind == SANIP && net.ParseIP(v) == nil:
		return "not an IP address"
	case kind == SANURI:
		u, err := url.Parse(v)
		if err != nil || u.Scheme == "" {
			return "not an absolute URI"
		}
		if u.String() != v {
			return "not in the form a certificate's URI has once parsed (" + u.String() + ")"
		}
	case kind == SANEmail && !strings.Contains(v, "@"):
		return "not an e-mail address"
	case kind == SANDNS && strings.ContainsAny(v, " /@:"):
		return "not a DNS name"
	}
	return ""
}

// sameEmail compares two e-mail addresses: the local part exactly, the
// domain ignoring case (RFC 5321 §2.4).
func sameEmail(a, b string) bool {
	la, da, okA := cut(a)
	lb, db, okB := cut(b)
	return okA && okB && la == lb && strings.EqualFold(da, db)
}

func cut(e string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(e, '@')
	if i < 0 {
		return "", "", false
	}
	return e[:i], e[i+1:], true
}
