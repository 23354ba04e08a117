package caddyoauth

import (
	"context"
	"net/url"
)

// clientCredentials is the client credentials grant (RFC 6749 §4.4). It
// touches no store: the token is the only state.
func (s *Server) clientCredentials(ctx context.Context, client *Client, form url.Values) (*tokenResponse, *oauthError) {
	scopes, oerr := grantedScopes(client, form.Get("scope"))
	if oerr != nil {
		return nil, oerr
	}
	aud, oerr := s.requestAudience(client, form)
	if oerr != nil {
		return nil, oerr
	}
	// RFC 9068 §2.2: for client credentials, sub is the client itself.
	return s.signAccess(client, accessGrant{sub: client.ID, scopes: scopes, aud: aud, jkt: boundKey(ctx), x5t: boundCert(ctx)}, s.app.clock())
}
