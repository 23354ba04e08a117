package caddyscope

import (
	"net/http"

	"github.com/caddyapigw/gateway/internal/bearer"
	"github.com/caddyapigw/gateway/internal/mtls"
	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// checkCertBinding applies RFC 8705 §3 to a request whose token verified:
// a token with cnf.x5t#S256 is accepted only on a connection whose TLS
// client certificate has that thumbprint. The connection is Caddy's own:
// behind a proxy that ends TLS, the certificate never reaches Caddy and
// bound tokens are refused.
func (s *Scope) checkCertBinding(r *http.Request, claims *oauthjwt.Claims, scope string) *bearer.Error {
	x5t := claims.BoundCert()
	if x5t == "" {
		return nil
	}
	if desc := mtls.CheckBinding(r.TLS, x5t); desc != "" {
		return &bearer.Error{Status: http.StatusUnauthorized, Code: bearer.InvalidToken, Desc: desc, Scope: scope, DPoP: s.dpopChallenge(r)}
	}
	return nil
}
