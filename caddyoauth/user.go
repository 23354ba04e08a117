package caddyoauth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"golang.org/x/crypto/bcrypt"
)

// User is a resource owner who signs in on the login page (RFC 6749 §1.1).
type User struct {
	// Username is what the person types to sign in, and the `sub` of the
	// tokens issued on their behalf: 1 to 64 of A-Z a-z 0-9 . _ @ + -
	Username string `json:"username"`

	// PasswordHash is a bcrypt or argon2id hash as `caddy hash-password`
	// prints it (plain or base64-encoded). Fast hashes are refused:
	// passwords are guessable, unlike generated client secrets.
	PasswordHash string `json:"password_hash"`

	// Name is the person's display name, shown on pages and in userinfo.
	Name string `json:"name,omitempty"`

	// Email is returned by the userinfo endpoint.
	Email string `json:"email,omitempty"`

	// Claims are returned by the userinfo endpoint as they are.
	Claims map[string]string `json:"claims,omitempty"`

	password passwordHash
	// sessionsNotBefore: sign-in sessions started before this (unix
	// seconds) no longer count (a store-kept user's, set by the admin
	// API).
	sessionsNotBefore int64
}

var usernamePattern = regexp.MustCompile(`^[A-Za-z0-9._@+-]{1,64}$`)

// reservedClaims cannot be overridden by a user's free-form claims.
var reservedClaims = []string{"sub", "name", "email", "iss", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "auth_time"}

func (u *User) provision() error {
	if !usernamePattern.MatchString(u.Username) {
		return errors.New("username: must be 1 to 64 of A-Z a-z 0-9 . _ @ + -")
	}
	ph, err := parsePasswordHash(u.PasswordHash)
	if err != nil {
		return fmt.Errorf("password_hash: %v", err)
	}
	u.password = ph
	if u.Email != "" {
		if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email {
			return fmt.Errorf("email: %q is not a plain e-mail address", u.Email)
		}
	}
	for k := range u.Claims {
		if !metadataKeyPattern.MatchString(k) {
			return fmt.Errorf("claims: key %q must be 1 to 64 of A-Z a-z 0-9 _ . -", k)
		}
		for _, r := range reservedClaims {
			if k == r {
				return fmt.Errorf("claims: %q is set by the server", k)
			}
		}
	}
	return nil
}

// displayName is the name shown on pages.
func (u *User) displayName() string {
	if u.Name != "" {
		return u.Name
	}
	return u.Username
}

// passwordHash is a slow password hash and the algorithm that checks it.
type passwordHash struct {
	hash     []byte
	comparer caddyauth.Comparer
}

// errBusy reports that no slow-hash slot came free in time: the password
// was not checked, so it is neither right nor wrong.
var errBusy = errors.New("the server is busy checking other passwords")

// check compares a password with the hash, waiting for one of the slow-hash
// slots the client secrets use too, so guesses cannot take every core. A
// sign-in from a known device (device.go) may also take a reserved slot.
func (p passwordHash) check(password string, known bool) (bool, error) {
	if p.comparer == nil {
		return false, nil
	}
	release := releaseSlowHashSlot
	if known {
		var ok bool
		if release, ok = acquireKnownSlowHashSlot(); !ok {
			return false, errBusy
		}
	} else if !acquireSlowHashSlot() {
		return false, errBusy
	}
	defer release()
	ok, err := p.comparer.Compare(p.hash, []byte(password))
	return err == nil && ok, nil
}

// parsePasswordHash reads a bcrypt or argon2id hash, optionally
// base64-encoded as older `caddy hash-password` versions printed it.
func parsePasswordHash(h string) (passwordHash, error) {
	if !strings.HasPrefix(h, "$") {
		if dec, err := base64.StdEncoding.DecodeString(h); err == nil && len(dec) > 0 && dec[0] == '$' {
			h = string(dec)
		}
	}
	return parseSlowHash(h)
}

// parseSlowHash reads a bcrypt or argon2id hash in its $-text form.
func parseSlowHash(h string) (passwordHash, error) {
	switch {
	case h == "":
		return passwordHash{}, errors.New("required (make one with `caddy hash-password`)")
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return passwordHash{}, fmt.Errorf("bcrypt: %v", err)
		}
		return passwordHash{hash: []byte(h), comparer: caddyauth.BcryptHash{}}, nil
	case strings.HasPrefix(h, "$argon2id$"):
		if _, _, err := caddyauth.DecodeHash([]byte(h)); err != nil {
			return passwordHash{}, fmt.Errorf("argon2id: %v", err)
		}
		return passwordHash{hash: []byte(h), comparer: caddyauth.Argon2idHash{}}, nil
	}
	return passwordHash{}, errors.New("not a recognized hash: use a bcrypt or argon2id hash (`caddy hash-password`)")
}

// signupDummyPassword stands in for an unknown user when no Caddyfile user
// exists: a bcrypt hash at the cost sign-ups use, of a random string.
var signupDummyPassword = sync.OnceValue(func() passwordHash {
	var pw [32]byte
	_, _ = rand.Read(pw[:])
	h, err := bcrypt.GenerateFromPassword(pw[:], signupBcryptCost)
	if err != nil {
		panic(err) // only for a cost out of range
	}
	return passwordHash{hash: h, comparer: caddyauth.BcryptHash{}}
})

// demoPasswordHashes are the password hashes of the demo users in
// Caddyfile.example, whose passwords the README publishes; refused unless
// the issuer is a loopback address, as demoSecretHashes are.
var demoPasswordHashes = []string{
	"$2a$10$rUPoffQ7gPKBtaMxw6kwCOLBLmjci2.BfVxiYhffvXiszgq6HivWC", // alice-demo-password
}
