package caddyoauth

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// Refresh tokens (RFC 6749 §6, RFC 9700 §4.14). A refresh token is 256
// random bits, opaque to the client; the store keeps its SHA-256 under
// refresh-tokens/<hex>, pointing to its family (the chain of tokens that one
// sign-in started) and its place in the chain. Each use rotates it: the
// family moves to the next generation and the presented token is marked
// used with an atomic PutIfAbsent, so of two concurrent uses, on any
// instances, one wins. A token used again, or one from an earlier
// generation, revokes the whole family and the access token it last issued
// (RFC 9700 §4.14.2). A token lapses after RefreshTokenTTL without use; a
// family ends RefreshTokenMaxTTL after its sign-in.

// refreshFamily is the chain of refresh tokens from one sign-in.
type refreshFamily struct {
	ClientID string   `json:"client_id"`
	User     string   `json:"user"`
	AuthTime int64    `json:"auth_time"`
	Scopes   []string `json:"scopes"` // as first granted; never widened
	Gen      int      `json:"gen"`    // generation of the live token
	Created  int64    `json:"created"`
	MaxExp   int64    `json:"max_exp"`
	// Access lists the family's access tokens that have not expired, so
	// revoking the family revokes all of them (RFC 7009 §2.1).
	Access []accessRef `json:"access,omitempty"`
}

// accessRef names an issued access token.
type accessRef struct {
	JTI string `json:"jti"`
	Exp int64  `json:"exp"`
}

// refreshToken is one token of a family.
type refreshToken struct {
	Family  string `json:"family"`
	Gen     int    `json:"gen"`
	IdleExp int64  `json:"idle_exp"`
}

func familyKey(id string) string        { return "refresh-families/" + id }
func familyRevokedKey(id string) string { return "refresh-revoked/" + id }

// errRefreshInvalid is the one answer for a refresh token that does not
// work, whatever the reason (RFC 6749 §5.2 invalid_grant).
var errRefreshInvalid = badRequest(errInvalidGrant, "refresh token is invalid, expired or revoked")

// newFamily starts a refresh-token family for a sign-in and returns its id
// and first token. The caller records the access token with setAccess.
func (a *App) newFamily(ctx context.Context, id string, fam *refreshFamily, now time.Time) (string, string, error) {
	fam.MaxExp = now.Add(time.Duration(a.RefreshTokenMaxTTL)).Unix()
	fam.Created = now.Unix()
	tok, err := a.putRefreshToken(ctx, id, fam, now)
	if err != nil {
		return "", "", err
	}
	// Index the family under its person and client, so withdrawing the
	// person's consent for the client can end it.
	if err := a.store.Put(ctx, userFamiliesPrefix(fam.User, fam.ClientID)+id, nil, ttlUntil(time.Unix(fam.MaxExp, 0))); err != nil {
		a.logger.Warn("indexing a refresh token family failed; withdrawing consent will not end it", zap.Error(err))
	}
	return id, tok, nil
}

// userFamiliesPrefix is where a person's families for a client are indexed.
func userFamiliesPrefix(user, client string) string {
	return "user-families/" + storeSafeID(user) + "/" + storeSafeID(client) + "/"
}

// revokeUserFamilies ends every refresh-token family the person holds for
// the client, and their access tokens.
func (a *App) revokeUserFamilies(ctx context.Context, user, client string) error {
	prefix := userFamiliesPrefix(user, client)
	keys, err := a.store.List(ctx, prefix)
	if err != nil {
		return err
	}
	for _, k := range keys {
		id := k[len(prefix):]
		a.revokeFamily(ctx, id)
		if err := a.store.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// putRefreshToken saves the family at its current generation and a new
// token for that generation.
func (a *App) putRefreshToken(ctx context.Context, id string, fam *refreshFamily, now time.Time) (string, error) {
	tok, err := random256()
	if err != nil {
		return "", err
	}
	maxExp := time.Unix(fam.MaxExp, 0)
	life := maxExp.Sub(now)
	if life <= 0 {
		return "", errors.New("refresh token family has ended")
	}
	idle := now.Add(time.Duration(a.RefreshTokenTTL))
	if idle.After(maxExp) {
		idle = maxExp
	}
	// The token first, then the family that makes it the live one: if the
	// second write fails, the presented token is still the live one and a
	// retry works. The token's entry outlives its idle deadline, until the
	// family ends, so that its reuse after rotation is recognised.
	tb, _ := json.Marshal(refreshToken{Family: id, Gen: fam.Gen, IdleExp: idle.Unix()})
	if err := a.store.Put(ctx, secretKey("refresh-tokens/", tok), tb, life); err != nil {
		return "", err
	}
	fb, _ := json.Marshal(fam)
	if err := a.store.Put(ctx, familyKey(id), fb, life); err != nil {
		return "", err
	}
	return tok, nil
}

// rotateRefresh is the refresh_token grant (RFC 6749 §6): it checks the
// presented token and the requested scope, rotates the token and returns
// the family at its new generation, the family id, the new refresh token
// and the scopes of the new access token. Nothing is rotated when the
// request fails for another reason than reuse.
func (a *App) rotateRefresh(ctx context.Context, c *Client, presented, requested string, now time.Time) (*refreshFamily, string, string, []string, *oauthError) {
	if presented == "" {
		return nil, "", "", nil, badRequest(errInvalidRequest, "refresh_token is required")
	}
	key := secretKey("refresh-tokens/", presented)
	rt, err := a.readRefreshToken(ctx, presented)
	if err != nil {
		return nil, "", "", nil, unavailable()
	}
	if rt == nil {
		return nil, "", "", nil, errRefreshInvalid
	}
	fam, err := a.loadFamily(ctx, rt.Family)
	if err != nil {
		return nil, "", "", nil, unavailable()
	}
	if fam == nil {
		return nil, "", "", nil, errRefreshInvalid
	}
	// RFC 6749 §6: the token must have been issued to the authenticated
	// client. Another client presenting it does not burn it.
	if fam.ClientID != c.ID {
		return nil, "", "", nil, errRefreshInvalid
	}
	// An administrator revoked the client's tokens after this sign-in.
	if revoked, err := a.clientRevokedSince(ctx, c.ID, fam.Created); err != nil {
		return nil, "", "", nil, unavailable()
	} else if revoked {
		a.revokeFamily(ctx, rt.Family)
		return nil, "", "", nil, errRefreshInvalid
	}
	// Everything that can fail without the token being reused is checked
	// before the use is claimed, so a retry after a store hiccup or an
	// invalid_scope is not mistaken for theft.
	if _, ok, err := a.lookupUser(ctx, fam.User); err != nil {
		return nil, "", "", nil, unavailable()
	} else if !ok {
		return nil, "", "", nil, errRefreshInvalid
	}
	scopes, oerr := narrowScopes(c, fam, requested)
	if oerr != nil {
		return nil, "", "", nil, oerr
	}
	usedKey := "refresh-used/" + key[len("refresh-tokens/"):]
	claimed, err := a.store.PutIfAbsent(ctx, usedKey, []byte{1}, ttlUntil(time.Unix(fam.MaxExp, 0)))
	if err != nil {
		return nil, "", "", nil, unavailable()
	}
	if !claimed || rt.Gen != fam.Gen {
		a.logger.Warn("refresh token reused: revoking its family", zap.String("client_id", c.ID), zap.String("sub", fam.User))
		a.revokeFamily(ctx, rt.Family)
		return nil, "", "", nil, errRefreshInvalid
	}
	if now.Unix() >= rt.IdleExp || now.Unix() >= fam.MaxExp {
		return nil, "", "", nil, errRefreshInvalid
	}
	fam.Gen++
	tok, err := a.putRefreshToken(ctx, rt.Family, fam, now)
	if err != nil {
		a.logger.Error("storing a rotated refresh token failed", zap.Error(err))
		// Give the claim back, so the client's retry is not taken for
		// reuse (best effort: the store just failed).
		_ = a.store.Delete(ctx, usedKey)
		return nil, "", "", nil, unavailable()
	}
	return fam, rt.Family, tok, scopes, nil
}

// readRefreshToken returns the stored record of a refresh token, nil if
// there is none (unknown, expired, malformed or corrupt), or an error if
// the store did not answer.
func (a *App) readRefreshToken(ctx context.Context, tok string) (*refreshToken, error) {
	if len(tok) != 43 {
		return nil, nil
	}
	b, err := a.store.Get(ctx, secretKey("refresh-tokens/", tok))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rt := new(refreshToken)
	if json.Unmarshal(b, rt) != nil || rt.Family == "" || !validStoreKey(familyKey(rt.Family)) {
		a.logger.Warn("corrupt refresh token entry in the store; treating it as absent")
		return nil, nil
	}
	return rt, nil
}

// loadFamily returns a live, unrevoked family, nil if there is none, or an
// error if the store did not answer.
func (a *App) loadFamily(ctx context.Context, id string) (*refreshFamily, error) {
	if _, err := a.store.Get(ctx, familyRevokedKey(id)); err == nil {
		return nil, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	b, err := a.store.Get(ctx, familyKey(id))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	fam := new(refreshFamily)
	if json.Unmarshal(b, fam) != nil || fam.ClientID == "" {
		a.logger.Warn("corrupt refresh token family in the store; treating it as absent")
		return nil, nil
	}
	return fam, nil
}

// addFamilyAccess records an access token the family issued (dropping
// those expired), so revoking the family revokes it too.
func (a *App) addFamilyAccess(ctx context.Context, id string, fam *refreshFamily, jti string, exp int64) {
	now := a.clock().Unix()
	kept := fam.Access[:0]
	for _, ref := range fam.Access {
		if ref.Exp > now {
			kept = append(kept, ref)
		}
	}
	fam.Access = append(kept, accessRef{JTI: jti, Exp: exp})
	b, _ := json.Marshal(fam)
	if err := a.store.Put(ctx, familyKey(id), b, ttlUntil(time.Unix(fam.MaxExp, 0))); err != nil {
		a.logger.Warn("recording a family's access token failed", zap.Error(err))
	}
}

// revokeFamily ends a refresh-token family and its access tokens. The
// revocation is its own entry, which no rotation overwrites.
func (a *App) revokeFamily(ctx context.Context, id string) {
	b, err := a.store.Get(ctx, familyKey(id))
	fam := new(refreshFamily)
	if err == nil && json.Unmarshal(b, fam) == nil {
		for _, ref := range fam.Access {
			if err := a.revokeAccessToken(ctx, ref.JTI, time.Unix(ref.Exp, 0)); err != nil {
				a.logger.Error("revoking a family's access token failed", zap.Error(err))
			}
		}
	}
	ttl := time.Duration(a.RefreshTokenMaxTTL)
	if fam.MaxExp != 0 {
		ttl = time.Until(time.Unix(fam.MaxExp, 0))
	}
	if ttl > 0 {
		if err := a.store.Put(ctx, familyRevokedKey(id), []byte{1}, ttl); err != nil {
			a.logger.Error("revoking a refresh token family failed", zap.Error(err))
		}
	}
}

// narrowScopes applies RFC 6749 §6 to a refresh request: no scope means the
// family's scopes; a requested scope must be among them (never widened).
// Scopes the client has since lost are dropped either way.
func narrowScopes(c *Client, fam *refreshFamily, requested string) ([]string, *oauthError) {
	granted := make([]string, 0, len(fam.Scopes))
	for _, sc := range fam.Scopes {
		if slices.Contains(c.Scopes, sc) {
			granted = append(granted, sc)
		}
	}
	if requested == "" {
		return granted, nil
	}
	scopes, err := oauthjwt.ParseScope(requested)
	if err != nil {
		return nil, badRequest(errInvalidScope, "scope is malformed")
	}
	for _, sc := range scopes {
		if !slices.Contains(granted, sc) {
			return nil, badRequest(errInvalidScope, "scope "+safeParam(sc)+" exceeds the scope originally granted")
		}
	}
	return scopes, nil
}
