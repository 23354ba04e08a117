package caddyoauth

import (
	"net/http"
	"strings"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// serveUserinfo is {prefix}/userinfo: the signed-in person's sub, name,
// email and configured claims, for an access token of this server that
// was issued on the person's behalf (it carries auth_time, RFC 9068
// §2.2.1) and holds the userinfo scope. The answers follow RFC 6750 §3
// (and OpenID Connect Core §5.3, whose response shape this borrows).
func (s *Server) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeOAuthError(w, &oauthError{Status: http.StatusMethodNotAllowed, Code: errInvalidRequest, Description: "userinfo accepts GET and POST"})
		return
	}
	a := s.app
	authz := r.Header.Values("Authorization")
	if len(authz) != 1 || !hasScheme(authz[0], "Bearer") {
		bearerRefusal(w, http.StatusUnauthorized, "", "", a.UserinfoScope)
		return
	}
	claims, reason := a.activeAccessToken(strings.TrimSpace(authz[0][len("Bearer "):]))
	if claims == nil {
		bearerRefusal(w, http.StatusUnauthorized, "invalid_token", reason, a.UserinfoScope)
		return
	}
	if !claims.HasAudience(a.Audience) {
		bearerRefusal(w, http.StatusUnauthorized, "invalid_token", "token audience not accepted", a.UserinfoScope)
		return
	}
	if _, person := claims.Claim("auth_time"); !person {
		bearerRefusal(w, http.StatusForbidden, "insufficient_scope", "the token was not issued on behalf of a person", a.UserinfoScope)
		return
	}
	if !oauthjwt.HasAll(claims.Scopes(), []string{a.UserinfoScope}) {
		bearerRefusal(w, http.StatusForbidden, "insufficient_scope", "token lacks the "+a.UserinfoScope+" scope", a.UserinfoScope)
		return
	}
	user, ok, err := a.lookupUser(r.Context(), claims.Subject)
	if err != nil {
		writeOAuthError(w, unavailable())
		return
	}
	if !ok {
		bearerRefusal(w, http.StatusUnauthorized, "invalid_token", "the user no longer exists", a.UserinfoScope)
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

// bearerRefusal answers as RFC 6750 §3 says: a Bearer challenge (without
// error attributes when no token was sent) and a JSON body.
func bearerRefusal(w http.ResponseWriter, status int, code, desc, scope string) {
	ch := `Bearer realm="oauth"`
	if code != "" {
		ch += `, error="` + code + `"`
		if desc != "" {
			ch += `, error_description="` + strings.ReplaceAll(desc, `"`, "'") + `"`
		}
		if status == http.StatusForbidden {
			ch += `, scope="` + scope + `"`
		}
	}
	w.Header().Set("WWW-Authenticate", ch)
	noStore(w.Header())
	if code == "" {
		code = "unauthorized"
	}
	body := map[string]string{"error": code}
	if desc != "" {
		body["error_description"] = desc
	}
	writeJSON(w, status, body)
}
