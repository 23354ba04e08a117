package caddyoauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Users kept in the store: people who signed up on the sign-up page (when
// it is enabled). They live at users/<lower-case username>, with their
// e-mail address claimed at user-emails/<SHA-256 of the lower-case
// address> so that two accounts cannot share one; both claims are atomic
// (PutIfAbsent), so two gateways cannot create the same account twice.
// Caddyfile users take precedence, and a sign-up cannot take a Caddyfile
// user's name. Passwords are stored as bcrypt hashes only.

// storedUser is a store-kept user as saved.
type storedUser struct {
	Username     string `json:"username"`
	Name         string `json:"name,omitempty"`
	Email        string `json:"email"`
	PasswordHash string `json:"password_hash"`
	Created      int64  `json:"created"`
}

func userStoreKey(username string) string {
	return "users/" + storeSafeID(strings.ToLower(username))
}

func emailStoreKey(email string) string {
	h := sha256.Sum256([]byte(strings.ToLower(email)))
	return "user-emails/" + hex.EncodeToString(h[:])
}

// lookupUser finds a user by username: a Caddyfile user, else a store-kept
// one. An error means the store did not answer.
func (a *App) lookupUser(ctx context.Context, username string) (*User, bool, error) {
	if u, ok := a.users[username]; ok {
		return u, true, nil
	}
	if !usernamePattern.MatchString(username) {
		return nil, false, nil
	}
	b, err := a.store.Get(ctx, userStoreKey(username))
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var su storedUser
	if json.Unmarshal(b, &su) != nil || su.Username != username {
		if su.Username == "" {
			a.logger.Warn("corrupt user entry in the store; treating it as absent")
		}
		return nil, false, nil
	}
	u := &User{Username: su.Username, Name: su.Name, Email: su.Email, PasswordHash: su.PasswordHash}
	if err := u.provision(); err != nil {
		a.logger.Warn("unusable user entry in the store; treating it as absent")
		return nil, false, nil
	}
	return u, true, nil
}

// Sign-ups refused because the username or the e-mail address is taken.
var (
	errUsernameTaken = errors.New("username taken")
	errEmailTaken    = errors.New("e-mail address taken")
)

// createUser stores a new user. The e-mail claim is made first and given
// back if the username turns out to be taken.
func (a *App) createUser(ctx context.Context, u *User, now time.Time) error {
	for name, cu := range a.users {
		if strings.EqualFold(name, u.Username) {
			return errUsernameTaken
		}
		if cu.Email != "" && strings.EqualFold(cu.Email, u.Email) {
			return errEmailTaken
		}
	}
	ekey := emailStoreKey(u.Email)
	ok, err := a.store.PutIfAbsent(ctx, ekey, []byte(u.Username), 0)
	if err != nil {
		return err
	}
	if !ok {
		return errEmailTaken
	}
	b, _ := json.Marshal(storedUser{Username: u.Username, Name: u.Name, Email: u.Email, PasswordHash: u.PasswordHash, Created: now.Unix()})
	ok, err = a.store.PutIfAbsent(ctx, userStoreKey(u.Username), b, 0)
	if err != nil || !ok {
		if derr := a.store.Delete(ctx, ekey); derr != nil {
			a.logger.Warn("giving back an e-mail claim failed", zap.Error(derr))
		}
		if err != nil {
			return err
		}
		return errUsernameTaken
	}
	return nil
}
