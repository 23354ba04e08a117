package caddyoauth

import (
	"net/http"

	"github.com/caddyapigw/gateway/internal/bearer"
	"github.com/caddyapigw/gateway/internal/mtls"
	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// userinfoRealm is the realm of the userinfo endpoint's challenges.
const userinfoRealm = "oauth"

// serveUserinfo is {prefix}/userinfo: the signed-in person's sub, name,
// email and configured claims, for an access token of this server that
// was issued on the person's behalf (it carries auth_time, RFC 9068
// §2.2.1). A token with the openid scope gets the OpenID Connect UserInfo
// answer (Core §5.3): the claims its scopes allow (§5.4), the same as the
// ID token's. A token without it (a client that is no relying party)
// needs the userinfo scope and gets every claim, as before OpenID
// Connect. The answers follow RFC 6750 §3.
func (s *Server) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeOAuthError(w, &oauthError{Status: http.StatusMethodNotAllowed, Code: errInvalidRequest, Description: "userinfo accepts GET and POST"})
		return
	}
	a := s.app
	res := s.userinfoDPoP()
	refuse := func(status int, code, desc string) {
		e := &bearer.Error{Status: status, Code: code, Desc: desc, DPoP: res.Challenge(r)}
		if status == http.StatusForbidden {
			e.Scope = a.UserinfoScope // the scope needed (RFC 6750 §3)
		}
		e.Write(w, userinfoRealm)
	}
	// A DPoP-bound token comes with the DPoP scheme and a proof (RFC 9449
	// §7), as at any protected resource.
	tok, scheme, berr := bearer.Credentials(r)
	if berr != nil {
		berr.DPoP = res.Challenge(r)
		berr.Write(w, userinfoRealm)
		return
	}
	claims, reason, err := s.activeAccessToken(tok)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		refuse(http.StatusServiceUnavailable, errTemporarilyUnavailable, "the token's client cannot be checked now")
		return
	}
	if claims == nil {
		refuse(http.StatusUnauthorized, bearer.InvalidToken, reason)
		return
	}
	if x5t := claims.BoundCert(); x5t != "" {
		if desc := mtls.CheckBinding(r.TLS, x5t); desc != "" { // RFC 8705 §3
			refuse(http.StatusUnauthorized, bearer.InvalidToken, desc)
			return
		}
	}
	if !claims.HasAudience(a.Audience) {
		refuse(http.StatusUnauthorized, bearer.InvalidToken, "token audience not accepted")
		return
	}
	if e := res.Check(r, tok, scheme, claims.BoundKey()); e != nil {
		if e.Status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "5")
		}
		e.Write(w, userinfoRealm)
		return
	}
	if _, person := claims.Claim("auth_time"); !person {
		refuse(http.StatusForbidden, bearer.InsufficientScope, "the token was not issued on behalf of a person")
		return
	}
	oidc := hasOpenID(claims.Scopes())
	if !oidc && !oauthjwt.HasAll(claims.Scopes(), []string{a.UserinfoScope}) {
		refuse(http.StatusForbidden, bearer.InsufficientScope, "token lacks the "+a.UserinfoScope+" scope")
		return
	}
	user, ok, err := a.directory.lookup(r.Context(), claims.Subject)
	if err != nil {
		writeOAuthError(w, unavailable())
		return
	}
	if !ok {
		refuse(http.StatusUnauthorized, bearer.InvalidToken, "the user no longer exists")
		return
	}
	if oidc {
		noStore(w.Header())
		writeJSON(w, http.StatusOK, userClaims(user, claims.Scopes()))
		return
	}
	out := map[string]any{"sub": user.Username}
	for k, v := range user.Claims {
		out[k] = v
	}
	if user.Name != "" {
		out["name"] = user.Name
	}
	if user.Email != "" {
		out["email"] = user.Email
	}
	noStore(w.Header())
	writeJSON(w, http.StatusOK, out)
}
