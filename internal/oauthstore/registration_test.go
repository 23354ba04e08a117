package oauthstore

import (
	"errors"
	"testing"
	"time"
)

// TestRegistrationSlots: at most max registrations per address per
// window; other addresses are not affected; a slot frees when its window
// ends.
func TestRegistrationSlots(t *testing.T) {
	e := newTestEnv(t, testLifetimes)
	clock := e.clock
	o := NewRegistrations(e.kv, clock.Now, e.log)
	for i := range 3 {
		if ok, err := o.TakeSlot(t.Context(), "192.0.2.1", 3, time.Hour); err != nil || !ok {
			t.Fatalf("slot %d: %v %v", i, ok, err)
		}
	}
	if ok, _ := o.TakeSlot(t.Context(), "192.0.2.1", 3, time.Hour); ok {
		t.Error("a fourth registration within the window")
	}
	if ok, _ := o.TakeSlot(t.Context(), "192.0.2.2", 3, time.Hour); !ok {
		t.Error("another address was refused")
	}
	clock.Advance(time.Hour + time.Second)
	if ok, _ := o.TakeSlot(t.Context(), "192.0.2.1", 3, time.Hour); !ok {
		t.Error("no slot after the window ended")
	}
}

// TestInitialAccessTokens: kept until they expire, listed while live,
// deleted on demand.
func TestInitialAccessTokens(t *testing.T) {
	e := newTestEnv(t, testLifetimes)
	clock := e.clock
	o := NewRegistrations(e.kv, clock.Now, e.log)
	tok := &InitialAccessToken{ID: "ab12", Created: clock.Now(), Expires: clock.Now().Add(time.Hour)}
	if err := o.PutInitialAccessToken(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	if got, err := o.InitialAccessToken(t.Context(), "ab12"); err != nil || got.ID != "ab12" {
		t.Fatalf("get: %v %v", got, err)
	}
	if l, _ := o.InitialAccessTokens(t.Context()); len(l) != 1 {
		t.Errorf("list: %v", l)
	}
	clock.Advance(time.Hour)
	if _, err := o.InitialAccessToken(t.Context(), "ab12"); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired token: %v", err)
	}
	if err := o.PutInitialAccessToken(t.Context(), &InitialAccessToken{ID: "cd", Expires: clock.Now()}); err == nil {
		t.Error("a token that has already expired was kept")
	}
	_ = o.PutInitialAccessToken(t.Context(), &InitialAccessToken{ID: "ef", Expires: clock.Now().Add(time.Minute)})
	if err := o.DeleteInitialAccessToken(t.Context(), "ef"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.InitialAccessToken(t.Context(), "ef"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted token: %v", err)
	}
}
