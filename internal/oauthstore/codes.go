package oauthstore

import (
	"context"
	"encoding/json"
	"time"
)

// Authorization codes (RFC 6749 §4.1.2, §10.5): 256 random bits, stored
// only as a SHA-256 for CodeTTL and redeemed once with the store's atomic
// Take. Before the take, Reserve leaves a marker naming what the code will
// issue (the first redeemer's names, which every redeemer adopts), so a
// replay that loses the take, however close behind, finds it and the
// tokens can be revoked (RFC 6749 §4.1.2: "SHOULD revoke (when possible)
// all tokens previously issued based on that authorization code").

// CodeTTL is how long an authorization code can be redeemed.
const CodeTTL = 60 * time.Second

// Code is what an authorization code stands for.
type Code struct {
	ClientID      string   `json:"client_id"`
	RedirectURI   string   `json:"redirect_uri"`
	RedirectGiven bool     `json:"redirect_given,omitempty"`
	Challenge     string   `json:"code_challenge,omitempty"`
	User          string   `json:"user"`
	AuthTime      int64    `json:"auth_time"`
	Scopes        []string `json:"scopes"`
	// Resources are the resource indicators of the authorization request
	// (RFC 8707 §2.1), which bound what the code's tokens may be for; nil
	// when it named none, as in codes written before the field existed.
	Resources []string `json:"resources,omitempty"`
	Created   int64    `json:"created"`
	// Nonce is the OpenID Connect nonce of the authorization request,
	// echoed in the ID token (OpenID Connect Core §3.1.2.1, §3.1.3.6).
	Nonce string `json:"nonce,omitempty"`
	// SID names the login session the code was approved in (the ID
	// token's sid, OpenID Connect Front-Channel Logout §3).
	SID string `json:"sid,omitempty"`
	// DPoPJKT is the dpop_jkt of the authorization request (RFC 9449
	// §10): the code is redeemed only with a DPoP proof by that key.
	DPoPJKT string `json:"dpop_jkt,omitempty"`
}

// CodeUse is the marker a redeemed code leaves: what it issued.
type CodeUse struct {
	JTI       string `json:"jti"`
	Exp       int64  `json:"exp"`
	FamilyID  string `json:"family,omitempty"`
	ExpiresAt int64  `json:"expires_at"` // when the marker may go
}

// Codes keeps authorization codes.
type Codes struct{ owner }

// Issue stores a new code standing for c (its Created is set to now) and
// returns it.
func (o Codes) Issue(ctx context.Context, c *Code) (string, error) {
	code, err := NewSecret()
	if err != nil {
		return "", err
	}
	c.Created = o.now().Unix()
	if err := o.putJSON(ctx, codeKey(code), c, CodeTTL); err != nil {
		return "", err
	}
	return code, nil
}

// Take redeems code: of any number of concurrent Takes, on any instance,
// one gets the record and the others ErrNotFound, as does a code that is
// malformed, unknown, expired or corrupt.
func (o Codes) Take(ctx context.Context, code string) (*Code, error) {
	if len(code) != secretLen {
		return nil, ErrNotFound
	}
	b, err := o.kv.Take(ctx, codeKey(code))
	if err != nil {
		return nil, err
	}
	c := new(Code)
	if err := o.decode(b, "authorization code", c, func() bool { return c.ClientID != "" }); err != nil {
		return nil, err
	}
	return c, nil
}

// Live reports whether code can still be taken (without taking it).
func (o Codes) Live(ctx context.Context, code string) (bool, error) {
	if len(code) != secretLen {
		return false, nil
	}
	return o.exists(ctx, codeKey(code))
}

// Reserve records, before code is taken, what it will issue, for ttl: the
// first call for a code writes use, atomically across instances, and
// every call returns what the first wrote. The request that wins the take
// issues exactly those names, so a concurrent redemption that loses the
// take revokes them. ErrNotFound when the marker vanished meanwhile.
func (o Codes) Reserve(ctx context.Context, code string, use CodeUse, ttl time.Duration) (*CodeUse, error) {
	b, err := json.Marshal(use)
	if err != nil {
		return nil, err
	}
	won, err := o.kv.PutIfAbsent(ctx, codeUsedKey(code), b, ttl)
	if err != nil {
		return nil, err
	}
	if won {
		return &use, nil
	}
	got := new(CodeUse)
	if err := o.getJSON(ctx, codeUsedKey(code), "redeemed code", got, func() bool { return got.JTI != "" }); err != nil {
		return nil, err
	}
	return got, nil
}

// MarkUsed records what a redeemed code issued, until use.ExpiresAt.
func (o Codes) MarkUsed(ctx context.Context, code string, use CodeUse) error {
	return o.putJSON(ctx, codeUsedKey(code), use, TTLUntil(o.now(), time.Unix(use.ExpiresAt, 0)))
}

// Used returns what a redeemed code issued, or ErrNotFound when the code
// was never redeemed (or its marker has lapsed).
func (o Codes) Used(ctx context.Context, code string) (*CodeUse, error) {
	if len(code) != secretLen {
		return nil, ErrNotFound
	}
	use := new(CodeUse)
	if err := o.getJSON(ctx, codeUsedKey(code), "redeemed code", use, nil); err != nil {
		return nil, err
	}
	return use, nil
}
