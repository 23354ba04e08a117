package caddyoauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/caddyapigw/gateway/internal/oauthstore"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// The user directory: the people who may sign in. Users from the
// Caddyfile come first; with sign-up enabled, people who signed up are
// kept in the store (oauthstore.Users), and a sign-up cannot take a
// Caddyfile user's name or e-mail address.

// provisionUsers checks the Caddyfile users.
func (a *App) provisionUsers() error {
	a.users = make(map[string]*User, len(a.Users))
	for i, u := range a.Users {
		if u == nil {
			return fmt.Errorf("users[%d]: empty", i)
		}
		if err := u.provision(); err != nil {
			return fmt.Errorf("user %q: %v", u.Username, err)
		}
		if slices.Contains(demoPasswordHashes, u.PasswordHash) && !issuerIsLoopback(a.Issuer) {
			return fmt.Errorf("user %q: password_hash: this is a demo password published in the README; make a real hash with `caddy hash-password` (demo passwords work only with a localhost issuer)", u.Username)
		}
		if _, dup := a.users[u.Username]; dup {
			return fmt.Errorf("user %q: username: defined twice", u.Username)
		}
		a.users[u.Username] = u
	}
	return nil
}

// userDirectory finds the people who may sign in: Caddyfile users first,
// then store-kept ones.
type userDirectory struct {
	static map[string]*User
	store  oauthstore.Users
	logger *zap.Logger
	// dummy is checked for unknown usernames (pickDummyPassword).
	dummy func() passwordHash
}

// lookup finds a user by username: a Caddyfile user, else a store-kept
// one. An error means the store did not answer.
func (d *userDirectory) lookup(ctx context.Context, username string) (*User, bool, error) {
	if u, ok := d.static[username]; ok {
		return u, true, nil
	}
	if !usernamePattern.MatchString(username) {
		return nil, false, nil
	}
	su, err := d.store.Get(ctx, username)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if su.Disabled {
		return nil, false, nil // an administrator disabled the account
	}
	u := &User{Username: su.Username, Name: su.Name, Email: su.Email, PasswordHash: su.PasswordHash, sessionsNotBefore: su.SessionsNotBefore}
	if err := u.provision(); err != nil {
		d.logger.Warn("unusable user entry in the store; treating it as absent")
		return nil, false, nil
	}
	return u, true, nil
}

// create stores a new user, or answers oauthstore.ErrUsernameTaken or
// ErrEmailTaken, Caddyfile users included.
func (d *userDirectory) create(ctx context.Context, u *User) error {
	for name, cu := range d.static {
		if strings.EqualFold(name, u.Username) {
			return oauthstore.ErrUsernameTaken
		}
		if cu.Email != "" && strings.EqualFold(cu.Email, u.Email) {
			return oauthstore.ErrEmailTaken
		}
	}
	return d.store.Create(ctx, &oauthstore.StoredUser{Username: u.Username, Name: u.Name, Email: u.Email, PasswordHash: u.PasswordHash})
}

// pickDummyPassword chooses what an unknown username is checked against,
// so that it costs what a known one does (no enumeration by timing): the
// hash of the most expensive Caddyfile user (argon2id over bcrypt, then
// the highest bcrypt cost). Comparing a wrong password against a real
// user's hash costs the same and, whatever it answers, the login fails.
// The sign-up dummy is made on first use, not at provision: a gateway
// whose login page nobody opens pays nothing for it.
func pickDummyPassword(users map[string]*User, signup bool) func() passwordHash {
	var best passwordHash
	bestCost := -1
	for _, u := range users {
		cost := 1000 // argon2id: the most expensive kind
		if c, err := bcrypt.Cost(u.password.hash); err == nil {
			cost = c
		}
		if cost > bestCost {
			best, bestCost = u.password, cost
		}
	}
	// Accounts from the sign-up page use bcrypt at signupBcryptCost.
	if bestCost < 0 || signup && bestCost < signupBcryptCost {
		return signupDummyPassword
	}
	return func() passwordHash { return best }
}

// check returns the user if the password is theirs. Unknown user and
// wrong password are the same failure and cost a comparable slow hash. An
// error means the store did not answer. known, asked only for a user that
// exists, says whether the sign-in comes from a known device of theirs
// and may take a reserved slow-hash slot; an unknown username never does.
func (d *userDirectory) check(ctx context.Context, username, password string, known func(*User) bool) (*User, bool, error) {
	u, ok, err := d.lookup(ctx, username)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		_, err := d.dummy().check(password, false)
		return nil, false, err
	}
	if ok, err := u.password.check(password, known != nil && known(u)); !ok {
		return nil, false, err
	}
	return u, true, nil
}
