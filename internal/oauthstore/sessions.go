package oauthstore

import (
	"context"
	"time"
)

// Login sessions. A session is a random 256-bit id that the browser keeps
// in a cookie; the store keeps only its SHA-256, with the user and the
// times that bound it: it ends after the idle lifetime without use or the
// maximum lifetime after sign-in, whichever comes first.

// sessionTouchEvery: a session's idle deadline is pushed back at most this
// often, to keep store writes off most requests.
const sessionTouchEvery = time.Minute

// Session is a signed-in person's login session as stored.
type Session struct {
	User     string `json:"user"`
	AuthTime int64  `json:"auth_time"` // sign-in (RFC 9068 §2.2.1 auth_time)
	Touched  int64  `json:"touched"`   // last time the idle deadline moved
	// SID names the session where it may be shown (an ID token's sid):
	// random, and unlike the id in the cookie, no credential. Sessions
	// started before it existed have none.
	SID string `json:"sid,omitempty"`
}

// Sessions keeps login sessions.
type Sessions struct {
	owner
	idle, max time.Duration
}

// ttl is how long s may live from now.
func (o Sessions) ttl(s *Session, now time.Time) time.Duration {
	maxEnd := time.Unix(s.AuthTime, 0).Add(o.max)
	return min(o.idle, maxEnd.Sub(now))
}

// Start stores a new session for user, signed in now, and returns its id.
func (o Sessions) Start(ctx context.Context, user string) (string, error) {
	id, err := NewSecret()
	if err != nil {
		return "", err
	}
	sid, err := NewSecret()
	if err != nil {
		return "", err
	}
	now := o.now()
	s := &Session{User: user, AuthTime: now.Unix(), Touched: now.Unix(), SID: digest(sid)[:32]}
	if err := o.putJSON(ctx, sessionKey(id), s, o.ttl(s, now)); err != nil {
		return "", err
	}
	return id, nil
}

// Get returns the live session with this id, or ErrNotFound (malformed,
// unknown, ended or corrupt).
func (o Sessions) Get(ctx context.Context, id string) (*Session, error) {
	if len(id) != secretLen {
		return nil, ErrNotFound
	}
	s := new(Session)
	if err := o.getJSON(ctx, sessionKey(id), "session", s, func() bool { return s.User != "" }); err != nil {
		return nil, err
	}
	if o.ttl(s, o.now()) <= 0 {
		return nil, ErrNotFound
	}
	return s, nil
}

// Touch pushes the idle deadline of session id back, unless that was done
// less than a minute ago. Failing is not fatal to the caller: the session
// ends a little early. A session that reached its maximum lifetime since
// it was read is ErrNotFound: written again, it would have no lifetime.
func (o Sessions) Touch(ctx context.Context, id string, s *Session) error {
	now := o.now()
	if now.Unix()-s.Touched < int64(sessionTouchEvery/time.Second) {
		return nil
	}
	ttl := o.ttl(s, now)
	if ttl <= 0 {
		return ErrNotFound
	}
	s.Touched = now.Unix()
	return o.putJSON(ctx, sessionKey(id), s, ttl)
}

// Delete ends session id.
func (o Sessions) Delete(ctx context.Context, id string) error {
	return o.kv.Delete(ctx, sessionKey(id))
}
