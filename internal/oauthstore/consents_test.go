package oauthstore

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

// TestConsentsPutGetDelete: a remembered consent (OpenID Connect Core 1.0
// §3.1.2.4, consent "established by other means" such as an earlier
// approval) is kept per person and client, given at the clock's time,
// until withdrawn.
func TestConsentsPutGetDelete(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	c := e.rec.Consents
	if _, err := c.Get(ctx, "alice", "app"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get before Put err = %v, want ErrNotFound", err)
	}
	if err := c.Put(ctx, "alice", "app", []string{"openid", "read"}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "alice", "app")
	want := Consent{ClientID: "app", Scopes: []string{"openid", "read"}, Given: testEpoch.Unix()}
	if err != nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, want)
	}
	// Another person, another client: not the same consent.
	for _, k := range [][2]string{{"bob", "app"}, {"alice", "other"}, {"alice", "app2"}} {
		if _, err := c.Get(ctx, k[0], k[1]); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q, %q) err = %v, want ErrNotFound", k[0], k[1], err)
		}
	}
	// Put again replaces, with the new time.
	e.clock.Advance(time.Hour)
	if err := c.Put(ctx, "alice", "app", []string{"openid"}); err != nil {
		t.Fatal(err)
	}
	want = Consent{ClientID: "app", Scopes: []string{"openid"}, Given: testEpoch.Add(time.Hour).Unix()}
	if got, err := c.Get(ctx, "alice", "app"); err != nil || !reflect.DeepEqual(*got, want) {
		t.Errorf("Get after the second Put = %+v, %v; want %+v", got, err, want)
	}
	if err := c.Delete(ctx, "alice", "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "alice", "app"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete err = %v, want ErrNotFound", err)
	}
	if err := c.Delete(ctx, "alice", "app"); err != nil {
		t.Errorf("Delete of a missing consent: %v", err)
	}
	wantNothingLogged(t, e.logs)
}

// TestConsentsList: the account page lists a person's consents (to
// withdraw them); nested keys under the person's prefix are no consents,
// and corrupt entries are left out and logged.
func TestConsentsList(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	c := e.rec.Consents
	for _, p := range []struct{ user, client string }{
		{"alice@example.com", "app"},
		{"alice@example.com", "svc:reports"},
		{"alice@example.com2", "app"}, // a longer name must not show
		{"bob", "app"},
	} {
		if err := c.Put(ctx, p.user, p.client, []string{"openid"}); err != nil {
			t.Fatal(err)
		}
	}
	e.put(t, consentsPrefix("alice@example.com")+"nested/app", []byte(`{"client_id":"nested","scopes":["x"]}`), 0)
	e.put(t, consentKey("alice@example.com", "broken"), []byte("{"), 0)

	got, err := c.List(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, g := range got {
		ids = append(ids, g.ClientID)
		if g.Given != testEpoch.Unix() {
			t.Errorf("%s: Given = %d, want %d", g.ClientID, g.Given, testEpoch.Unix())
		}
	}
	slices.Sort(ids)
	if want := []string{"app", "svc:reports"}; !slices.Equal(ids, want) {
		t.Errorf("List client ids = %q, want %q", ids, want)
	}
	wantLogged(t, e.logs, zapcore.WarnLevel, "corrupt consent entry")

	if got, err := c.List(ctx, "carol"); err != nil || len(got) != 0 {
		t.Errorf("List of a person with none = %v, %v", got, err)
	}
}

// TestConsentsCorrupt: a corrupt consent is absent (the person is asked
// again) and logged.
func TestConsentsCorrupt(t *testing.T) {
	ctx := context.Background()
	for _, tc := range corruptJSON {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, testLifetimes)
			e.put(t, consentKey("alice", "app"), []byte(tc.v), 0)
			if _, err := e.rec.Consents.Get(ctx, "alice", "app"); !errors.Is(err, ErrNotFound) {
				t.Errorf("err = %v, want ErrNotFound", err)
			}
			wantLogged(t, e.logs, zapcore.WarnLevel, "corrupt consent entry")
		})
	}
	rec, _ := countingRecords(errStoreDown)
	if _, err := rec.Consents.Get(ctx, "alice", "app"); !errors.Is(err, errStoreDown) {
		t.Errorf("store failure: Get err = %v", err)
	}
	if _, err := rec.Consents.List(ctx, "alice"); !errors.Is(err, errStoreDown) {
		t.Errorf("store failure: List err = %v", err)
	}
}
