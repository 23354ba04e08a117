package caddyoauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthstore"
)

// errCodeInvalid is the one answer for a code that does not work, whatever
// the reason (RFC 6749 §5.2 invalid_grant).
var errCodeInvalid = badRequest(errInvalidGrant, "authorization code is invalid, expired or already used")

// authorizationCode is the authorization code grant's token request (RFC
// 6749 §4.1.3): the code becomes an access token for the person who
// approved it, and a refresh token when the client may refresh.
func (s *Server) authorizationCode(ctx context.Context, client *Client, form url.Values) (*tokenResponse, *oauthError) {
	a := s.app
	code := form.Get("code")
	requested, oerr := parseResources(form["resource"]) // before the code is spent
	if oerr != nil {
		return nil, oerr
	}
	now := a.clock()
	refresh := client.allowsGrant(GrantRefreshToken)
	// Name what the code will issue and record it before the code is
	// taken, so a replay arriving at any moment, even while this request
	// is between the take and the answer, revokes it (a jti or a family
	// revoked before it exists is refused once it does).
	use, oerr := s.reserveCode(ctx, client, code, now)
	if oerr != nil {
		return nil, oerr
	}
	rec, oerr := s.redeemCode(ctx, client, code, form)
	if oerr != nil {
		return nil, oerr
	}
	if use == nil {
		// The code appeared between the check and the take: it cannot be
		// one of ours (codes are stored before anyone knows them).
		return nil, errCodeInvalid
	}
	if _, ok, err := a.directory.lookup(ctx, rec.User); err != nil {
		return nil, unavailable()
	} else if !ok {
		return nil, badRequest(errInvalidGrant, "the user who approved the request no longer exists")
	}
	var scopes []string
	for _, sc := range rec.Scopes { // the client may have lost some since
		if slices.Contains(client.Scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	// RFC 8707 §2.2: the token may be for a subset of the code's
	// resources; the refresh family keeps them all.
	aud, oerr := a.grantAudience(client, rec.Resources, requested)
	if oerr != nil {
		return nil, oerr
	}
	// Keep the marker as long as what the code issued lives.
	final := *use
	final.ExpiresAt = now.Add(client.ttl + a.leeway() + codeReplayMargin).Unix()
	if refresh {
		final.ExpiresAt = now.Add(time.Duration(a.RefreshTokenMaxTTL)).Unix()
	}
	if err := a.rec.Codes.MarkUsed(ctx, code, final); err != nil {
		a.logger.Warn("could not keep a redeemed authorization code's marker; a replay after a minute will not revoke its tokens", zap.Error(err))
	}
	jti, familyID := use.JTI, use.FamilyID
	resp, oerr := s.signAccessID(client, accessGrant{sub: rec.User, authTime: rec.AuthTime, scopes: scopes, aud: aud, jkt: boundKey(ctx), x5t: boundCert(ctx)}, now, jti)
	if oerr != nil {
		return nil, oerr
	}
	if oerr := s.attachIDToken(ctx, resp, client, idGrant{user: rec.User, authTime: rec.AuthTime, scopes: scopes, nonce: rec.Nonce, sid: rec.SID}, now); oerr != nil {
		return nil, oerr
	}
	if refresh {
		fam := &oauthstore.Family{ClientID: client.ID, User: rec.User, AuthTime: rec.AuthTime, Scopes: scopes, Resources: rec.Resources, SID: rec.SID, JKT: familyKey(ctx, client), X5T: familyCert(ctx, client), Access: []oauthstore.AccessRef{{JTI: resp.jti, Exp: resp.exp}}}
		tok, err := a.rec.Families.Start(ctx, familyID, fam)
		if err != nil {
			s.logger.Error("storing a refresh token failed", zap.Error(err))
			return nil, unavailable()
		}
		resp.RefreshToken = tok
	}
	return resp, nil
}

// codeReplayMargin is added to the lifetime of a replay's revocation of a
// code's access token: the token is signed by whichever request takes the
// code, up to CodeTTL after the request that named its jti.
const codeReplayMargin = oauthstore.CodeTTL + time.Minute

// reserveCode names what code will issue (an access token's jti, and a
// refresh family when the client may refresh) and records it before the
// code is taken (oauthstore.Codes.Reserve): of concurrent redemptions the
// first to record wins the names, every one adopts them, and so the take's
// winner issues what a loser's replay revokes. Nothing is recorded for a
// code that cannot be taken (nil, nil): made-up codes leave no marker.
func (s *Server) reserveCode(ctx context.Context, c *Client, code string, now time.Time) (*oauthstore.CodeUse, *oauthError) {
	a := s.app
	if code == "" {
		return nil, nil
	}
	live, err := a.rec.Codes.Live(ctx, code)
	if err != nil {
		return nil, unavailable()
	}
	if !live {
		return nil, nil
	}
	jti, err := randomID()
	familyID, err2 := randomID()
	if err != nil || err2 != nil {
		return nil, &oauthError{Status: http.StatusInternalServerError, Code: errServerError}
	}
	// A family id always: the request that wins the take may be of a
	// client that refreshes even if this one does not (a stolen code).
	use := oauthstore.CodeUse{JTI: jti, Exp: now.Add(c.ttl).Unix(), FamilyID: familyID}
	// Until the code could no longer be taken, and a little after;
	// extended once the take is won.
	use.ExpiresAt = now.Add(2 * oauthstore.CodeTTL).Unix()
	got, err := a.rec.Codes.Reserve(ctx, code, use, 2*oauthstore.CodeTTL)
	if err != nil {
		return nil, unavailable() // the code is not spent: the client may retry
	}
	return got, nil
}

// redeemCode takes the code (RFC 6749 §4.1.3, RFC 7636 §4.6), checks it was
// issued to this client for this redirect URI and this PKCE verifier, and
// returns what it stands for.
func (s *Server) redeemCode(ctx context.Context, c *Client, code string, form url.Values) (*oauthstore.Code, *oauthError) {
	a := s.app
	if code == "" {
		return nil, badRequest(errInvalidRequest, "code is required")
	}
	rec, err := a.rec.Codes.Take(ctx, code)
	if errors.Is(err, ErrNotFound) {
		s.codeReplayed(ctx, code, c.ID)
		return nil, errCodeInvalid
	}
	if err != nil {
		return nil, unavailable()
	}
	// RFC 6749 §4.1.3: issued to this client; same redirect_uri if one was
	// sent with the authorization request.
	if subtle.ConstantTimeCompare([]byte(rec.ClientID), []byte(c.ID)) != 1 {
		return nil, badRequest(errInvalidGrant, "authorization code was issued to another client")
	}
	if ru := form.Get("redirect_uri"); (rec.RedirectGiven || ru != "") && ru != rec.RedirectURI {
		return nil, badRequest(errInvalidGrant, "redirect_uri does not match the authorization request")
	}
	if revoked, err := a.registry.revokedSince(ctx, c.ID, rec.Created); err != nil {
		return nil, unavailable()
	} else if revoked {
		return nil, errCodeInvalid
	}
	verifier := form.Get("code_verifier")
	switch {
	case rec.Challenge == "" && verifier != "":
		// A verifier for a code issued without a challenge is a PKCE
		// downgrade attempt (RFC 9700 §2.1.1).
		return nil, badRequest(errInvalidGrant, "code_verifier sent but the authorization request had no code_challenge")
	case rec.Challenge != "" && verifier == "":
		return nil, badRequest(errInvalidGrant, "code_verifier is required (RFC 7636 section 4.5)")
	case rec.Challenge != "" && !validVerifier(verifier):
		return nil, badRequest(errInvalidGrant, "code_verifier must be 43 to 128 unreserved characters (RFC 7636 section 4.1)")
	case rec.Challenge != "":
		sum := sha256.Sum256([]byte(verifier))
		got := base64.RawURLEncoding.EncodeToString(sum[:])
		if subtle.ConstantTimeCompare([]byte(got), []byte(rec.Challenge)) != 1 {
			return nil, badRequest(errInvalidGrant, "code_verifier does not match the code_challenge (RFC 7636 section 4.6)")
		}
	}
	// RFC 9449 §10: a code bound with dpop_jkt needs a proof by that key.
	if rec.DPoPJKT != "" && boundKey(ctx) != rec.DPoPJKT {
		return nil, badRequest(errInvalidDPoPProof, "the authorization code is bound to another DPoP key (dpop_jkt)")
	}
	return rec, nil
}

// validVerifier applies RFC 7636 §4.1: 43 to 128 of [A-Z a-z 0-9 - . _ ~].
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !isBase64URLChar(c) && c != '.' && c != '~' {
			return false
		}
	}
	return true
}

// codeReplayed revokes what a code issued when it is presented again (RFC
// 6749 §4.1.2: "SHOULD revoke (when possible) all tokens previously issued
// based on that authorization code").
func (s *Server) codeReplayed(ctx context.Context, code, clientID string) {
	a := s.app
	use, err := a.rec.Codes.Used(ctx, code)
	if err != nil {
		return // never issued, expired, or the store is down
	}
	a.logger.Warn("authorization code replayed: revoking the tokens it issued", zap.String("client_id", clientID))
	if use.JTI != "" {
		if err := a.revokeAccessToken(ctx, use.JTI, time.Unix(use.Exp, 0).Add(codeReplayMargin)); err != nil {
			a.logger.Error("revoking the access token of a replayed code failed", zap.Error(err))
		}
	}
	if use.FamilyID != "" {
		a.revokeFamily(ctx, use.FamilyID)
	}
}
