package oauthstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// Using a refresh token (RFC 6749 §6, RFC 9700 §4.14.2), crash-safe.
//
// The successor is chosen before anything is written and recorded in the
// claim itself: the one atomic write (PutIfAbsent of the "used" entry)
// both burns the presented token and fixes its successor. Everything after
// it (the successor's record, the family's new generation) can be redone
// by whoever presents the same token again, so a crash, a failed write or
// a lost response between the claim and the answer loses nothing:
//
//   - the rotation is unfinished (the claim is not marked done, which is
//     its last write before the answer): nobody can have received the
//     successor. The retry finishes the rotation and gets the successor,
//     however late it comes.
//   - the rotation is finished: a retry within the grace window (RFC 9700
//     §4.14.2 leaves room for it; two browser tabs refreshing at once) gets
//     the same successor, as long as the successor itself is unused. After
//     the window, or once the successor has been used, it is reuse.
//
// The claim keeps the successor sealed (AES-256-GCM) under a key derived
// from the presented token (HMAC-SHA256 keyed with it), which the store
// never holds: it holds only SHA-256 digests of tokens, as before, so
// reading the store still yields no usable refresh token. Deriving the
// successor from the token alone (no sealing) would let anyone holding an
// old, rotated token compute the live one; sealed, the server hands it
// out only under the rules above.

// ErrReused reports a refresh token used again outside what a retry may
// do: the caller revokes the family.
var ErrReused = errors.New("refresh token reused")

// errClaimVanished reports a claim that was there and is gone (a store
// losing entries): the caller answers "try again".
var errClaimVanished = errors.New("refresh token claim vanished")

// use is the "used" entry of a refresh token: the rotation it started.
type use struct {
	Gen  int    `json:"gen"`            // generation of the used token
	At   int64  `json:"at"`             // when it was claimed, Unix milliseconds
	Next string `json:"next,omitempty"` // the successor, sealed; "" when none was issued
	// Done: the successor's record and the family's generation are
	// written; the last write before the successor is handed out. Only
	// ever set (by overwriting the claim), never cleared, so unlike the
	// family's generation (a record others rewrite) it cannot go back.
	Done bool `json:"done,omitempty"`
}

// Use spends token (its record rt, its family fam as Lookup returned them)
// and returns its successor; fam is left at the successor's generation.
// Errors: ErrReused (revoke the family), ErrNotFound (the token lapsed or
// the family ended; nothing to revoke) or a store failure, after which
// the same call may be retried: it then finishes what this one began.
func (o Families) Use(ctx context.Context, token string, rt *RefreshToken, fam *Family) (string, error) {
	now := o.now()
	older := rt.Gen < fam.Gen
	lapsed := now.Unix() >= rt.IdleExp || now.Unix() >= fam.MaxExp
	u := use{Gen: rt.Gen, At: now.UnixMilli()}
	var next string
	if !older && !lapsed {
		var err error
		if next, err = NewSecret(); err != nil {
			return "", err
		}
		if u.Next, err = seal(token, rt.Family, next); err != nil {
			return "", err
		}
	}
	b, err := json.Marshal(u)
	if err != nil {
		return "", err
	}
	won, err := o.kv.PutIfAbsent(ctx, refreshUsedKey(token), b, TTLUntil(now, time.Unix(fam.MaxExp, 0)))
	if err != nil {
		return "", err
	}
	if !won {
		return o.resume(ctx, token, rt, fam, now)
	}
	switch {
	case older:
		// An older generation that was never claimed: only entries
		// written before claims recorded successors can be like this.
		return "", ErrReused
	case lapsed:
		return "", ErrNotFound
	}
	return next, o.finish(ctx, token, u, rt, fam, next, now)
}

// resume handles a token whose claim exists: a retry finishes or repeats
// the rotation the claim recorded, or it is reuse.
func (o Families) resume(ctx context.Context, token string, rt *RefreshToken, fam *Family, now time.Time) (string, error) {
	b, err := o.kv.Get(ctx, refreshUsedKey(token))
	if errors.Is(err, ErrNotFound) {
		return "", errClaimVanished
	}
	if err != nil {
		return "", err
	}
	var u use
	if json.Unmarshal(b, &u) != nil || u.Next == "" || u.Gen != rt.Gen {
		// A claim of before successors were recorded ({1}), of a lapsed
		// token, or not this token's.
		return "", ErrReused
	}
	next, err := open(token, rt.Family, u.Next)
	if err != nil {
		o.log.Warn("corrupt refresh token claim in the store; taking the use for reuse")
		return "", ErrReused
	}
	// The successor has been used itself: the chain moved on.
	if used, err := o.exists(ctx, refreshUsedKey(next)); err != nil {
		return "", err
	} else if used {
		return "", ErrReused
	}
	switch {
	case !u.Done:
		// Unfinished: the claimant never answered. Finish it.
		return next, o.finish(ctx, token, u, rt, fam, next, now)
	case now.Before(time.UnixMilli(u.At).Add(o.grace)):
		// Finished, and retried within the grace window.
		if fam.Gen < rt.Gen+1 {
			fam.Gen = rt.Gen + 1 // as the caller's answer describes it
		}
		return next, nil
	default:
		return "", ErrReused
	}
}

// finish writes the successor's record, moves the family to its
// generation (putToken: the token first, then the family) and marks the
// claim done, in that order, so that every write can be redone by a retry
// until the last. Writing them again is harmless.
func (o Families) finish(ctx context.Context, token string, u use, rt *RefreshToken, fam *Family, next string, now time.Time) error {
	if fam.Gen < rt.Gen+1 {
		fam.Gen = rt.Gen + 1
	}
	err := o.putToken(ctx, rt.Family, fam, next, now)
	if errors.Is(err, errEnded) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	u.Done = true
	return o.putJSON(ctx, refreshUsedKey(token), u, TTLUntil(now, time.Unix(fam.MaxExp, 0)))
}

// Used reports whether token has been claimed (spent or being rotated).
func (o Families) Used(ctx context.Context, token string) (bool, error) {
	return o.exists(ctx, refreshUsedKey(token))
}

// successorKey derives the key that seals a token's successor: only the
// holder of the token can derive it; the store keeps only the token's
// SHA-256, from which it cannot be computed.
func successorKey(token string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("caddyapigw refresh successor v1"))
	return m.Sum(nil)
}

// seal encrypts next under token's successor key, bound to the family.
func seal(token, family, next string) (string, error) {
	aead, err := successorAEAD(token)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(next)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte(next), []byte(family))), nil
}

// open reverses seal.
func open(token, family, sealed string) (string, error) {
	aead, err := successorAEAD(token)
	if err != nil {
		return "", err
	}
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(b) < aead.NonceSize() {
		return "", errors.New("malformed sealed successor")
	}
	next, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], []byte(family))
	if err != nil || len(next) != secretLen {
		return "", errors.New("sealed successor does not open")
	}
	return string(next), nil
}

func successorAEAD(token string) (cipher.AEAD, error) {
	block, err := aes.NewCipher(successorKey(token))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
