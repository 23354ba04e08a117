package oauthstore

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

func testFamily(user, client string) *Family {
	return &Family{ClientID: client, User: user, AuthTime: testEpoch.Add(-time.Minute).Unix(), Scopes: []string{"openid", "offline_access"}}
}

// startFamily starts a family for alice at app and returns its id and
// first token.
func startFamily(t *testing.T, e *testEnv, fam *Family) (string, string) {
	t.Helper()
	id, err := NewID()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.rec.Families.Start(context.Background(), id, fam)
	if err != nil {
		t.Fatal(err)
	}
	return id, tok
}

// TestFamiliesStartLookup: RFC 6749 §6 and RFC 9700 §4.14.2: a refresh
// token leads to its family (the grant), its generation and its idle
// deadline; the family carries the absolute deadline of the grant.
func TestFamiliesStartLookup(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	fam := testFamily("alice", "app")
	id, tok := startFamily(t, e, fam)
	if len(tok) != secretLen {
		t.Errorf("token has %d characters, want %d", len(tok), secretLen)
	}
	if fam.Created != testEpoch.Unix() || fam.MaxExp != testEpoch.Add(testLifetimes.RefreshMax).Unix() {
		t.Errorf("Created, MaxExp = %d, %d; want %d, %d", fam.Created, fam.MaxExp, testEpoch.Unix(), testEpoch.Add(testLifetimes.RefreshMax).Unix())
	}
	for _, k := range e.keys(t) {
		if strings.Contains(k, tok) {
			t.Errorf("key %q holds the token itself", k)
		}
	}

	rt, got, err := e.rec.Families.Lookup(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	wantRT := RefreshToken{Family: id, Gen: 0, IdleExp: testEpoch.Add(testLifetimes.RefreshIdle).Unix()}
	if *rt != wantRT {
		t.Errorf("token record = %+v, want %+v", *rt, wantRT)
	}
	if !reflect.DeepEqual(got, fam) {
		t.Errorf("family = %+v, want %+v", got, fam)
	}
	if g, err := e.rec.Families.Get(ctx, id); err != nil || !reflect.DeepEqual(g, fam) {
		t.Errorf("Get = %+v, %v", g, err)
	}

	// Lookup checks no deadline: past the idle lifetime the record is
	// still found, and IdleExp tells the caller it lapsed.
	e.clock.Advance(testLifetimes.RefreshIdle + time.Hour)
	rt, _, err = e.rec.Families.Lookup(ctx, tok)
	if err != nil || rt.IdleExp >= e.clock.Now().Unix() {
		t.Errorf("after the idle lifetime: %+v, %v; want the record with a past IdleExp", rt, err)
	}
	wantNothingLogged(t, e.logs)
}

// TestFamiliesIdleCappedByMax: RFC 9700 §4.14.2, a refresh token never
// outlives its grant: the idle deadline is capped at the family's end.
func TestFamiliesIdleCappedByMax(t *testing.T) {
	e := newTestEnv(t, Lifetimes{RefreshIdle: 48 * time.Hour, RefreshMax: 24 * time.Hour})
	fam := testFamily("alice", "app")
	_, tok := startFamily(t, e, fam)
	rt, _, err := e.rec.Families.Lookup(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if rt.IdleExp != fam.MaxExp {
		t.Errorf("IdleExp = %d, want MaxExp %d", rt.IdleExp, fam.MaxExp)
	}
}

// TestFamiliesLookupNotFound: a token that is malformed, unknown or
// corrupt, or whose family is corrupt, is ErrNotFound (RFC 6749 §5.2
// invalid_grant), corrupt ones logged.
func TestFamiliesLookupNotFound(t *testing.T) {
	ctx := context.Background()
	t.Run("malformed, without the store", func(t *testing.T) {
		rec, cs := countingRecords(errStoreDown)
		for _, tc := range malformedSecrets {
			if _, _, err := rec.Families.Lookup(ctx, tc.s); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: err = %v, want ErrNotFound", tc.name, err)
			}
		}
		if n := cs.calls.Load(); n != 0 {
			t.Errorf("malformed tokens reached the store %d times", n)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		e := newTestEnv(t, testLifetimes)
		if _, _, err := e.rec.Families.Lookup(ctx, mustSecret(t)); !errors.Is(err, ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
		wantNothingLogged(t, e.logs)
	})
	tokenCases := append([]struct{ name, v string }{
		{"no family", `{"family":"","gen":0}`},
		{"family not a key segment", `{"family":"../x","gen":0}`},
		{"family with a slash", `{"family":"a/b/../c","gen":0}`},
	}, corruptJSON...)
	for _, tc := range tokenCases {
		t.Run("corrupt token "+tc.name, func(t *testing.T) {
			e := newTestEnv(t, testLifetimes)
			tok := mustSecret(t)
			e.put(t, refreshKey(tok), []byte(tc.v), time.Hour)
			if _, _, err := e.rec.Families.Lookup(ctx, tok); !errors.Is(err, ErrNotFound) {
				t.Errorf("err = %v, want ErrNotFound", err)
			}
			wantLogged(t, e.logs, zapcore.WarnLevel, "corrupt refresh token entry")
		})
	}
	for _, tc := range append([]struct{ name, v string }{{"no client", `{"user":"alice"}`}}, corruptJSON...) {
		t.Run("corrupt family "+tc.name, func(t *testing.T) {
			e := newTestEnv(t, testLifetimes)
			id, tok := startFamily(t, e, testFamily("alice", "app"))
			e.put(t, familyKey(id), []byte(tc.v), time.Hour)
			if _, _, err := e.rec.Families.Lookup(ctx, tok); !errors.Is(err, ErrNotFound) {
				t.Errorf("Lookup err = %v, want ErrNotFound", err)
			}
			wantLogged(t, e.logs, zapcore.WarnLevel, "corrupt refresh token family entry")
			if _, err := e.rec.Families.Get(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get err = %v, want ErrNotFound", err)
			}
		})
	}
}

// TestFamiliesRotate: RFC 9700 §4.14.2, rotation: each use issues a new
// token of the next generation; the old token's record still names its
// older generation, so presenting it again is recognised as reuse.
func TestFamiliesRotate(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	fam := testFamily("alice", "app")
	id, tok0 := startFamily(t, e, fam)
	e.clock.Advance(time.Hour)
	tok1, err := e.rec.Families.rotateUnclaimed(ctx, id, fam)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	tok2, err := e.rec.Families.rotateUnclaimed(ctx, id, fam)
	if err != nil {
		t.Fatal(err)
	}
	if tok0 == tok1 || tok1 == tok2 || tok0 == tok2 {
		t.Fatal("rotation returned a token already issued")
	}
	for i, tc := range []struct {
		tok     string
		gen     int
		idleExp time.Time
	}{
		{tok0, 0, testEpoch.Add(testLifetimes.RefreshIdle)},
		{tok1, 1, testEpoch.Add(time.Hour + testLifetimes.RefreshIdle)},
		{tok2, 2, testEpoch.Add(2*time.Hour + testLifetimes.RefreshIdle)},
	} {
		rt, f, err := e.rec.Families.Lookup(ctx, tc.tok)
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if rt.Family != id || rt.Gen != tc.gen || rt.IdleExp != tc.idleExp.Unix() {
			t.Errorf("token %d record = %+v, want family %s gen %d idle %d", i, rt, id, tc.gen, tc.idleExp.Unix())
		}
		if f.Gen != 2 {
			t.Errorf("token %d: family generation %d, want 2", i, f.Gen)
		}
		if reuse := rt.Gen < f.Gen; reuse != (i < 2) {
			t.Errorf("token %d: reuse recognisable = %v, want %v", i, reuse, i < 2)
		}
	}
	if got, _ := e.rec.Families.Get(ctx, id); got == nil || got.MaxExp != fam.MaxExp || got.Created != testEpoch.Unix() {
		t.Errorf("rotation moved the family's deadlines: %+v", got)
	}
}

// TestFamiliesRotateEnded: RFC 9700 §4.14.2, a grant's maximum lifetime is
// absolute: past MaxExp a family cannot be rotated.
func TestFamiliesRotateEnded(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	fam := testFamily("alice", "app")
	id, _ := startFamily(t, e, fam)
	e.clock.Set(time.Unix(fam.MaxExp, 0).Add(-time.Second))
	if _, err := e.rec.Families.rotateUnclaimed(ctx, id, fam); err != nil {
		t.Fatalf("Rotate 1s before MaxExp: %v", err)
	}
	for _, at := range []time.Duration{0, time.Hour} {
		e.clock.Set(time.Unix(fam.MaxExp, 0).Add(at))
		if tok, err := e.rec.Families.rotateUnclaimed(ctx, id, fam); !errors.Is(err, errEnded) || tok != "" {
			t.Errorf("Rotate at MaxExp+%s = %q, %v; want errEnded", at, tok, err)
		}
	}
}

// TestFamiliesAddAccess: RFC 7009 §2.1, revoking a refresh token SHOULD
// revoke the access tokens of the same grant, so the family keeps them,
// each an entry of its own until it expires: concurrent refreshes (two
// tabs, a retry within the grace window) lose none; an access token listed
// in the family record by an earlier version is still returned.
func TestFamiliesAddAccess(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	fam := testFamily("alice", "app")
	id, _ := startFamily(t, e, fam)
	now := testEpoch.Unix()
	fam.Access = []AccessRef{{"legacy", now + 60}}
	if err := e.rec.Families.AddAccess(ctx, id, fam, AccessRef{"soon", now + 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rec.Families.rotateUnclaimed(ctx, id, fam); err != nil { // writes the legacy list
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := e.rec.Families.AddAccess(ctx, id, fam, AccessRef{"c" + strconv.Itoa(i), now + 600}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	e.clock.Advance(10 * time.Second) // "soon" has expired, and its entry is gone
	got, err := e.rec.Families.Revoke(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, r := range got {
		names[r.JTI] = true
	}
	if len(got) != 21 || !names["legacy"] || names["soon"] {
		t.Errorf("Revoke returned %d refs %v; want the legacy one and the 20 concurrent ones", len(got), got)
	}
}

// TestFamiliesRevoke: RFC 7009 §2.1 and RFC 9700 §4.14.2: revoking a
// family ends every token of it, returns its access tokens for the caller
// to revoke, and no later rotation brings it back.
func TestFamiliesRevoke(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	fam := testFamily("alice", "app")
	id, tok := startFamily(t, e, fam)
	refs := []AccessRef{{"a", testEpoch.Add(time.Hour).Unix()}, {"b", testEpoch.Add(2 * time.Hour).Unix()}}
	for _, r := range refs {
		if err := e.rec.Families.AddAccess(ctx, id, fam, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.rec.Families.Revoke(ctx, id)
	if err != nil || !slices.Equal(got, refs) {
		t.Fatalf("Revoke = %v, %v; want %v", got, err, refs)
	}
	if _, err := e.rec.Families.Get(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Revoke err = %v, want ErrNotFound", err)
	}
	if _, _, err := e.rec.Families.Lookup(ctx, tok); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup after Revoke err = %v, want ErrNotFound", err)
	}
	// A rotation racing the revocation rewrites the family, not the
	// revocation.
	next, err := e.rec.Families.rotateUnclaimed(ctx, id, fam)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.rec.Families.Lookup(ctx, next); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup of a token rotated after Revoke err = %v, want ErrNotFound", err)
	}
	// The revocation lasts as long as the family could.
	e.clock.Set(time.Unix(fam.MaxExp, 0).Add(-time.Second))
	if !e.has(t, familyRevokedKey(id)) {
		t.Error("the revocation lapsed before the family's end")
	}
	wantNothingLogged(t, e.logs)
}

// TestFamiliesRevokeUnknown: RFC 7009 §2.2, revoking what does not exist
// is not an error; the revocation still holds should the id appear.
func TestFamiliesRevokeUnknown(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	refs, err := e.rec.Families.Revoke(ctx, "no-such-family")
	if err != nil || len(refs) != 0 {
		t.Fatalf("Revoke = %v, %v; want no refs, no error", refs, err)
	}
	if _, err := e.rec.Families.Get(ctx, "no-such-family"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get err = %v, want ErrNotFound", err)
	}
	e.clock.Advance(testLifetimes.RefreshMax)
	if e.has(t, familyRevokedKey("no-such-family")) {
		t.Error("the revocation of an unknown family outlives RefreshMax")
	}
	// A corrupt family is revoked too, with no refs.
	e.put(t, familyKey("broken"), []byte("{"), time.Hour)
	if refs, err := e.rec.Families.Revoke(ctx, "broken"); err != nil || len(refs) != 0 {
		t.Errorf("Revoke of a corrupt family = %v, %v", refs, err)
	}
	if !e.has(t, familyRevokedKey("broken")) {
		t.Error("a corrupt family was not marked revoked")
	}
}

// TestFamiliesOfUser: withdrawing a consent ends that person's grants to
// the client (RFC 7009 §2.1; RFC 9700 §4.14.2): the index lists a
// person's families, per client or all of them, and nobody else's.
func TestFamiliesOfUser(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	ids := map[string]string{}
	for _, f := range []struct{ name, user, client string }{
		{"a1", "alice", "app"},
		{"a2", "alice", "app"},
		{"a3", "alice", "svc:reports"},
		{"a4", "alice2", "app"},
		{"b1", "bob@example.com", "app"},
	} {
		id, _ := startFamily(t, e, testFamily(f.user, f.client))
		ids[f.name] = id
	}
	set := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, ids[n])
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		user, client string
		want         []string
	}{
		{"alice", "", set("a1", "a2", "a3")},
		{"alice", "app", set("a1", "a2")},
		{"alice", "svc:reports", set("a3")},
		{"alice", "svc", nil},
		{"alice2", "", set("a4")},
		{"bob@example.com", "app", set("b1")},
		{"carol", "", nil},
	}
	check := func() {
		t.Helper()
		for _, tt := range tests {
			got, err := e.rec.Families.OfUser(ctx, tt.user, tt.client)
			slices.Sort(got)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("OfUser(%q, %q) = %q, %v; want %q", tt.user, tt.client, got, err, tt.want)
			}
		}
	}
	check()
	if err := e.rec.Families.Unindex(ctx, "alice", "app", ids["a1"]); err != nil {
		t.Fatal(err)
	}
	tests[0].want = set("a2", "a3")
	tests[1].want = set("a2")
	check()
	// Unindex leaves the family itself alone.
	if _, err := e.rec.Families.Get(ctx, ids["a1"]); err != nil {
		t.Errorf("Get of an unindexed family: %v", err)
	}
}

// TestFamiliesEntriesExpire: every entry of a family (tokens, claims, the
// family, its index entry) has a lifetime: none outlives RefreshMax, so a
// store never fills with ended grants.
func TestFamiliesEntriesExpire(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	fam := testFamily("alice", "app")
	id, tok := startFamily(t, e, fam)
	e.clock.Advance(time.Hour)
	rt, _, err := e.rec.Families.Lookup(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	next, err := e.rec.Families.Use(ctx, tok, rt, fam)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rec.Families.AddAccess(ctx, id, fam, AccessRef{"a", time.Unix(fam.MaxExp, 0).Add(time.Hour).Unix()}); err != nil {
		t.Fatal(err)
	}
	want := []string{refreshKey(tok), refreshKey(next), refreshUsedKey(tok), familyKey(id), userFamilyKey("alice", "app", id), familyAccessKey(id, "a")}
	slices.Sort(want)
	e.clock.Set(time.Unix(fam.MaxExp, 0).Add(-time.Second))
	if got := e.keys(t); !slices.Equal(got, want) {
		t.Errorf("1s before the family's end the store holds %q, want %q", got, want)
	}
	e.clock.Advance(time.Second)
	if got := e.keys(t); len(got) != 0 {
		t.Errorf("at the family's end the store still holds %q", got)
	}
}

// TestFamiliesStoreFailure: store failures are the store's errors, never
// ErrNotFound (which the token endpoint would answer with invalid_grant).
func TestFamiliesStoreFailure(t *testing.T) {
	ctx := context.Background()
	rec, _ := countingRecords(errStoreDown)
	tok := strings.Repeat("t", secretLen)
	fam := testFamily("alice", "app")
	if _, err := rec.Families.Start(ctx, "f", fam); !errors.Is(err, errStoreDown) {
		t.Errorf("Start err = %v", err)
	}
	if _, _, err := rec.Families.Lookup(ctx, tok); !errors.Is(err, errStoreDown) {
		t.Errorf("Lookup err = %v", err)
	}
	if _, err := rec.Families.Get(ctx, "f"); !errors.Is(err, errStoreDown) {
		t.Errorf("Get err = %v", err)
	}
	fam.MaxExp = testEpoch.Add(time.Hour).Unix()
	if _, err := rec.Families.Use(ctx, tok, &RefreshToken{Family: "f", IdleExp: fam.MaxExp}, fam); !errors.Is(err, errStoreDown) {
		t.Errorf("Use err = %v", err)
	}
	if _, err := rec.Families.Used(ctx, tok); !errors.Is(err, errStoreDown) {
		t.Errorf("Used err = %v", err)
	}
	if _, err := rec.Families.OfUser(ctx, "alice", ""); !errors.Is(err, errStoreDown) {
		t.Errorf("OfUser err = %v", err)
	}
	if _, err := rec.Families.Revoke(ctx, "f"); !errors.Is(err, errStoreDown) {
		t.Errorf("Revoke err = %v", err)
	}
}

// TestFamilyResources: a family keeps its grant's RFC 8707 resource
// indicators (§2.2: the refresh token stays bound to the full original
// grant), and a family written before it kept them still decodes, with
// Resources nil (the default resource).
func TestFamilyResources(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)

	e.put(t, familyKey("fam-old"), []byte(`{"client_id":"app","user":"alice","auth_time":1,"scopes":["read"],"gen":0,"created":2,"max_exp":9999999999}`), time.Hour)
	fam, err := e.rec.Families.Get(ctx, "fam-old")
	if err != nil {
		t.Fatalf("an old family record does not decode: %v", err)
	}
	if fam.Resources != nil || fam.User != "alice" || fam.ClientID != "app" {
		t.Errorf("old family = %+v, want its fields and no resources", fam)
	}

	res := []string{"https://api.example/", "urn:example:reports"}
	tok, err := e.rec.Families.Start(ctx, "fam-new", &Family{ClientID: "app", User: "alice", Scopes: []string{"read"}, Resources: res})
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := e.rec.Families.Lookup(ctx, tok)
	if err != nil || !reflect.DeepEqual(got.Resources, res) {
		t.Errorf("Lookup = %+v, %v; want resources %v", got, err, res)
	}
}

// rotateUnclaimed moves family id to its next generation with a new token,
// without claiming any: what a rotation writes, for tests of the records.
func (o Families) rotateUnclaimed(ctx context.Context, id string, fam *Family) (string, error) {
	fam.Gen++
	return o.put(ctx, id, fam, o.now())
}
