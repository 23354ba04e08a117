package oauthstore

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Refresh tokens (RFC 6749 §6, RFC 9700 §4.14). A refresh token is 256
// random bits, opaque to the client; the store keeps its SHA-256, pointing
// to its family (the chain of tokens that one sign-in started) and its place
// in the chain. Each use rotates it: the family moves to the next
// generation and the presented token is claimed with an atomic
// PutIfAbsent, so of two concurrent uses, on any instances, one wins
// the rotation; the claim records the successor, so the other, or a retry
// after a crash or a lost answer, gets the same one (refresh_use.go). A
// token lapses after the idle lifetime without use; a family ends the
// maximum lifetime after its sign-in. A family is indexed under its person
// and client, so withdrawing a consent can end it.

// Family is the chain of refresh tokens from one sign-in.
type Family struct {
	ClientID string   `json:"client_id"`
	User     string   `json:"user"`
	AuthTime int64    `json:"auth_time"`
	Scopes   []string `json:"scopes"` // as first granted; never widened
	// Resources are the grant's resource indicators (RFC 8707 §2.2: the
	// family stays bound to the full original grant); nil for none, as
	// in families written before the field existed.
	Resources []string `json:"resources,omitempty"`
	// SID is the sign-in session the grant came from, for the sid of
	// refreshed ID tokens (OpenID Connect Core §12.2); "" in families
	// written before the field existed.
	SID string `json:"sid,omitempty"`
	// JKT is the thumbprint of the DPoP key the family's refresh tokens
	// are bound to (RFC 9449 §5: a public client's); "" for none.
	JKT string `json:"jkt,omitempty"`
	// X5T is the x5t#S256 of the TLS client certificate the family's
	// refresh tokens are bound to (RFC 8705 §4: a public client's); ""
	// for none.
	X5T     string `json:"x5t,omitempty"`
	Gen     int    `json:"gen"` // generation of the live token
	Created int64  `json:"created"`
	MaxExp  int64  `json:"max_exp"`
	// Access lists access tokens, as families written before they were
	// entries of their own kept them (AddAccess); read when revoking.
	Access []AccessRef `json:"access,omitempty"`
}

// AccessRef names an issued access token.
type AccessRef struct {
	JTI string `json:"jti"`
	Exp int64  `json:"exp"`
}

// RefreshToken is one token of a family.
type RefreshToken struct {
	Family  string `json:"family"`
	Gen     int    `json:"gen"`
	IdleExp int64  `json:"idle_exp"`
}

// Families keeps refresh-token families. Errors are ErrNotFound or a store
// failure, never a protocol answer.
type Families struct {
	owner
	idle, max time.Duration
	grace     time.Duration // a retry of a rotated token gets the same successor (refresh_use.go)
}

// Start begins family id for a sign-in (its Created and MaxExp are set
// from now) and returns its first token.
func (o Families) Start(ctx context.Context, id string, fam *Family) (string, error) {
	now := o.now()
	fam.MaxExp = now.Add(o.max).Unix()
	fam.Created = now.Unix()
	tok, err := o.put(ctx, id, fam, now)
	if err != nil {
		return "", err
	}
	if err := o.kv.Put(ctx, userFamilyKey(fam.User, fam.ClientID, id), nil, TTLUntil(now, time.Unix(fam.MaxExp, 0))); err != nil {
		o.log.Warn("indexing a refresh token family failed; withdrawing consent will not end it")
	}
	return tok, nil
}

// put saves the family at its current generation and a new token for that
// generation.
func (o Families) put(ctx context.Context, id string, fam *Family, now time.Time) (string, error) {
	tok, err := NewSecret()
	if err != nil {
		return "", err
	}
	if err := o.putToken(ctx, id, fam, tok, now); err != nil {
		return "", err
	}
	return tok, nil
}

// putToken saves tok as the token of the family's current generation, and
// the family. The token first, then the family that makes it the live
// one: if the second write fails, the presented token is still the live
// one and a retry works. The token's entry outlives its idle deadline,
// until the family ends, so that its reuse after rotation is recognised.
func (o Families) putToken(ctx context.Context, id string, fam *Family, tok string, now time.Time) error {
	maxExp := time.Unix(fam.MaxExp, 0)
	life := maxExp.Sub(now)
	if life <= 0 {
		return errEnded
	}
	idle := now.Add(o.idle)
	if idle.After(maxExp) {
		idle = maxExp
	}
	if err := o.putJSON(ctx, refreshKey(tok), RefreshToken{Family: id, Gen: fam.Gen, IdleExp: idle.Unix()}, life); err != nil {
		return err
	}
	return o.putJSON(ctx, familyKey(id), fam, life)
}

// Lookup returns a refresh token's record and its family, or ErrNotFound
// when the token is malformed, unknown, corrupt, or its family has ended,
// been revoked or is corrupt. It checks no deadline: the caller compares
// IdleExp and MaxExp with its clock.
func (o Families) Lookup(ctx context.Context, token string) (*RefreshToken, *Family, error) {
	if len(token) != secretLen {
		return nil, nil, ErrNotFound
	}
	rt := new(RefreshToken)
	if err := o.getJSON(ctx, refreshKey(token), "refresh token", rt, func() bool {
		return rt.Family != "" && ValidKey(familyKey(rt.Family))
	}); err != nil {
		return nil, nil, err
	}
	fam, err := o.Get(ctx, rt.Family)
	if err != nil {
		return nil, nil, err
	}
	return rt, fam, nil
}

// Get returns a live, unrevoked family, or ErrNotFound.
func (o Families) Get(ctx context.Context, id string) (*Family, error) {
	if revoked, err := o.exists(ctx, familyRevokedKey(id)); err != nil {
		return nil, err
	} else if revoked {
		return nil, ErrNotFound
	}
	fam := new(Family)
	if err := o.getJSON(ctx, familyKey(id), "refresh token family", fam, func() bool { return fam.ClientID != "" }); err != nil {
		return nil, err
	}
	return fam, nil
}

// AddAccess records an access token the family issued, so revoking the
// family revokes it too. Each is an entry of its own, living until the
// token expires: two refreshes of one family at once (two tabs, a retry
// within the grace window) cannot overwrite each other's, as they could
// when the list was part of the family's record.
func (o Families) AddAccess(ctx context.Context, id string, fam *Family, ref AccessRef) error {
	now := o.now()
	exp := time.Unix(ref.Exp, 0)
	if end := time.Unix(fam.MaxExp, 0); exp.After(end) {
		exp = end
	}
	return o.putJSON(ctx, familyAccessKey(id, ref.JTI), ref, TTLUntil(now, exp))
}

// Revoke ends family id: its revocation is an entry of its own, which no
// rotation overwrites. It returns the family's access tokens for the
// caller to revoke (none when the family is unknown), also when writing
// the revocation failed.
func (o Families) Revoke(ctx context.Context, id string) ([]AccessRef, error) {
	fam := new(Family)
	if b, err := o.kv.Get(ctx, familyKey(id)); err == nil {
		if json.Unmarshal(b, fam) != nil {
			fam = new(Family)
		}
	}
	now := o.now()
	refs, listErr := o.access(ctx, id, fam.Access)
	ttl := o.max
	if fam.MaxExp != 0 {
		ttl = time.Unix(fam.MaxExp, 0).Sub(now)
	}
	if ttl <= 0 {
		return refs, listErr
	}
	if err := o.kv.Put(ctx, familyRevokedKey(id), []byte{1}, ttl); err != nil {
		return refs, err
	}
	return refs, listErr
}

// access returns the family's access tokens: those recorded in the
// family's record by earlier versions (legacy) and its entries.
func (o Families) access(ctx context.Context, id string, legacy []AccessRef) ([]AccessRef, error) {
	refs := slices.Clone(legacy)
	keys, err := o.kv.List(ctx, familyAccessPrefix(id))
	if err != nil {
		return refs, err
	}
	for _, k := range keys {
		var r AccessRef
		if err := o.getJSON(ctx, k, "family access token", &r, func() bool { return r.JTI != "" }); err == nil {
			refs = append(refs, r)
		}
	}
	return refs, nil
}

// OfUser returns the ids of the families indexed under user for client, or
// for every client when client is "". The index may name families that
// have since ended; Get tells.
func (o Families) OfUser(ctx context.Context, user, client string) ([]string, error) {
	keys, err := o.kv.List(ctx, userFamiliesPrefix(user, client))
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, k[strings.LastIndexByte(k, '/')+1:])
	}
	return ids, nil
}

// Unindex drops family id from user's index for client.
func (o Families) Unindex(ctx context.Context, user, client, id string) error {
	return o.kv.Delete(ctx, userFamilyKey(user, client, id))
}
