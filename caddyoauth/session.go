package caddyoauth

import (
	"context"
	"errors"
	"net/http"

	"github.com/caddyapigw/gateway/internal/oauthstore"
)

// Login sessions in the browser. The session itself is kept by
// oauthstore.Sessions (it ends after SessionTTL without use or
// SessionMaxTTL after sign-in); its id travels in a cookie with the __Host-
// prefix (no Domain, Path=/, Secure), HttpOnly and SameSite=Lax.

const sessionCookie = "__Host-oauth_session"

// session is the signed-in person of a request.
type session struct {
	*oauthstore.Session
	user *User // the signed-in user
}

// startSession stores a new session for user and sets its cookie.
func (s *Server) startSession(ctx context.Context, w http.ResponseWriter, user string) error {
	a := s.app
	id, err := a.rec.Sessions.Start(ctx, user)
	if err != nil {
		return err
	}
	sessions.Inc(sessionStarted)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// currentSession returns the request's live session, or nil without an
// error when there is none. An error means the store did not answer.
func (s *Server) currentSession(ctx context.Context, r *http.Request) (*session, error) {
	a := s.app
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil
	}
	stored, err := a.rec.Sessions.Get(ctx, c.Value)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	u, ok, err := a.directory.lookup(ctx, stored.User)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil // the user was removed or disabled
	}
	if stored.AuthTime < u.sessionsNotBefore {
		return nil, nil // an administrator ended the person's sessions
	}
	// Failing to extend is not fatal: the session ends a little early.
	_ = a.rec.Sessions.Touch(ctx, c.Value, stored)
	return &session{Session: stored, user: u}, nil
}

// endSession deletes the request's session and clears the cookie.
func (s *Server) endSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	a := s.app
	clearCookie(w, sessionCookie)
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if err := a.rec.Sessions.Delete(ctx, c.Value); err != nil {
			return err
		}
		sessions.Inc(sessionSignedOut)
	}
	return nil
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}
