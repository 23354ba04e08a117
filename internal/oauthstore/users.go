package oauthstore

import (
	"context"
	"encoding/json"
	"errors"
)

// Users kept in the store: people who signed up on the sign-up page. A
// user lives under the lower-case username, with the e-mail address
// claimed under its digest so that two accounts cannot share one; both
// claims are atomic (PutIfAbsent), so two gateways cannot create the same
// account twice. Passwords are kept as slow hashes only.

// StoredUser is a store-kept user as saved.
type StoredUser struct {
	Username     string `json:"username"`
	Name         string `json:"name,omitempty"`
	Email        string `json:"email"`
	PasswordHash string `json:"password_hash"`
	Created      int64  `json:"created"`
	// Disabled users cannot sign in, and their sessions and grants are
	// not honoured (the directory treats them as absent).
	Disabled bool `json:"disabled,omitempty"`
	// SessionsNotBefore ends every sign-in session started before it
	// (unix seconds): set when an administrator ends the sessions or
	// resets the password.
	SessionsNotBefore int64 `json:"sessions_not_before,omitempty"`
}

// Sign-ups refused because the username or the e-mail address is taken.
var (
	ErrUsernameTaken = errors.New("username taken")
	ErrEmailTaken    = errors.New("e-mail address taken")
)

// Users keeps store-kept users.
type Users struct{ owner }

// Get returns the user with exactly this username, or ErrNotFound.
func (o Users) Get(ctx context.Context, username string) (*StoredUser, error) {
	u := new(StoredUser)
	err := o.getJSON(ctx, userKey(username), "user", u, func() bool { return u.Username != "" })
	if err != nil {
		return nil, err
	}
	if u.Username != username {
		return nil, ErrNotFound // another case of the same name
	}
	return u, nil
}

// Create stores a new user (its Created is set to now), or answers
// ErrUsernameTaken or ErrEmailTaken. The e-mail claim is made first and
// given back if the username turns out to be taken.
func (o Users) Create(ctx context.Context, u *StoredUser) error {
	ekey := emailKey(u.Email)
	ok, err := o.kv.PutIfAbsent(ctx, ekey, []byte(u.Username), 0)
	if err != nil {
		return err
	}
	if !ok {
		return ErrEmailTaken
	}
	u.Created = o.now().Unix()
	b, err := json.Marshal(u)
	if err == nil {
		ok, err = o.kv.PutIfAbsent(ctx, userKey(u.Username), b, 0)
	}
	if err != nil || !ok {
		if derr := o.kv.Delete(ctx, ekey); derr != nil {
			o.log.Warn("giving back an e-mail claim failed")
		}
		if err != nil {
			return err
		}
		return ErrUsernameTaken
	}
	return nil
}

// Put replaces a user's record (not its e-mail claim: the address does not
// change here).
func (o Users) Put(ctx context.Context, u *StoredUser) error {
	return o.putJSON(ctx, userKey(u.Username), u, 0)
}

// List returns every readable user; corrupt entries are logged and left
// out.
func (o Users) List(ctx context.Context) ([]*StoredUser, error) {
	keys, err := o.kv.List(ctx, "users/")
	if err != nil {
		return nil, err
	}
	out := []*StoredUser{}
	for _, k := range keys {
		u := new(StoredUser)
		if err := o.getJSON(ctx, k, "user", u, func() bool { return u.Username != "" }); err == nil {
			out = append(out, u)
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return out, nil
}
