package caddyoauth

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/mtls"
)

// Mutual-TLS client authentication (RFC 8705 §2): the client proves who
// it is with the certificate of its TLS connection, which Caddy's TLS
// client_auth asked for. tls_client_auth takes a certificate whose chain
// Caddy validated against the site's trust pool and whose subject or SAN
// is the registered one (§2.1); self_signed_tls_client_auth takes any
// certificate whose public key is one of the client's registered keys
// (§2.2), its chain not validated. The client sends its client_id in the
// form and no other credentials.

const (
	authTLS           = "tls_client_auth"             // RFC 8705 §2.1.1
	authSelfSignedTLS = "self_signed_tls_client_auth" // RFC 8705 §2.2.1
)

// usesMTLS reports whether the client authenticates with a certificate.
func (c *Client) usesMTLS() bool {
	return c.AuthMethod == authTLS || c.AuthMethod == authSelfSignedTLS
}

// certMatch is what a tls_client_auth client's certificate must name:
// its subject DN, or one subject alternative name of a kind.
type certMatch struct {
	dn      mtls.DN // nil when a SAN is matched
	sanKind string
	san     string
}

func (m *certMatch) matches(st *tls.ConnectionState) bool {
	cert := mtls.PeerCertificate(st)
	if m.dn != nil {
		return m.dn.MatchSubject(cert.RawSubject)
	}
	return mtls.MatchSAN(cert, m.sanKind, m.san)
}

// tlsClientAuthNames lists the client's RFC 8705 §2.1.2 settings that are
// set, by metadata name.
func (c *Client) tlsClientAuthNames() [][2]string {
	var out [][2]string
	for _, f := range [][2]string{
		{"tls_client_auth_subject_dn", c.TLSClientAuthSubjectDN},
		{"tls_client_auth_san_dns", c.TLSClientAuthSANDNS},
		{"tls_client_auth_san_uri", c.TLSClientAuthSANURI},
		{"tls_client_auth_san_ip", c.TLSClientAuthSANIP},
		{"tls_client_auth_san_email", c.TLSClientAuthSANEmail},
	} {
		if f[1] != "" {
			out = append(out, f)
		}
	}
	return out
}

// provisionMTLS checks the certificate settings against the auth method
// and prepares the matcher. hasSecret and hasKeys say what else the
// client registered.
func (c *Client) provisionMTLS(hasSecret, hasKeys bool) error {
	names := c.tlsClientAuthNames()
	switch {
	case c.AuthMethod != authTLS && len(names) > 0:
		return fmt.Errorf("%s: only for token_endpoint_auth_method %s (RFC 8705 section 2.1.2)", names[0][0], authTLS)
	case !c.usesMTLS():
		return nil
	case hasSecret:
		return fmt.Errorf("token_endpoint_auth_method: a %s client authenticates with its certificate and has no secret", c.AuthMethod)
	case c.AuthMethod == authSelfSignedTLS && !hasKeys:
		return errors.New("token_endpoint_auth_method: " + authSelfSignedTLS + " needs the client's certificate keys in jwks, jwks_file or jwks_uri (RFC 8705 section 2.2.2)")
	case c.AuthMethod == authSelfSignedTLS:
		return nil
	case len(names) == 0:
		return errors.New("token_endpoint_auth_method: " + authTLS + " needs one of tls_client_auth_subject_dn, tls_client_auth_san_dns, tls_client_auth_san_uri, tls_client_auth_san_ip, tls_client_auth_san_email (RFC 8705 section 2.1.2)")
	case len(names) > 1:
		return fmt.Errorf("%s and %s: set exactly one (RFC 8705 section 2.1.2)", names[0][0], names[1][0])
	}
	m, err := newCertMatch(names[0][0], names[0][1])
	if err != nil {
		return err
	}
	c.cert = m
	return nil
}

// newCertMatch reads one RFC 8705 §2.1.2 setting.
func newCertMatch(name, v string) (*certMatch, error) {
	if name == "tls_client_auth_subject_dn" {
		dn, err := mtls.ParseDN(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		return &certMatch{dn: dn}, nil
	}
	kind := map[string]string{
		"tls_client_auth_san_dns":   mtls.SANDNS,
		"tls_client_auth_san_uri":   mtls.SANURI,
		"tls_client_auth_san_ip":    mtls.SANIP,
		"tls_client_auth_san_email": mtls.SANEmail,
	}[name]
	if why := mtls.CheckSAN(kind, v); why != "" {
		return nil, fmt.Errorf("%s: %q is %s", name, v, why)
	}
	return &certMatch{sanKind: kind, san: v}, nil
}

// authenticateCertificate checks the connection's certificate for a client
// registered with tls_client_auth or self_signed_tls_client_auth. Every
// failure is invalid_client (RFC 8705 §2); why is logged for the operator.
func (a *App) authenticateCertificate(ctx context.Context, c *Client, st *tls.ConnectionState) (*Client, *oauthError) {
	refuse := func(desc, why string) (*Client, *oauthError) {
		a.logger.Info("certificate client authentication refused", zap.String("client_id", c.ID), zap.String("method", c.AuthMethod), zap.String("reason", why))
		return nil, invalidClient(desc)
	}
	cert := mtls.PeerCertificate(st)
	if cert == nil {
		return refuse("this client authenticates with a TLS client certificate (RFC 8705): none was presented", "no client certificate on the connection (is the site's tls client_auth on?)")
	}
	if c.AuthMethod == authTLS {
		if !mtls.Verified(st) {
			return refuse("the TLS client certificate's chain was not validated (RFC 8705 section 2.1)", "the chain was not validated: the site's tls client_auth needs mode verify_if_given (or require_and_verify) and a trust_pool")
		}
		if !c.cert.matches(st) {
			return refuse("the TLS client certificate is not the one registered for this client (RFC 8705 section 2.1.2)", "subject or SAN does not match")
		}
		return c, nil
	}
	if now := a.clock(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return refuse("the TLS client certificate is outside its validity period", "certificate not valid at "+now.UTC().Format(time.RFC3339))
	}
	ok, err := c.keys.hasPublicKey(ctx, cert.PublicKey)
	if err != nil {
		return refuse("the client's keys cannot be read now", err.Error())
	}
	if !ok {
		return refuse("the TLS client certificate's key is not one of this client's keys (RFC 8705 section 2.2)", "public key not in jwks")
	}
	return c, nil
}

// publicKey is what crypto's public key types all implement.
type publicKey interface {
	Equal(crypto.PublicKey) bool
}

// hasPublicKey reports whether pub is one of the client's keys (RFC 8705
// §2.2.2): an inline key, or one of the jwks_uri's.
func (k *clientKeys) hasPublicKey(ctx context.Context, pub crypto.PublicKey) (bool, error) {
	p, ok := pub.(publicKey)
	if !ok {
		return false, nil
	}
	if k.uri == "" {
		for _, key := range k.inline {
			if p.Equal(key.Public) {
				return true, nil
			}
		}
		return false, nil
	}
	if err := k.fetch(); err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	all, err := k.kf.Storage().KeyReadAll(ctx)
	if err != nil {
		return false, err
	}
	for _, j := range all {
		if p.Equal(j.Key()) {
			return true, nil
		}
	}
	return false, nil
}
