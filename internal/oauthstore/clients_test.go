package oauthstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

// testClient is the record type the tests keep through Clients[R].
type testClient struct {
	ID   string `json:"client_id"`
	Name string `json:"name"`
}

func newTestClients(e *testEnv) Clients[testClient] {
	return NewClients(e.kv, e.clock.Now, e.log, func(c *testClient) string { return c.ID })
}

// TestClientsCreateGetPutDelete: RFC 7591 §3.2.1, a registered client_id
// is unique: Create refuses one that is taken; Put replaces; Delete
// removes. Ids outside the key alphabet (":" "~") work as any other.
func TestClientsCreateGetPutDelete(t *testing.T) {
	ctx := context.Background()
	for _, id := range []string{"app", "svc:reports~1", "x-3a", "."} {
		t.Run(id, func(t *testing.T) {
			e := newTestEnv(t, testLifetimes)
			c := newTestClients(e)
			if _, err := c.Get(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get before Create err = %v, want ErrNotFound", err)
			}
			if ok, err := c.Create(ctx, &testClient{ID: id, Name: "first"}); !ok || err != nil {
				t.Fatalf("Create = %v, %v", ok, err)
			}
			if ok, err := c.Create(ctx, &testClient{ID: id, Name: "second"}); ok || err != nil {
				t.Errorf("Create of a taken id = %v, %v; want false", ok, err)
			}
			if got, err := c.Get(ctx, id); err != nil || *got != (testClient{id, "first"}) {
				t.Errorf("Get = %+v, %v; want the first record", got, err)
			}
			if err := c.Put(ctx, &testClient{ID: id, Name: "renamed"}); err != nil {
				t.Fatal(err)
			}
			if got, err := c.Get(ctx, id); err != nil || got.Name != "renamed" {
				t.Errorf("Get after Put = %+v, %v", got, err)
			}
			if err := c.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Get(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get after Delete err = %v, want ErrNotFound", err)
			}
			if ok, err := c.Create(ctx, &testClient{ID: id, Name: "again"}); !ok || err != nil {
				t.Errorf("Create after Delete = %v, %v", ok, err)
			}
			wantNothingLogged(t, e.logs)
		})
	}
}

// TestClientsCorrupt: a record that is not JSON, or that names another
// client_id than the one it is kept under, is absent and logged, so one
// client's entry never authenticates another.
func TestClientsCorrupt(t *testing.T) {
	ctx := context.Background()
	cases := append([]struct{ name, v string }{
		{"another id", `{"client_id":"evil","name":"x"}`},
		{"no id", `{"name":"x"}`},
		{"null", "null"},
	}, corruptJSON...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, testLifetimes)
			e.put(t, clientKey("app"), []byte(tc.v), 0)
			if got, err := newTestClients(e).Get(ctx, "app"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get = %+v, %v; want ErrNotFound", got, err)
			}
			wantLogged(t, e.logs, zapcore.WarnLevel, "corrupt client entry")
		})
	}
}

// TestClientsList: every readable record is listed; a corrupt one is left
// out and logged, and does not hide the others.
func TestClientsList(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	c := newTestClients(e)
	for _, id := range []string{"b", "a", "svc:1"} {
		if ok, err := c.Create(ctx, &testClient{ID: id}); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	e.put(t, clientKey("broken"), []byte("{"), 0)
	e.put(t, clientRevocationKey("a"), []byte("123"), 0) // not a client
	got, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range got {
		ids[r.ID] = true
	}
	if len(got) != 3 || !ids["a"] || !ids["b"] || !ids["svc:1"] {
		t.Errorf("List = %+v, want a, b and svc:1", got)
	}
	wantLogged(t, e.logs, zapcore.WarnLevel, "corrupt client entry")

	empty := newTestClients(newTestEnv(t, testLifetimes))
	if got, err := empty.List(ctx); err != nil || len(got) != 0 {
		t.Errorf("List of an empty store = %v, %v", got, err)
	}
}

// TestClientsRevokedBefore: RFC 7009 §2.1 and RFC 7591 §2 lifecycle: a
// client revocation marks every token issued until now as revoked, for
// the mark's lifetime, Caddyfile clients (no record) included; a corrupt
// mark is absent and logged as an error.
func TestClientsRevokedBefore(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	c := newTestClients(e)
	if at, err := c.RevokedBefore(ctx, "app"); err != nil || !at.IsZero() {
		t.Errorf("RevokedBefore with no mark = %v, %v; want zero", at, err)
	}
	e.clock.Advance(90 * time.Minute)
	if err := c.Revoke(ctx, "app", time.Hour); err != nil {
		t.Fatal(err)
	}
	want := testEpoch.Add(90 * time.Minute)
	e.clock.Advance(time.Hour - time.Second)
	if at, err := c.RevokedBefore(ctx, "app"); err != nil || !at.Equal(want) {
		t.Errorf("RevokedBefore = %v, %v; want %v", at, err, want)
	}
	if at, _ := c.RevokedBefore(ctx, "app2"); !at.IsZero() {
		t.Errorf("another client's mark = %v, want zero", at)
	}
	e.clock.Advance(time.Second)
	if at, err := c.RevokedBefore(ctx, "app"); err != nil || !at.IsZero() {
		t.Errorf("after the mark's lifetime = %v, %v; want zero", at, err)
	}
	// Deleting a client's record leaves its mark.
	if err := c.Revoke(ctx, "app", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if at, _ := c.RevokedBefore(ctx, "app"); at.IsZero() {
		t.Error("Delete removed the revocation mark")
	}
	wantNothingLogged(t, e.logs)

	for _, bad := range []string{"", "yesterday", "1.5", "99999999999999999999"} {
		e.put(t, clientRevocationKey("svc:1"), []byte(bad), 0)
		if at, err := c.RevokedBefore(ctx, "svc:1"); err != nil || !at.IsZero() {
			t.Errorf("corrupt mark %q = %v, %v; want zero, nil", bad, at, err)
		}
		entries := e.logs.FilterMessageSnippet("corrupt client revocation mark").All()
		if len(entries) != 1 || entries[0].Level != zapcore.ErrorLevel || entries[0].ContextMap()["client_id"] != "svc:1" {
			t.Errorf("corrupt mark %q: logged %v, want one error naming client_id svc:1", bad, entries)
		}
		e.logs.TakeAll()
	}

	rec, _ := countingRecords(errStoreDown)
	failing := NewClients(rec.Codes.kv, time.Now, e.log, func(c *testClient) string { return c.ID })
	if _, err := failing.RevokedBefore(ctx, "app"); !errors.Is(err, errStoreDown) {
		t.Errorf("store failure: RevokedBefore err = %v, want the store's", err)
	}
	if _, err := failing.Get(ctx, "app"); !errors.Is(err, errStoreDown) {
		t.Errorf("store failure: Get err = %v, want the store's", err)
	}
}
