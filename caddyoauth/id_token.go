package caddyoauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// OpenID Connect on top of the code flow (OpenID Connect Core 1.0): the
// openid scope makes the token endpoint add an ID token (§3.1.3.3), signed
// with RS256 unless the client asks for the app's algorithm (§15.1: every
// relying party supports RS256); the authorization request's OpenID
// parameters (§3.1.2.1) are in authorize_oidc.go, the RS256 keyring in
// keys_id_token.go, discovery in oidc_discovery.go.

// OpenID Connect scopes (Core §3.1.2.1, §5.4).
const (
	scopeOpenID  = "openid"
	scopeProfile = "profile"
	scopeEmail   = "email"
	scopePhone   = "phone"
	scopeAddress = "address"
)

// hasOpenID reports whether scopes hold openid.
func hasOpenID(scopes []string) bool { return slices.Contains(scopes, scopeOpenID) }

// idTokenClaims are an ID token's registered claims (Core §2, §3.1.3.6);
// the person's claims allowed by the scopes are added to them.
type idTokenClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	Expiry   int64  `json:"exp"`
	IssuedAt int64  `json:"iat"`
	AuthTime int64  `json:"auth_time"`
	Nonce    string `json:"nonce,omitempty"`
	AZP      string `json:"azp"`
	AtHash   string `json:"at_hash"`
	SID      string `json:"sid,omitempty"`
}

// idGrant is what an ID token is issued for.
type idGrant struct {
	user     string
	authTime int64
	scopes   []string
	nonce    string // "" on refresh (Core §12.2)
	sid      string
}

// attachIDToken adds an ID token to resp when the grant's scopes hold
// openid (Core §3.1.3.3, §12.2); otherwise it does nothing.
func (s *Server) attachIDToken(ctx context.Context, resp *tokenResponse, c *Client, g idGrant, now time.Time) *oauthError {
	if !hasOpenID(g.scopes) {
		return nil
	}
	a := s.app
	user, ok, err := a.directory.lookup(ctx, g.user)
	if err != nil {
		return unavailable()
	}
	if !ok {
		return badRequest(errInvalidGrant, "the user no longer exists")
	}
	kr, err := a.idTokenKeyring(ctx, c)
	if err != nil {
		s.logger.Error("loading the ID token keyring", zap.Error(err))
		return unavailable()
	}
	base := idTokenClaims{
		Issuer: a.Issuer, Subject: user.Username, Audience: c.ID,
		IssuedAt: now.Unix(), Expiry: now.Add(c.ttl).Unix(), AuthTime: g.authTime,
		Nonce: g.nonce, AZP: c.ID, SID: g.sid,
		AtHash: oauthjwt.HalfHash(kr.Active().Alg, resp.AccessToken),
	}
	claims := userClaims(user, g.scopes)
	if err := mergeStruct(claims, base); err != nil {
		return &oauthError{Status: http.StatusInternalServerError, Code: errServerError}
	}
	tok, err := kr.SignIDToken(claims)
	if err != nil {
		s.logger.Error("signing an ID token", zap.String("client_id", c.ID), zap.Error(err))
		return &oauthError{Status: http.StatusInternalServerError, Code: errServerError}
	}
	resp.IDToken = tok
	return nil
}

// userClaims are the person's claims that scopes allow (Core §5.4):
// profile gives name, preferred_username and the free-form claims, email
// gives email and email_verified, phone and address their claims. sub is
// always there.
func userClaims(u *User, scopes []string) map[string]any {
	out := map[string]any{"sub": u.Username}
	has := func(s string) bool { return slices.Contains(scopes, s) }
	for k, v := range u.Claims {
		var sc string
		switch k {
		case "email_verified":
			sc = scopeEmail
		case "phone_number", "phone_number_verified":
			sc = scopePhone
		case "address":
			sc = scopeAddress
		default:
			sc = scopeProfile
		}
		if !has(sc) {
			continue
		}
		switch v {
		case "true":
			if strings.HasSuffix(k, "_verified") {
				out[k] = true
				continue
			}
		case "false":
			if strings.HasSuffix(k, "_verified") {
				out[k] = false
				continue
			}
		}
		out[k] = v
	}
	if has(scopeProfile) {
		out["preferred_username"] = u.Username
		if u.Name != "" {
			out["name"] = u.Name
		}
	}
	if has(scopeEmail) && u.Email != "" {
		out["email"] = u.Email
	}
	return out
}

// mergeStruct sets the JSON members of v on m, overriding m's.
func mergeStruct(m map[string]any, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	for k, x := range fields {
		m[k] = x
	}
	return nil
}

// idTokenAlg is the alg of the client's ID tokens: its
// id_token_signed_response_alg (OpenID Connect Dynamic Client
// Registration §2), RS256 by default.
func (c *Client) idTokenAlg() string {
	if c.IDTokenSignedResponseAlg != "" {
		return c.IDTokenSignedResponseAlg
	}
	return oauthjwt.RS256
}

// checkIDTokenAlg validates id_token_signed_response_alg against the
// algorithms the app can sign ID tokens with.
func (c *Client) checkIDTokenAlg(appAlg string) error {
	alg := c.IDTokenSignedResponseAlg
	if alg == "" || alg == oauthjwt.RS256 || alg == appAlg {
		return nil
	}
	return fmt.Errorf("id_token_signed_response_alg: %q is neither RS256 nor the signing key's algorithm (%s)", alg, appAlg)
}

// idTokenAlgs are the algorithms ID tokens are signed with (Discovery §3
// id_token_signing_alg_values_supported): RS256 first, then the app's.
func (a *App) idTokenAlgs() []string {
	if a.fapi2() {
		return []string{a.SigningKey.Algorithm}
	}
	algs := []string{oauthjwt.RS256}
	if a.SigningKey.Algorithm != oauthjwt.RS256 {
		algs = append(algs, a.SigningKey.Algorithm)
	}
	return algs
}
