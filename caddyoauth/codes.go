package caddyoauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"time"

	"go.uber.org/zap"
)

// Authorization codes (RFC 6749 §4.1.2, §10.5): 256 random bits, stored
// only as a SHA-256 under codes/<hex> for codeTTL, redeemed once with the
// store's atomic Take. Redeeming leaves a marker at codes-used/<hex> naming
// what was issued, so a replay finds it and revokes those tokens (RFC 6749
// §4.1.2: "SHOULD revoke (when possible) all tokens previously issued based
// on that authorization code").

const codeTTL = 60 * time.Second

// codeRecord is what a code stands for.
type codeRecord struct {
	ClientID      string   `json:"client_id"`
	RedirectURI   string   `json:"redirect_uri"`
	RedirectGiven bool     `json:"redirect_given,omitempty"`
	Challenge     string   `json:"code_challenge,omitempty"`
	User          string   `json:"user"`
	AuthTime      int64    `json:"auth_time"`
	Scopes        []string `json:"scopes"`
	Created       int64    `json:"created"`
}

// codeUse is the marker a redeemed code leaves.
type codeUse struct {
	JTI       string `json:"jti"`
	Exp       int64  `json:"exp"`
	FamilyID  string `json:"family,omitempty"`
	ExpiresAt int64  `json:"expires_at"`
}

func secretKey(prefix, secret string) string {
	h := sha256.Sum256([]byte(secret))
	return prefix + hex.EncodeToString(h[:])
}

// issueCode stores a new code for an approved request and returns it.
func (a *App) issueCode(ctx context.Context, req *authzRequest, s *session) (string, error) {
	code, err := random256()
	if err != nil {
		return "", err
	}
	rec := codeRecord{
		ClientID: req.client.ID, RedirectURI: req.redirectURI, RedirectGiven: req.redirectGiven,
		Challenge: req.challenge, User: s.User, AuthTime: s.AuthTime, Scopes: req.scopes,
		Created: a.clock().Unix(),
	}
	b, _ := json.Marshal(rec)
	if err := a.store.Put(ctx, secretKey("codes/", code), b, codeTTL); err != nil {
		return "", err
	}
	return code, nil
}

// redeemCode is the authorization_code grant (RFC 6749 §4.1.3, RFC 7636
// §4.6): it takes the code, checks it was issued to this client for this
// redirect URI and this PKCE verifier, and returns what it stands for.
func (a *App) redeemCode(ctx context.Context, c *Client, form url.Values) (*codeRecord, string, *oauthError) {
	code := form.Get("code")
	if code == "" {
		return nil, "", badRequest(errInvalidRequest, "code is required")
	}
	if len(code) != 43 {
		return nil, "", badRequest(errInvalidGrant, "authorization code is invalid, expired or already used")
	}
	key := secretKey("codes/", code)
	b, err := a.store.Take(ctx, key)
	if errors.Is(err, ErrNotFound) {
		a.codeReplayed(ctx, key, c.ID)
		return nil, "", badRequest(errInvalidGrant, "authorization code is invalid, expired or already used")
	}
	if err != nil {
		return nil, "", unavailable()
	}
	rec := new(codeRecord)
	if json.Unmarshal(b, rec) != nil || rec.ClientID == "" {
		a.logger.Warn("corrupt authorization code entry in the store; treating it as absent")
		return nil, "", badRequest(errInvalidGrant, "authorization code is invalid, expired or already used")
	}
	// RFC 6749 §4.1.3: issued to this client; same redirect_uri if one was
	// sent with the authorization request.
	if subtle.ConstantTimeCompare([]byte(rec.ClientID), []byte(c.ID)) != 1 {
		return nil, "", badRequest(errInvalidGrant, "authorization code was issued to another client")
	}
	if ru := form.Get("redirect_uri"); (rec.RedirectGiven || ru != "") && ru != rec.RedirectURI {
		return nil, "", badRequest(errInvalidGrant, "redirect_uri does not match the authorization request")
	}
	if revoked, err := a.clientRevokedSince(ctx, c.ID, rec.Created); err != nil {
		return nil, "", unavailable()
	} else if revoked {
		return nil, "", badRequest(errInvalidGrant, "authorization code is invalid, expired or already used")
	}
	verifier := form.Get("code_verifier")
	switch {
	case rec.Challenge == "" && verifier != "":
		// A verifier for a code issued without a challenge is a PKCE
		// downgrade attempt (RFC 9700 §2.1.1).
		return nil, "", badRequest(errInvalidGrant, "code_verifier sent but the authorization request had no code_challenge")
	case rec.Challenge != "" && verifier == "":
		return nil, "", badRequest(errInvalidGrant, "code_verifier is required (RFC 7636 section 4.5)")
	case rec.Challenge != "" && !validVerifier(verifier):
		return nil, "", badRequest(errInvalidGrant, "code_verifier must be 43 to 128 unreserved characters (RFC 7636 section 4.1)")
	case rec.Challenge != "":
		sum := sha256.Sum256([]byte(verifier))
		got := base64.RawURLEncoding.EncodeToString(sum[:])
		if subtle.ConstantTimeCompare([]byte(got), []byte(rec.Challenge)) != 1 {
			return nil, "", badRequest(errInvalidGrant, "code_verifier does not match the code_challenge (RFC 7636 section 4.6)")
		}
	}
	return rec, key, nil
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

// markCodeUsed records what a redeemed code issued, for replay detection.
func (a *App) markCodeUsed(ctx context.Context, key string, use codeUse) {
	b, _ := json.Marshal(use)
	ttl := ttlUntil(time.Unix(use.ExpiresAt, 0))
	if err := a.store.Put(ctx, "codes-used/"+key[len("codes/"):], b, ttl); err != nil {
		a.logger.Warn("could not record a redeemed authorization code; a replay will not revoke its tokens", zap.Error(err))
	}
}

// codeReplayed revokes what a code issued when it is presented again.
func (a *App) codeReplayed(ctx context.Context, key, clientID string) {
	b, err := a.store.Get(ctx, "codes-used/"+key[len("codes/"):])
	if err != nil {
		return // never issued, expired, or the store is down
	}
	var use codeUse
	if json.Unmarshal(b, &use) != nil {
		return
	}
	a.logger.Warn("authorization code replayed: revoking the tokens it issued", zap.String("client_id", clientID))
	if use.JTI != "" {
		if err := a.revokeAccessToken(ctx, use.JTI, time.Unix(use.Exp, 0)); err != nil {
			a.logger.Error("revoking the access token of a replayed code failed", zap.Error(err))
		}
	}
	if use.FamilyID != "" {
		a.revokeFamily(ctx, use.FamilyID)
	}
}
