package oauthstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func testUser(name, email string) *StoredUser {
	return &StoredUser{Username: name, Name: "Test " + name, Email: email, PasswordHash: "$2a$10$hash"}
}

// TestUsersCreateGet: a signed-up user is kept under its username, with
// Created from the clock.
func TestUsersCreateGet(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	u := testUser("alice", "alice@example.com")
	if err := e.rec.Users.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	if u.Created != testEpoch.Unix() {
		t.Errorf("Created = %d, want %d", u.Created, testEpoch.Unix())
	}
	got, err := e.rec.Users.Get(ctx, "alice")
	if err != nil || *got != *u {
		t.Errorf("Get = %+v, %v; want %+v", got, err, u)
	}
	if _, err := e.rec.Users.Get(ctx, "bob"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of an unknown user err = %v, want ErrNotFound", err)
	}
}

// TestUsersTaken: usernames and e-mail addresses are unique without regard
// to case (RFC 5321 §2.4: the domain is case-insensitive; the local part
// is treated so too, as providers do), and a sign-up refused for its
// username gives back its e-mail claim.
func TestUsersTaken(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	steps := []struct {
		name, user, email string
		want              error
	}{
		{"first", "Bob", "bob@example.com", nil},
		{"same username", "Bob", "bob2@example.com", ErrUsernameTaken},
		{"username in another case", "bob", "bob3@example.com", ErrUsernameTaken},
		{"same e-mail", "robert", "bob@example.com", ErrEmailTaken},
		{"e-mail in another case", "robert", "BOB@Example.COM", ErrEmailTaken},
		{"refused e-mail was given back", "dave", "bob3@example.com", nil},
		{"refused e-mail was given back (2)", "erin", "bob2@example.com", nil},
		{"both taken: the e-mail is checked first", "BOB", "Bob3@example.com", ErrEmailTaken},
		{"an e-mail refused as taken stays its owner's", "frank", "bob3@example.com", ErrEmailTaken},
	}
	for _, s := range steps {
		err := e.rec.Users.Create(ctx, testUser(s.user, s.email))
		if !errors.Is(err, s.want) || (s.want == nil && err != nil) {
			t.Errorf("%s: Create(%q, %q) err = %v, want %v", s.name, s.user, s.email, err, s.want)
		}
	}
	// The refused sign-ups changed nothing.
	if u, err := e.rec.Users.Get(ctx, "Bob"); err != nil || u.Email != "bob@example.com" {
		t.Errorf("Get(Bob) = %+v, %v", u, err)
	}
}

// TestUsersGetExactCase: Get answers for the exact username only; another
// case of the name is ErrNotFound (sign-in compares exactly).
func TestUsersGetExactCase(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	if err := e.rec.Users.Create(ctx, testUser("Bob", "bob@example.com")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bob", "BOB", "bOb"} {
		if u, err := e.rec.Users.Get(ctx, name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %+v, %v; want ErrNotFound", name, u, err)
		}
	}
	if _, err := e.rec.Users.Get(ctx, "Bob"); err != nil {
		t.Errorf("Get(Bob): %v", err)
	}
	wantNothingLogged(t, e.logs)
}

// TestUsersConcurrentCreate: both claims are atomic: of N sign-ups for one
// username at once, one succeeds, and every other gives its e-mail back.
func TestUsersConcurrentCreate(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	const racers = 16
	var wins atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-start
			err := e.rec.Users.Create(ctx, testUser("carol", fmt.Sprintf("c%d@example.com", i)))
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, ErrUsernameTaken):
				t.Errorf("Create: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d sign-ups succeeded, want 1", wins.Load())
	}
	u, err := e.rec.Users.Get(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	for i := range racers {
		email := fmt.Sprintf("c%d@example.com", i)
		err := e.rec.Users.Create(ctx, testUser(fmt.Sprintf("user%d", i), email))
		if want := email == u.Email; errors.Is(err, ErrEmailTaken) != want {
			t.Errorf("%s: Create err = %v; e-mail taken should be %v", email, err, want)
		}
	}
}

// TestUsersCorrupt: a corrupt user entry is absent and logged.
func TestUsersCorrupt(t *testing.T) {
	ctx := context.Background()
	for _, tc := range append([]struct{ name, v string }{{"no username", `{"username":"","email":"x@example.com"}`}, {"null", "null"}}, corruptJSON...) {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, testLifetimes)
			e.put(t, userKey("eve"), []byte(tc.v), 0)
			if u, err := e.rec.Users.Get(ctx, "eve"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get = %+v, %v; want ErrNotFound", u, err)
			}
			wantLogged(t, e.logs, zapcore.WarnLevel, "corrupt user entry")
		})
	}
}

// TestUsersStoreFailure: a store failure is the store's error, and a
// failed sign-up leaves no e-mail claim behind.
func TestUsersStoreFailure(t *testing.T) {
	ctx := context.Background()
	rec, cs := countingRecords(errStoreDown)
	if _, err := rec.Users.Get(ctx, "alice"); !errors.Is(err, errStoreDown) {
		t.Errorf("Get err = %v", err)
	}
	if err := rec.Users.Create(ctx, testUser("alice", "a@example.com")); !errors.Is(err, errStoreDown) {
		t.Errorf("Create err = %v", err)
	}
	// The e-mail claim succeeds, the username write fails: the claim is
	// given back.
	failUser := &failingKeyStore{Store: cs.Store, failPrefix: "users/"}
	users := New(failUser, newTestClock().Now, zap.NewNop(), testLifetimes).Users
	if err := users.Create(ctx, testUser("alice", "a@example.com")); !errors.Is(err, errStoreDown) {
		t.Fatalf("Create err = %v, want the store's", err)
	}
	if _, err := cs.Store.Get(ctx, emailKey("a@example.com")); !errors.Is(err, ErrNotFound) {
		t.Errorf("the e-mail claim of a failed sign-up was kept: %v", err)
	}
}
