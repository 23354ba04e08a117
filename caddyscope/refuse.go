package caddyscope

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/bearer"
	"github.com/caddyapigw/gateway/internal/reqinfo"
)

// Placeholders a refusal sets, for handle_errors routes that write their
// own body.
const (
	placeholderError         = "oauth.error"
	placeholderErrorDesc     = "oauth.error_description"
	placeholderRequiredScope = "oauth.required_scope"
)

// refuse answers a request oauth_scope does not let through. The RFC 6750
// challenge (or Allow, or Retry-After) goes on the response headers, and
// the reason into the log at info level, never the token. Then, like
// basic_auth, the refusal is returned to Caddy as a handler error when the
// server has handle_errors routes, so they can restyle the answer (the
// headers set here stay); without such routes the small RFC 6750 JSON
// body is written here, since Caddy would send an empty one.
func (s *Scope) refuse(w http.ResponseWriter, r *http.Request, e *bearer.Error) error {
	s.metrics.refused(e)
	switch e.Status {
	case http.StatusMethodNotAllowed, http.StatusServiceUnavailable:
		// Not about the token: no challenge.
	default:
		e.ResourceMetadata = s.metadataURL
		if e.DPoP == nil {
			e.DPoP = s.dpopChallenge(r)
		}
		e.SetChallenges(w.Header(), s.Realm)
	}
	code := e.Code
	if code == "" {
		code = "unauthorized" // no token: no error code in the challenge (RFC 6750 §3.1)
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set(placeholderError, code)
		repl.Set(placeholderErrorDesc, e.Desc)
		repl.Set(placeholderRequiredScope, e.Scope)
	}
	if !hasErrorRoutes(r) {
		s.logRefusal(r, e, code, "")
		e.WriteBody(w)
		return nil
	}
	herr := caddyhttp.Error(e.Status, e)
	s.logRefusal(r, e, code, herr.ID)
	return herr
}

// logRefusal writes why a request was refused. errID is the id of the
// handler error (Caddy's {http.error.id}) when there is one, so the line
// can be matched with what handle_errors answered.
func (s *Scope) logRefusal(r *http.Request, e *bearer.Error, code, errID string) {
	ce := s.logger.Check(zap.InfoLevel, "request refused")
	if ce == nil {
		return
	}
	fields := []zap.Field{
		zap.Int("status", e.Status),
		zap.String("error", code),
		zap.String("reason", e.Desc),
		zap.String("method", r.Method),
		zap.String("path", requestPath(r)), // not the query: it may hold a token
		zap.String("remote_ip", reqinfo.ClientIP(r)),
	}
	if errID != "" {
		fields = append(fields, zap.String("err_id", errID))
	}
	ce.Write(fields...)
}

// requestPath is the path the client asked for, before any rewrite (the
// example's `uri strip_prefix` runs before oauth_scope).
func requestPath(r *http.Request) string {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		return orig.URL.Path
	}
	return r.URL.Path
}

// hasErrorRoutes reports whether the Caddy server handling r has
// handle_errors routes that will write the answer to a handler error.
func hasErrorRoutes(r *http.Request) bool {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	return ok && srv != nil && srv.Errors != nil && len(srv.Errors.Routes) > 0
}
