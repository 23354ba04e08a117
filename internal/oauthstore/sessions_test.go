package oauthstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

// TestSessionsStartGetDelete: a login session is found by its id until
// it is deleted (sign-out, OpenID Connect RP-Initiated Logout §2); the
// store keeps the id's digest only.
func TestSessionsStartGetDelete(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	id, err := e.rec.Sessions.Start(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != secretLen {
		t.Errorf("session id has %d characters, want %d", len(id), secretLen)
	}
	if keys := e.keys(t); !slices.Equal(keys, []string{sessionKey(id)}) {
		t.Errorf("store keys = %q, want only %q", keys, sessionKey(id))
	}
	s, err := e.rec.Sessions.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := Session{User: "alice", AuthTime: testEpoch.Unix(), Touched: testEpoch.Unix(), SID: s.SID}
	if *s != want || len(s.SID) != 32 {
		t.Errorf("Get = %+v, want %+v", *s, want)
	}
	other, err := e.rec.Sessions.Start(ctx, "alice")
	if err != nil || other == id {
		t.Fatalf("second Start = %q, %v; want a new id", other, err)
	}
	if err := e.rec.Sessions.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rec.Sessions.Get(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete err = %v, want ErrNotFound", err)
	}
	if _, err := e.rec.Sessions.Get(ctx, other); err != nil {
		t.Errorf("Delete ended another session: %v", err)
	}
	if err := e.rec.Sessions.Delete(ctx, id); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := e.rec.Sessions.Get(ctx, mustSecret(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of an unknown id err = %v, want ErrNotFound", err)
	}
}

// TestSessionsLifetimes: a session ends after the idle lifetime without
// use or the maximum lifetime after sign-in, whichever comes first
// (OWASP ASVS V3.3; RFC 9068 §2.2.1 auth_time stays the sign-in).
func TestSessionsLifetimes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		idle, max time.Duration
		touchEach time.Duration // 0: never touched
		end       time.Duration // from sign-in
	}{
		{"idle first, untouched", time.Hour, 8 * time.Hour, 0, time.Hour},
		{"max first, kept busy", time.Hour, 8 * time.Hour, 50 * time.Minute, 8 * time.Hour},
		{"max shorter than idle", time.Hour, 30 * time.Minute, 0, 30 * time.Minute},
		{"touched once, then idle", time.Hour, 8 * time.Hour, 2 * time.Hour, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, Lifetimes{SessionIdle: tt.idle, SessionMax: tt.max})
			id, err := e.rec.Sessions.Start(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if tt.touchEach > 0 {
				for e.clock.Now().Add(tt.touchEach).Before(testEpoch.Add(tt.end)) {
					e.clock.Advance(tt.touchEach)
					s, err := e.rec.Sessions.Get(ctx, id)
					if err != nil {
						t.Fatalf("at %s: %v", e.clock.Now().Sub(testEpoch), err)
					}
					if err := e.rec.Sessions.Touch(ctx, id, s); err != nil {
						t.Fatal(err)
					}
				}
			}
			e.clock.Set(testEpoch.Add(tt.end - time.Second))
			if s, err := e.rec.Sessions.Get(ctx, id); err != nil || s.AuthTime != testEpoch.Unix() {
				t.Errorf("1s before the end: %+v, %v; want live with the sign-in time", s, err)
			}
			e.clock.Set(testEpoch.Add(tt.end))
			if _, err := e.rec.Sessions.Get(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("at the end: err = %v, want ErrNotFound", err)
			}
		})
	}
}

// TestSessionsTouch: the idle deadline moves at most once a minute, to
// keep store writes off most requests.
func TestSessionsTouch(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		after time.Duration
		moves bool
	}{
		{0, false},
		{time.Second, false},
		{sessionTouchEvery - time.Second, false},
		{sessionTouchEvery, true},
		{30 * time.Minute, true},
	} {
		t.Run(tt.after.String(), func(t *testing.T) {
			e := newTestEnv(t, testLifetimes)
			id, err := e.rec.Sessions.Start(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(tt.after)
			s, err := e.rec.Sessions.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.rec.Sessions.Touch(ctx, id, s); err != nil {
				t.Fatal(err)
			}
			wantTouched := testEpoch
			if tt.moves {
				wantTouched = testEpoch.Add(tt.after)
			}
			if s.Touched != wantTouched.Unix() {
				t.Errorf("Touched = %d, want %d", s.Touched, wantTouched.Unix())
			}
			// The stored idle deadline moved only if Touched did.
			e.clock.Set(testEpoch.Add(testLifetimes.SessionIdle))
			_, err = e.rec.Sessions.Get(ctx, id)
			if live := err == nil; live != tt.moves {
				t.Errorf("at the first idle deadline live = %v (%v), want %v", live, err, tt.moves)
			}
		})
	}
}

// TestSessionsTouchAfterEnd: a Touch that comes after the session ended
// (the clock moved between Get and Touch) must not store the session
// again without a lifetime, where no store would ever remove it.
func TestSessionsTouchAfterEnd(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Lifetimes{SessionIdle: time.Hour, SessionMax: time.Hour})
	id, err := e.rec.Sessions.Start(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Set(testEpoch.Add(time.Hour - time.Second))
	s, err := e.rec.Sessions.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Set(testEpoch.Add(time.Hour + time.Second))
	if err := e.rec.Sessions.Touch(ctx, id, s); !errors.Is(err, ErrNotFound) {
		t.Errorf("Touch after the end err = %v, want ErrNotFound", err)
	}
	if s.Touched != testEpoch.Unix() {
		t.Errorf("Touch after the end moved Touched to %d", s.Touched)
	}
	if _, err := e.rec.Sessions.Get(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after the end err = %v, want ErrNotFound", err)
	}
	e.clock.Advance(365 * 24 * time.Hour)
	if e.has(t, sessionKey(id)) {
		t.Error("a session touched after its end is kept for ever")
	}
}

// TestSessionsNotFound: a malformed id is not looked up; a corrupt entry
// is absent and logged.
func TestSessionsNotFound(t *testing.T) {
	ctx := context.Background()
	rec, cs := countingRecords(errStoreDown)
	for _, tc := range malformedSecrets {
		if _, err := rec.Sessions.Get(ctx, tc.s); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", tc.name, err)
		}
	}
	if n := cs.calls.Load(); n != 0 {
		t.Errorf("malformed ids reached the store %d times", n)
	}
	if _, err := rec.Sessions.Get(ctx, strings.Repeat("s", secretLen)); !errors.Is(err, errStoreDown) {
		t.Errorf("store failure err = %v, want the store's", err)
	}

	for _, tc := range append([]struct{ name, v string }{{"no user", `{"user":"","auth_time":1}`}, {"null", "null"}}, corruptJSON...) {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, testLifetimes)
			id := mustSecret(t)
			e.put(t, sessionKey(id), []byte(tc.v), time.Hour)
			if _, err := e.rec.Sessions.Get(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("err = %v, want ErrNotFound", err)
			}
			wantLogged(t, e.logs, zapcore.WarnLevel, "corrupt session entry")
		})
	}
}
