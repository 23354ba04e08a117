package oauthstore

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"go.uber.org/zap"
)

// errEnded reports a write for a record whose lifetime is over.
var errEnded = errors.New("the record's lifetime has ended")

// owner is what every record owner holds: the store, the app's clock and a
// logger.
type owner struct {
	kv  Store
	now func() time.Time
	log *zap.Logger
}

// getJSON reads the record under key into v: the absent-or-corrupt policy
// in one place. An absent key is ErrNotFound; an entry that is not JSON, or
// that valid (if not nil) refuses, is logged as corrupt and is ErrNotFound
// too, so a corrupt record is never returned and never fails a request on
// its own. Any other error is the store's.
func (o owner) getJSON(ctx context.Context, key, what string, v any, valid func() bool) error {
	b, err := o.kv.Get(ctx, key)
	if err != nil {
		return err
	}
	return o.decode(b, what, v, valid)
}

// decode is getJSON's policy for bytes read some other way (Take).
func (o owner) decode(b []byte, what string, v any, valid func() bool) error {
	if json.Unmarshal(b, v) != nil || (valid != nil && !valid()) {
		o.log.Warn("corrupt " + what + " entry in the store; treating it as absent")
		return ErrNotFound
	}
	return nil
}

// putJSON stores v as JSON under key for ttl (zero: no expiry).
func (o owner) putJSON(ctx context.Context, key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return o.kv.Put(ctx, key, b, ttl)
}

// exists reports whether key holds a live value.
func (o owner) exists(ctx context.Context, key string) (bool, error) {
	_, err := o.kv.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Lifetimes are the configured lifetimes the owners enforce.
type Lifetimes struct {
	RefreshIdle time.Duration // a refresh token unused (refresh_token_ttl)
	RefreshMax  time.Duration // a refresh-token family (refresh_token_max_ttl)
	// RefreshGrace is how long after a rotation a retry with the rotated
	// token gets the same successor (refresh_token_reuse_grace); 0: never.
	RefreshGrace time.Duration
	SessionIdle  time.Duration // a login session unused (session_ttl)
	SessionMax   time.Duration // a login session from sign-in (session_max_ttl)
}

// Records is every owner of one store, with one clock and one logger.
// Clients are kept by Clients, which the caller makes for its own record
// type.
type Records struct {
	Codes       Codes
	Families    Families
	Sessions    Sessions
	Consents    Consents
	Users       Users
	Revocations Revocations
	Keyrings    Keyrings
	Assertions  Assertions
	Proofs      Proofs
	Secrets     Secrets
	Pushed      PushedRequests
}

// New makes the owners of the records in kv. now is the app's clock (tests
// move it); log receives corrupt-entry warnings.
func New(kv Store, now func() time.Time, log *zap.Logger, life Lifetimes) *Records {
	o := owner{kv: kv, now: now, log: log}
	return &Records{
		Codes:       Codes{o},
		Families:    Families{owner: o, idle: life.RefreshIdle, max: life.RefreshMax, grace: life.RefreshGrace},
		Sessions:    Sessions{owner: o, idle: life.SessionIdle, max: life.SessionMax},
		Consents:    Consents{o},
		Users:       Users{o},
		Revocations: Revocations{o},
		Keyrings:    Keyrings{o},
		Assertions:  Assertions{o},
		Proofs:      Proofs{o},
		Secrets:     Secrets{o},
		Pushed:      PushedRequests{o},
	}
}
