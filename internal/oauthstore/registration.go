package oauthstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// Dynamic client registration (RFC 7591): the initial access tokens an
// operator hands out (§3), kept by the SHA-256 of the token, never the
// token; and per-address registration slots that cap how many clients one
// address registers in a window.

// InitialAccessToken is what the store keeps of an initial access token.
type InitialAccessToken struct {
	// ID is the hex SHA-256 of the token, which is what it is kept under.
	ID      string    `json:"id"`
	Note    string    `json:"note,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

const initialAccessTokensPrefix = "registration-tokens/"

func initialAccessTokenKey(id string) string { return initialAccessTokensPrefix + SafeID(id) }
func registrationSlotKey(addr string, i int) string {
	return "registration-slots/" + digest(addr) + "/" + strconv.Itoa(i)
}

// Registrations keeps initial access tokens and registration slots.
type Registrations struct{ owner }

// NewRegistrations makes the owner of registration records in kv.
func NewRegistrations(kv Store, now func() time.Time, log *zap.Logger) Registrations {
	return Registrations{owner{kv: kv, now: now, log: log}}
}

// PutInitialAccessToken keeps t until it expires.
func (o Registrations) PutInitialAccessToken(ctx context.Context, t *InitialAccessToken) error {
	ttl := t.Expires.Sub(o.now())
	if ttl <= 0 {
		return errEnded
	}
	return o.putJSON(ctx, initialAccessTokenKey(t.ID), t, ttl)
}

// InitialAccessToken returns the live token kept under id, or ErrNotFound.
func (o Registrations) InitialAccessToken(ctx context.Context, id string) (*InitialAccessToken, error) {
	t := new(InitialAccessToken)
	if err := o.getJSON(ctx, initialAccessTokenKey(id), "initial access token", t, func() bool { return t.ID == id }); err != nil {
		return nil, err
	}
	if !o.now().Before(t.Expires) {
		return nil, ErrNotFound
	}
	return t, nil
}

// InitialAccessTokens lists the live tokens.
func (o Registrations) InitialAccessTokens(ctx context.Context) ([]*InitialAccessToken, error) {
	keys, err := o.kv.List(ctx, initialAccessTokensPrefix)
	if err != nil {
		return nil, err
	}
	out := []*InitialAccessToken{}
	for _, k := range keys {
		t := new(InitialAccessToken)
		if err := o.getJSON(ctx, k, "initial access token", t, nil); err == nil && o.now().Before(t.Expires) {
			out = append(out, t)
		} else if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return out, nil
}

// DeleteInitialAccessToken removes the token kept under id.
func (o Registrations) DeleteInitialAccessToken(ctx context.Context, id string) error {
	return o.kv.Delete(ctx, initialAccessTokenKey(id))
}

// TakeSlot takes one of max registration slots of addr for window and
// reports whether one was free: at most max registrations per address per
// window, on every instance sharing the store (each slot is an atomic
// PutIfAbsent).
func (o Registrations) TakeSlot(ctx context.Context, addr string, max int, window time.Duration) (bool, error) {
	stamp := []byte(strconv.FormatInt(o.now().Unix(), 10))
	for i := range max {
		ok, err := o.kv.PutIfAbsent(ctx, registrationSlotKey(addr, i), stamp, window)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}
