package caddyoauth

import (
	"net/http"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// tokenResponse is a successful token response (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	IDToken      string `json:"id_token,omitempty"` // OpenID Connect Core §3.1.3.3

	jti string
	exp int64
}

// accessTokenClaims is the payload of an issued access token (RFC 9068 §2.2).
type accessTokenClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience audience `json:"aud"` // RFC 8707: the resources asked for
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	ID       string   `json:"jti"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope,omitempty"`
	// AuthTime is when the person signed in (RFC 9068 §2.2.1); absent for
	// client credentials, which is how userinfo tells the two apart.
	AuthTime int64 `json:"auth_time,omitempty"`
	// Cnf binds the token to the key of a DPoP proof (RFC 9449 §6.1,
	// RFC 7800 §3.1) or a TLS client certificate (RFC 8705 §3.1), or
	// both; nil for a bearer token.
	Cnf *confirmation `json:"cnf,omitempty"`
}

// confirmation is the cnf claim of a sender-constrained token.
type confirmation struct {
	JKT     string `json:"jkt,omitempty"`      // RFC 9449 §6.1
	X5TS256 string `json:"x5t#S256,omitempty"` // RFC 8705 §3.1
}

// serveToken is the token endpoint (RFC 6749 §3.2).
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var grantType, claimed string
	client, oerr := s.token(w, r, &grantType, &claimed)
	observeToken(start, grantType, client, oerr)
	if oerr == nil && client != nil {
		s.app.audit.emit(r, eventTokenIssued, map[string]any{"client_id": client.ID, "grant": grantLabel(grantType)})
	} else if oerr != nil {
		s.app.audit.emit(r, eventTokenRefused, map[string]any{"client_id": claimed, "grant": grantLabel(grantType), "error": oerr.Code})
	}
}

// token answers a token request; it returns the client a token was issued
// to, or the error it answered, and sets grantType and the client_id the
// request claimed once they are read, for the metrics and the audit log.
func (s *Server) token(w http.ResponseWriter, r *http.Request, grantType, claimed *string) (*Client, *oauthError) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		e := &oauthError{Status: http.StatusMethodNotAllowed, Code: errInvalidRequest, Description: "the token endpoint accepts POST only"}
		writeOAuthError(w, e)
		return nil, e
	}
	form, oerr := parseForm(w, r)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return nil, oerr
	}
	*grantType = form.Get("grant_type")
	cc, oerr := readClientCredentials(r, form)
	if oerr != nil {
		e := challengeIfBasic(oerr, r)
		writeOAuthError(w, e)
		return nil, e
	}
	cc.audiences = s.assertionAud
	*claimed = cc.id
	var client *Client
	if g, ok := findGrant(form.Get("grant_type")); ok && g.anonymous != nil && cc.method == "" {
		client, oerr = g.anonymous(s.app, form)
	} else {
		client, oerr = s.app.authenticate(r.Context(), cc)
	}
	if oerr != nil && oerr.Status == http.StatusServiceUnavailable {
		s.logger.Warn("client lookup failed: the store is unavailable", zap.String("client_id", cc.id))
		writeOAuthError(w, oerr)
		return nil, oerr
	}
	if oerr != nil {
		if ce := s.logger.Check(zap.InfoLevel, "client authentication failed"); ce != nil {
			ce.Write(zap.String("client_id", cc.id), zap.String("method", cc.method), zap.String("remote_ip", r.RemoteAddr))
		}
		e := challengeIfBasic(oerr, r)
		writeOAuthError(w, e)
		return nil, e
	}
	setClientPlaceholders(r, client)
	g, oerr := grantFor(client, form.Get("grant_type"))
	if oerr != nil {
		writeOAuthError(w, oerr)
		return nil, oerr
	}
	ctx, oerr := s.tokenProof(w, r, client)
	if oerr == nil {
		ctx, oerr = certBinding(ctx, r, client)
	}
	if oerr != nil {
		writeOAuthError(w, oerr)
		return nil, oerr
	}
	resp, oerr := g.token(s, ctx, client, form)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return nil, oerr
	}
	writeTokenResponse(w, resp) // with Cache-Control: no-store
	return client, nil
}

// accessGrant is what an access token is issued for: its subject, when
// the person signed in (0 for none), its scopes and its audience.
type accessGrant struct {
	sub      string
	authTime int64
	scopes   []string
	aud      []string
	jkt      string // the DPoP key the token is bound to; "" for a bearer token
	x5t      string // the TLS client certificate it is bound to (RFC 8705 §3); "" for none
}

// rememberedClaims is what the verifier would read from an access token
// signed with claims: the same values, without parsing them back.
func rememberedClaims(c *accessTokenClaims, scopes []string) *oauthjwt.Claims {
	out := &oauthjwt.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    c.Issuer,
			Subject:   c.Subject,
			Audience:  jwt.ClaimStrings(c.Audience),
			ExpiresAt: jwt.NewNumericDate(time.Unix(c.Expiry, 0)),
			IssuedAt:  jwt.NewNumericDate(time.Unix(c.IssuedAt, 0)),
			ID:        c.ID,
		},
		ClientID: c.ClientID,
		Scope:    oauthjwt.ScopeClaim(scopes),
	}
	if c.Cnf != nil {
		out.Cnf = &oauthjwt.Confirmation{JKT: c.Cnf.JKT, X5TS256: c.Cnf.X5TS256}
	}
	return out
}

// setClientPlaceholders names the authenticated client on the request's
// replacer: {oauth.client_id}, as oauth_scope sets it on API routes, and
// Caddy's {http.auth.user.id}, which the access log shows as user_id, so
// the log (and a log_append or a handler after this one) sees who asked
// for a token.
func setClientPlaceholders(r *http.Request, c *Client) {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return
	}
	repl.Set("oauth.client_id", c.ID)
	repl.Set("http.auth.user.id", c.ID)
}

// signAccess signs an access token, or answers server_error.
func (s *Server) signAccess(client *Client, g accessGrant, now time.Time) (*tokenResponse, *oauthError) {
	return s.signAccessID(client, g, now, "")
}

// signAccessID is signAccess with a jti chosen beforehand ("" for a new one).
func (s *Server) signAccessID(client *Client, g accessGrant, now time.Time, jti string) (*tokenResponse, *oauthError) {
	resp, err := s.app.issueAccessToken(client, g, now, jti)
	if err != nil {
		s.logger.Error("signing access token", zap.String("client_id", client.ID), zap.Error(err))
		return nil, &oauthError{Status: http.StatusInternalServerError, Code: errServerError}
	}
	return resp, nil
}

// grantedScopes applies RFC 6749 §3.3: no scope means the client's allowed
// scopes; a requested scope outside them is invalid_scope.
func grantedScopes(c *Client, requested string) ([]string, *oauthError) {
	if requested == "" {
		return c.Scopes, nil
	}
	scopes, err := oauthjwt.ParseScope(requested)
	if err != nil {
		return nil, badRequest(errInvalidScope, "scope is malformed")
	}
	for _, sc := range scopes {
		if !slices.Contains(c.Scopes, sc) {
			return nil, badRequest(errInvalidScope, "scope "+safeParam(sc)+" is not allowed for this client")
		}
	}
	return scopes, nil
}

// issueAccessToken signs an RFC 9068 access token for client on behalf of
// g.sub.
func (a *App) issueAccessToken(c *Client, g accessGrant, now time.Time, jti string) (*tokenResponse, error) {
	if jti == "" {
		var err error
		if jti, err = randomID(); err != nil {
			return nil, err
		}
	}
	if len(g.aud) == 0 { // every grant names one; never an empty aud
		g.aud = []string{a.Audience}
	}
	scope := oauthjwt.JoinScope(g.scopes)
	claims := accessTokenClaims{
		Issuer:   a.Issuer,
		Subject:  g.sub,
		Audience: g.aud,
		IssuedAt: now.Unix(),
		Expiry:   now.Add(c.ttl).Unix(),
		ID:       jti,
		ClientID: c.ID,
		Scope:    scope,
		AuthTime: g.authTime,
	}
	tokenType := "Bearer"
	if g.jkt != "" || g.x5t != "" {
		claims.Cnf = &confirmation{JKT: g.jkt, X5TS256: g.x5t}
	}
	if g.jkt != "" {
		tokenType = "DPoP" // RFC 9449 §5; a certificate-bound token stays Bearer (RFC 8705 §3)
	}
	var (
		tok string
		err error
	)
	buf := getBuf()
	*buf = claims.appendJSON(*buf)
	if c.hsKey != nil {
		tok, err = c.hsKey.SignAccessTokenJSON(*buf)
	} else {
		tok, err = a.keys.current.Load().SignAccessTokenJSON(*buf)
	}
	putBuf(buf)
	if err != nil {
		return nil, err
	}
	if c.hsKey == nil && a.verifier != nil {
		// oauth_scope in this process need not check the signature it
		// just made. HS256 tokens are verified (their claims are bounded
		// by checkHMACClaims, which Remember would skip).
		a.verifier.Remember(tok, rememberedClaims(&claims, g.scopes))
	}
	if ce := a.logger.Check(zap.DebugLevel, "issued access token"); ce != nil {
		ce.Write(zap.String("client_id", c.ID), zap.String("sub", g.sub), zap.String("jti", jti), zap.String("scope", scope), zap.Strings("aud", g.aud))
	}
	return &tokenResponse{AccessToken: tok, TokenType: tokenType, ExpiresIn: int64(c.ttl / time.Second), Scope: scope, jti: jti, exp: claims.Expiry}, nil
}
