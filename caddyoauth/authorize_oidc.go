package caddyoauth

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// The OpenID Connect parameters of an authorization request (OpenID
// Connect Core 1.0 §3.1.2.1: nonce, prompt, max_age, login_hint,
// id_token_hint), read by parseAuthorizeRequest and applied by
// serveAuthorize, afterLogin and showLogin; and the request parameters
// Core defines that this server does not offer (§6, §7.2.1).

// Authorization errors of OpenID Connect Core §3.1.2.6.
const (
	errLoginRequired       = "login_required"
	errConsentRequired     = "consent_required"
	errRequestNotSupported = "request_not_supported"
	errRequestURINotSupp   = "request_uri_not_supported"
	errRegistrationNotSupp = "registration_not_supported"
)

// Bounds of the parameters' lengths.
const (
	maxNonceLen              = 512
	maxLoginHintLen          = 256 // longer: ignored
	idTokenHintMaxCharacters = 4096
)

// oidcParams are the OpenID Connect parameters of an authorization
// request (Core §3.1.2.1).
type oidcParams struct {
	nonce     string
	prompt    []string // none, login, consent, select_account
	maxAge    int64    // -1 when absent
	loginHint string
	hintSub   string // sub of a verified id_token_hint
}

func (p *oidcParams) prompts(v string) bool { return slices.Contains(p.prompt, v) }

// parseOIDCParams reads and checks the OpenID Connect parameters of q for
// client c; errors go back to the redirect URI.
func (s *Server) parseOIDCParams(ctx context.Context, q url.Values, c *Client) (oidcParams, *authzError) {
	p := oidcParams{maxAge: -1}
	// Core §6.1, §6.2, §7.2.1: Request Objects and self-issued
	// registration are not offered, and the errors say so.
	switch {
	case q.Has("request"):
		return p, redirectError(errRequestNotSupported, "request objects are not supported")
	case q.Has("request_uri"):
		return p, redirectError(errRequestURINotSupp, "request_uri is not supported")
	case q.Has("registration"):
		return p, redirectError(errRegistrationNotSupp, "the registration parameter is not supported")
	}
	p.nonce = q.Get("nonce")
	if len(p.nonce) > maxNonceLen {
		return p, redirectError(errInvalidRequest, "nonce is too long")
	}
	if v := q.Get("prompt"); v != "" {
		for _, pr := range strings.Fields(v) {
			switch pr {
			case "none", "login", "consent", "select_account":
				if !slices.Contains(p.prompt, pr) {
					p.prompt = append(p.prompt, pr)
				}
			default:
				return p, redirectError(errInvalidRequest, "prompt value "+safeParam(pr)+" is not supported")
			}
		}
		// Core §3.1.2.1: none with any other value is an error.
		if p.prompts("none") && len(p.prompt) > 1 {
			return p, redirectError(errInvalidRequest, "prompt=none cannot be combined with other prompt values")
		}
	}
	if v := q.Get("max_age"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return p, redirectError(errInvalidRequest, "max_age must be a non-negative number of seconds")
		}
		p.maxAge = n
	}
	p.loginHint = q.Get("login_hint")
	if len(p.loginHint) > maxLoginHintLen {
		p.loginHint = ""
	}
	if hint := q.Get("id_token_hint"); hint != "" {
		sub, err := s.app.checkIDTokenHint(ctx, hint, c.ID)
		if err != nil {
			return p, redirectError(errInvalidRequest, "id_token_hint: "+err.Error())
		}
		p.hintSub = sub
	}
	return p, nil
}

// needsSignIn reports whether the signed-in session may not answer the
// request: prompt=login or select_account (Core §3.1.2.1), an auth_time
// older than max_age (max_age=0 is prompt=login), or an id_token_hint for
// another person.
func (p *oidcParams) needsSignIn(sess *session, now time.Time) bool {
	switch {
	case p.prompts("login"), p.prompts("select_account"):
		return true
	case p.maxAge == 0:
		return true
	case p.maxAge > 0 && now.Unix()-sess.AuthTime > p.maxAge:
		return true
	case p.hintSub != "" && p.hintSub != sess.User:
		return true
	}
	return false
}

// signedInQuery is the request to continue with once the person has just
// signed in: without what asked for that sign-in (prompt=login,
// select_account, max_age, an id_token_hint naming someone else), so the
// authorization endpoint does not ask again. A relying party that needs
// a fresh sign-in checks the ID token's auth_time (Core §3.1.2.1), which
// is now.
func signedInQuery(query string) string {
	q, err := url.ParseQuery(query)
	if err != nil {
		return query
	}
	if q.Has("prompt") {
		var keep []string
		for _, pr := range strings.Fields(q.Get("prompt")) {
			if pr != "login" && pr != "select_account" {
				keep = append(keep, pr)
			}
		}
		if len(keep) == 0 {
			q.Del("prompt")
		} else {
			q.Set("prompt", strings.Join(keep, " "))
		}
	}
	q.Del("max_age")
	q.Del("id_token_hint")
	return q.Encode()
}

// errHintForeign is the refusal of an ID token of another client.
var errHintForeign = errors.New("the ID token was not issued to this client")

// checkIDTokenHint verifies an id_token_hint (Core §3.1.2.1): an ID token
// this server issued, to client. It may have expired; its signature, typ,
// iss and aud must hold. It returns the token's sub.
func (a *App) checkIDTokenHint(ctx context.Context, tok, client string) (string, error) {
	h, err := a.readIDTokenHint(ctx, tok)
	if err != nil {
		return "", err
	}
	if !slices.Contains(h.aud, client) {
		return "", errHintForeign
	}
	return h.sub, nil
}

// idHint is what an id_token_hint says.
type idHint struct {
	sub, sid string
	aud      []string
}

// readIDTokenHint verifies an ID token this server issued, expired or
// not: signature, typ, iss, and a sub.
func (a *App) readIDTokenHint(ctx context.Context, tok string) (*idHint, error) {
	if len(tok) > idTokenHintMaxCharacters {
		return nil, errors.New("too long")
	}
	keyFor := func(kid string) (*oauthjwt.Key, bool) {
		if k, ok := a.keys.current.Load().Lookup(kid); ok {
			return k, true
		}
		if kr := a.idKeys.published(ctx); kr != nil {
			return kr.Lookup(kid)
		}
		return nil, false
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithValidMethods(oauthjwt.SupportedAlgs)).ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != oauthjwt.IDTokenType {
			return nil, errors.New("not an ID token")
		}
		kid, _ := t.Header["kid"].(string)
		k, ok := keyFor(kid)
		if !ok || k.Alg != t.Method.Alg() {
			return nil, errors.New("unknown key")
		}
		return k.Public, nil
	})
	if err != nil {
		return nil, errors.New("not an ID token issued here")
	}
	if iss, _ := claims.GetIssuer(); iss != a.Issuer {
		return nil, errors.New("not an ID token issued here")
	}
	h := &idHint{}
	h.aud, _ = claims.GetAudience()
	h.sub, _ = claims.GetSubject()
	h.sid, _ = claims["sid"].(string)
	if h.sub == "" {
		return nil, errors.New("the ID token has no sub")
	}
	return h, nil
}
