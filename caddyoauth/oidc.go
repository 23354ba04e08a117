package caddyoauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"github.com/caddyapigw/gateway/internal/oauthstore"
)

// OpenID Connect on top of the code flow (OpenID Connect Core 1.0): the
// openid scope makes the token endpoint add an ID token (§3.1.3.3), signed
// with RS256 unless the client asks for the app's algorithm (§15.1: every
// relying party supports RS256); the authorization request's OpenID
// parameters (§3.1.2.1: nonce, prompt, max_age, login_hint, id_token_hint)
// are read in authorize_request.go and applied here.

// OpenID Connect scopes (Core §3.1.2.1, §5.4).
const (
	scopeOpenID  = "openid"
	scopeProfile = "profile"
	scopeEmail   = "email"
	scopePhone   = "phone"
	scopeAddress = "address"
)

// Authorization errors of OpenID Connect Core §3.1.2.6.
const (
	errLoginRequired         = "login_required"
	errConsentRequired       = "consent_required"
	errRequestNotSupported   = "request_not_supported"
	errRequestURINotSupp     = "request_uri_not_supported"
	errRegistrationNotSupp   = "registration_not_supported"
	maxNonceLen              = 512
	maxLoginHintLen          = 256
	idTokenKeyringAlgorithm  = oauthjwt.RS256
	idTokenHintMaxCharacters = 4096
)

// hasOpenID reports whether scopes hold openid.
func hasOpenID(scopes []string) bool { return slices.Contains(scopes, scopeOpenID) }

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
	algs := []string{oauthjwt.RS256}
	if a.SigningKey.Algorithm != oauthjwt.RS256 {
		algs = append(algs, a.SigningKey.Algorithm)
	}
	return algs
}

// idKeyring holds the RS256 keyring of ID tokens when the app's own key
// uses another algorithm. It is loaded (generated the first time) when a
// configured client has the openid scope, or on first use: an RSA key
// costs time to make, which a configuration without OpenID Connect need
// not spend.
type idKeyring struct {
	keys *signingKeys
	mu   sync.Mutex // serialises the first load

	lastPeek atomic.Int64 // last store read for the JWKS (published)
}

// loaded returns the keyring, or nil before it is loaded.
func (k *idKeyring) loaded() *oauthjwt.Keyring {
	if k == nil {
		return nil
	}
	return k.keys.current.Load()
}

// get returns the keyring, loading it first if need be (nil for a nil
// idKeyring).
func (k *idKeyring) get(ctx context.Context) (*oauthjwt.Keyring, error) {
	if kr := k.loaded(); kr != nil || k == nil {
		return kr, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if kr := k.loaded(); kr != nil {
		return kr, nil
	}
	kr, err := k.keys.load(ctx)
	if err != nil {
		return nil, err
	}
	k.keys.current.Store(kr)
	return kr, nil
}

// published returns the keyring for the JWKS: the loaded one, or the one
// another instance of a cluster made, read from the store at most once per
// keyringMissRefresh until there is one. It never makes a key: a
// configuration without OpenID Connect publishes none.
func (k *idKeyring) published(ctx context.Context) *oauthjwt.Keyring {
	if kr := k.loaded(); kr != nil || k == nil {
		return kr
	}
	now := time.Now().UnixNano()
	last := k.lastPeek.Load()
	if now-last < int64(keyringMissRefresh) || !k.lastPeek.CompareAndSwap(last, now) {
		return nil
	}
	kr, ok, err := k.keys.read(ctx, idTokenKeyringAlgorithm)
	if err != nil || !ok {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if cur := k.loaded(); cur != nil {
		return cur
	}
	k.keys.current.Store(kr)
	return kr
}

// newIDKeyring is the app's ID-token keyring, nil when the app's key is
// RS256 already.
func (a *App) newIDKeyring() *idKeyring {
	if a.SigningKey.Algorithm == idTokenKeyringAlgorithm {
		return nil
	}
	cfg := &SigningKeyConfig{Algorithm: idTokenKeyringAlgorithm, RotateEvery: a.SigningKey.RotateEvery}
	return &idKeyring{keys: &signingKeys{issuer: oauthstore.IDTokenKeyring(a.Issuer), cfg: cfg, rings: a.rec.Keyrings, clock: a.clock, logger: a.logger}}
}

// anyOpenIDClient reports whether a configured client may ask for openid.
func (a *App) anyOpenIDClient() bool {
	for _, c := range a.clients {
		if hasOpenID(c.Scopes) {
			return true
		}
	}
	return false
}

// idTokenKeyring is the keyring that signs c's ID tokens.
func (a *App) idTokenKeyring(ctx context.Context, c *Client) (*oauthjwt.Keyring, error) {
	if a.idKeys == nil || c.idTokenAlg() == a.SigningKey.Algorithm {
		return a.keys.current.Load(), nil
	}
	return a.idKeys.get(ctx)
}

// idKeyLoops runs the ID-token keyring's turns of the keyring loops.
func (a *App) refreshIDKeys(ctx context.Context) {
	if a.idKeys.loaded() != nil {
		a.idKeys.keys.refreshOnce(ctx)
	}
}

func (a *App) rotateIDKeys(ctx context.Context) {
	if a.idKeys.loaded() != nil {
		a.idKeys.keys.rotateOnce(ctx)
	}
}

// errHintForeign is the refusal of an ID token of another client.
var errHintForeign = errors.New("the ID token was not issued to this client")

// checkIDTokenHint verifies an id_token_hint (Core §3.1.2.1): an ID token
// this server issued, to client. It may have expired; its signature, typ,
// iss and aud must hold. It returns the token's sub.
func (a *App) checkIDTokenHint(ctx context.Context, tok, client string) (string, error) {
	if len(tok) > idTokenHintMaxCharacters {
		return "", errors.New("too long")
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
		return "", errors.New("not an ID token issued here")
	}
	if iss, _ := claims.GetIssuer(); iss != a.Issuer {
		return "", errors.New("not an ID token issued here")
	}
	aud, _ := claims.GetAudience()
	if !slices.Contains(aud, client) {
		return "", errHintForeign
	}
	sub, _ := claims.GetSubject()
	if sub == "" {
		return "", errors.New("the ID token has no sub")
	}
	return sub, nil
}
