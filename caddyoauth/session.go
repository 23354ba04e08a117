package caddyoauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Login sessions. A session is a random 256-bit id in a cookie; the store
// keeps only its SHA-256, under sessions/<hex>, with the user and the times
// that bound it: it ends after SessionTTL without use or SessionMaxTTL after
// sign-in, whichever comes first. The cookie has the __Host- prefix (no
// Domain, Path=/, Secure), HttpOnly and SameSite=Lax.

const (
	sessionCookie = "__Host-oauth_session"
	// sessionTouchEvery: a session's idle deadline is pushed back at most
	// this often, to keep store writes off most requests.
	sessionTouchEvery = time.Minute
)

// session is a signed-in person's login session as stored.
type session struct {
	User     string `json:"user"`
	AuthTime int64  `json:"auth_time"` // sign-in (RFC 9068 §2.2.1 auth_time)
	Touched  int64  `json:"touched"`   // last time the idle deadline moved

	key  string // store key
	user *User  // the signed-in user
}

func sessionKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return "sessions/" + hex.EncodeToString(h[:])
}

// random256 returns 256 random bits, base64url-encoded (43 characters).
func random256() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// sessionTTL returns how long the session may live from now.
func (a *App) sessionTTL(s *session, now time.Time) time.Duration {
	maxEnd := time.Unix(s.AuthTime, 0).Add(time.Duration(a.SessionMaxTTL))
	return min(time.Duration(a.SessionTTL), maxEnd.Sub(now))
}

// startSession stores a new session for user and sets its cookie.
func (a *App) startSession(ctx context.Context, w http.ResponseWriter, user string, now time.Time) error {
	id, err := random256()
	if err != nil {
		return err
	}
	s := &session{User: user, AuthTime: now.Unix(), Touched: now.Unix()}
	b, _ := json.Marshal(s)
	if err := a.store.Put(ctx, sessionKey(id), b, a.sessionTTL(s, now)); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// currentSession returns the request's live session, or nil without an
// error when there is none. An error means the store did not answer.
func (a *App) currentSession(ctx context.Context, r *http.Request, now time.Time) (*session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) != 43 {
		return nil, nil
	}
	key := sessionKey(c.Value)
	b, err := a.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s := new(session)
	if json.Unmarshal(b, s) != nil || s.User == "" {
		a.logger.Warn("corrupt session entry in the store; treating it as absent")
		return nil, nil
	}
	s.key = key
	ttl := a.sessionTTL(s, now)
	if ttl <= 0 {
		return nil, nil
	}
	u, ok, err := a.lookupUser(ctx, s.User)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil // the user was removed
	}
	s.user = u
	if now.Unix()-s.Touched >= int64(sessionTouchEvery/time.Second) {
		s.Touched = now.Unix()
		nb, _ := json.Marshal(s)
		// Failing to extend is not fatal: the session ends a little early.
		_ = a.store.Put(ctx, key, nb, ttl)
	}
	return s, nil
}

// endSession deletes the request's session and clears the cookie.
func (a *App) endSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	clearCookie(w, sessionCookie)
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		return a.store.Delete(ctx, sessionKey(c.Value))
	}
	return nil
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}
