package oauthstore

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

func testCode() *Code {
	return &Code{
		ClientID:      "app",
		RedirectURI:   "https://app.example/cb",
		RedirectGiven: true,
		Challenge:     "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		User:          "alice",
		AuthTime:      testEpoch.Add(-time.Minute).Unix(),
		Scopes:        []string{"openid", "read"},
	}
}

// TestCodesIssueTake: RFC 6749 §4.1.2, "the client MUST NOT use the
// authorization code more than once": Take returns the record once.
// §10.5: the code is kept only as a digest, never as a key.
func TestCodesIssueTake(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	c := testCode()
	code, err := e.rec.Codes.Issue(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(code) != secretLen {
		t.Errorf("code %q has %d characters, want %d", code, len(code), secretLen)
	}
	if c.Created != testEpoch.Unix() {
		t.Errorf("Created = %d, want the clock's %d", c.Created, testEpoch.Unix())
	}
	keys := e.keys(t)
	if len(keys) != 1 || keys[0] != codeKey(code) {
		t.Fatalf("store keys = %q, want only %q", keys, codeKey(code))
	}
	if strings.Contains(keys[0], code) {
		t.Error("the code itself is part of its key")
	}

	got, err := e.rec.Codes.Take(ctx, code)
	if err != nil {
		t.Fatalf("first Take: %v", err)
	}
	want := testCode()
	want.Created = testEpoch.Unix()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Take = %+v, want %+v", got, want)
	}
	if _, err := e.rec.Codes.Take(ctx, code); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Take err = %v, want ErrNotFound", err)
	}
	if _, err := e.rec.Codes.Take(ctx, mustSecret(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Take of an unknown code err = %v, want ErrNotFound", err)
	}
	wantNothingLogged(t, e.logs)
}

// TestCodesConcurrentTake: RFC 6749 §4.1.2 and §10.5, single use even when
// the code is redeemed by N requests at once: exactly one gets the record.
func TestCodesConcurrentTake(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	const racers = 32
	for round := range 20 {
		code, err := e.rec.Codes.Issue(ctx, testCode())
		if err != nil {
			t.Fatal(err)
		}
		var wins, losses atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range racers {
			wg.Go(func() {
				<-start
				switch c, err := e.rec.Codes.Take(ctx, code); {
				case err == nil && c.ClientID == "app":
					wins.Add(1)
				case errors.Is(err, ErrNotFound):
					losses.Add(1)
				default:
					t.Errorf("Take = %+v, %v", c, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || losses.Load() != racers-1 {
			t.Fatalf("round %d: %d wins, %d losses; want 1 and %d", round, wins.Load(), losses.Load(), racers-1)
		}
	}
}

// TestCodesMalformed: a string that is not a code (wrong length) is
// ErrNotFound without a store round trip (RFC 6749 §5.2 invalid_grant).
func TestCodesMalformed(t *testing.T) {
	ctx := context.Background()
	rec, cs := countingRecords(errStoreDown)
	for _, tc := range malformedSecrets {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := rec.Codes.Take(ctx, tc.s); !errors.Is(err, ErrNotFound) {
				t.Errorf("Take err = %v, want ErrNotFound", err)
			}
			if _, err := rec.Codes.Used(ctx, tc.s); !errors.Is(err, ErrNotFound) {
				t.Errorf("Used err = %v, want ErrNotFound", err)
			}
		})
	}
	if n := cs.calls.Load(); n != 0 {
		t.Errorf("malformed codes reached the store %d times", n)
	}
	// The failing store does answer well-formed codes: the check above is
	// not vacuous.
	if _, err := rec.Codes.Take(ctx, strings.Repeat("a", secretLen)); !errors.Is(err, errStoreDown) {
		t.Errorf("well-formed code on a failing store: err = %v, want the store's", err)
	}
}

// TestCodesExpire: RFC 6749 §4.1.2, "The authorization code MUST expire
// shortly after it is issued" (at most 10 minutes recommended): a code is
// redeemable for CodeTTL and not at CodeTTL.
func TestCodesExpire(t *testing.T) {
	if CodeTTL <= 0 || CodeTTL > 10*time.Minute {
		t.Fatalf("CodeTTL = %s, want within (0, 10m] (RFC 6749 §4.1.2)", CodeTTL)
	}
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	early, err := e.rec.Codes.Issue(ctx, testCode())
	if err != nil {
		t.Fatal(err)
	}
	late, err := e.rec.Codes.Issue(ctx, testCode())
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(CodeTTL - time.Second)
	if _, err := e.rec.Codes.Take(ctx, early); err != nil {
		t.Errorf("Take 1s before CodeTTL: %v", err)
	}
	e.clock.Advance(time.Second)
	if _, err := e.rec.Codes.Take(ctx, late); !errors.Is(err, ErrNotFound) {
		t.Errorf("Take at CodeTTL err = %v, want ErrNotFound", err)
	}
}

// TestCodesCorrupt: the absent-or-corrupt policy (record.go): a stored code
// that is not a code record is ErrNotFound, logged, and consumed.
func TestCodesCorrupt(t *testing.T) {
	ctx := context.Background()
	cases := append([]struct{ name, v string }{
		{"null", "null"},
		{"no client", `{"client_id":"","user":"alice"}`},
		{"wrong type", `{"client_id":7}`},
		{"array", `[]`},
	}, corruptJSON...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, testLifetimes)
			code := mustSecret(t)
			e.put(t, codeKey(code), []byte(tc.v), CodeTTL)
			if c, err := e.rec.Codes.Take(ctx, code); !errors.Is(err, ErrNotFound) {
				t.Errorf("Take = %+v, %v; want ErrNotFound", c, err)
			}
			wantLogged(t, e.logs, zapcore.WarnLevel, "corrupt authorization code entry")
			if e.has(t, codeKey(code)) {
				t.Error("the corrupt entry is still there after Take")
			}
		})
	}
}

// TestCodesMarkUsed: RFC 6749 §4.1.2, a replayed code lets the server
// "revoke (when possible) all tokens previously issued based on that
// authorization code": the marker names them until ExpiresAt.
func TestCodesMarkUsed(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	code := mustSecret(t)
	if _, err := e.rec.Codes.Used(ctx, code); !errors.Is(err, ErrNotFound) {
		t.Errorf("Used before MarkUsed err = %v, want ErrNotFound", err)
	}
	use := CodeUse{JTI: "jti-1", Exp: testEpoch.Add(time.Hour).Unix(), FamilyID: "fam-1", ExpiresAt: testEpoch.Add(2 * time.Hour).Unix()}
	if err := e.rec.Codes.MarkUsed(ctx, code, use); err != nil {
		t.Fatal(err)
	}
	got, err := e.rec.Codes.Used(ctx, code)
	if err != nil || *got != use {
		t.Fatalf("Used = %+v, %v; want %+v", got, err, use)
	}
	if _, err := e.rec.Codes.Used(ctx, mustSecret(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Used of another code err = %v, want ErrNotFound", err)
	}
	e.clock.Advance(2*time.Hour - time.Second)
	if _, err := e.rec.Codes.Used(ctx, code); err != nil {
		t.Errorf("Used 1s before ExpiresAt: %v", err)
	}
	e.clock.Advance(time.Second)
	if _, err := e.rec.Codes.Used(ctx, code); !errors.Is(err, ErrNotFound) {
		t.Errorf("Used at ExpiresAt err = %v, want ErrNotFound", err)
	}

	// A marker whose ExpiresAt has passed lives a moment (TTLUntil), never
	// for ever.
	past := mustSecret(t)
	if err := e.rec.Codes.MarkUsed(ctx, past, CodeUse{JTI: "j", ExpiresAt: e.clock.Now().Add(-time.Hour).Unix()}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	if e.has(t, codeUsedKey(past)) {
		t.Error("a marker written after its ExpiresAt outlives a second")
	}

	// A corrupt marker is absent, and logged.
	bad := mustSecret(t)
	e.put(t, codeUsedKey(bad), []byte("{"), time.Hour)
	if _, err := e.rec.Codes.Used(ctx, bad); !errors.Is(err, ErrNotFound) {
		t.Errorf("corrupt marker err = %v, want ErrNotFound", err)
	}
	wantLogged(t, e.logs, zapcore.WarnLevel, "corrupt redeemed code entry")
}

// TestCodesStoreFailure: a store failure is the store's error, never
// ErrNotFound (which would answer invalid_grant for an outage).
func TestCodesStoreFailure(t *testing.T) {
	ctx := context.Background()
	rec, _ := countingRecords(errStoreDown)
	if _, err := rec.Codes.Issue(ctx, testCode()); !errors.Is(err, errStoreDown) {
		t.Errorf("Issue err = %v", err)
	}
	if _, err := rec.Codes.Take(ctx, strings.Repeat("b", secretLen)); !errors.Is(err, errStoreDown) {
		t.Errorf("Take err = %v", err)
	}
	if _, err := rec.Codes.Used(ctx, strings.Repeat("b", secretLen)); !errors.Is(err, errStoreDown) {
		t.Errorf("Used err = %v", err)
	}
	if err := rec.Codes.MarkUsed(ctx, strings.Repeat("b", secretLen), CodeUse{}); !errors.Is(err, errStoreDown) {
		t.Errorf("MarkUsed err = %v", err)
	}
}

// TestCodeResources: a code keeps the RFC 8707 resource indicators of its
// authorization request (§2.1), and a code written before it kept them (no
// "resources" member) still decodes, with Resources nil, which the server
// reads as "none asked for" (the default resource).
func TestCodeResources(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)

	// A code as the previous version wrote it, byte for byte.
	const old = "old-code-0123456789-abcdefghijklmnopqrstuvw"
	e.put(t, codeKey(old), []byte(`{"client_id":"app","redirect_uri":"https://app.example/cb","redirect_given":true,"user":"alice","auth_time":1,"scopes":["read"],"created":2}`), CodeTTL)
	c, err := e.rec.Codes.Take(ctx, old)
	if err != nil {
		t.Fatalf("an old code record does not decode: %v", err)
	}
	if c.Resources != nil || c.ClientID != "app" || !reflect.DeepEqual(c.Scopes, []string{"read"}) {
		t.Errorf("old code = %+v, want its fields and no resources", c)
	}

	nc := testCode()
	nc.Resources = []string{"https://api.example/", "urn:example:reports"}
	code, err := e.rec.Codes.Issue(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.rec.Codes.Take(ctx, code)
	if err != nil || !reflect.DeepEqual(got.Resources, nc.Resources) {
		t.Errorf("Take = %+v, %v; want resources %v", got, err, nc.Resources)
	}
}

// TestCodesReserve: RFC 6749 §4.1.2, a replay revokes what the code
// issued: the names of what it will issue are recorded before the take,
// the first Reserve's for every caller, so the take's winner and a
// concurrent replay agree on them. Live tells whether a code can still be
// taken, without taking it.
func TestCodesReserve(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, testLifetimes)
	code, err := e.rec.Codes.Issue(ctx, &Code{ClientID: "app", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if live, err := e.rec.Codes.Live(ctx, code); !live || err != nil {
		t.Fatalf("Live of an issued code = %v, %v", live, err)
	}
	if live, err := e.rec.Codes.Live(ctx, "short"); live || err != nil {
		t.Errorf("Live of a malformed code = %v, %v", live, err)
	}
	first, err := e.rec.Codes.Reserve(ctx, code, CodeUse{JTI: "j1", FamilyID: "f1", Exp: 1}, time.Minute)
	if err != nil || first.JTI != "j1" {
		t.Fatalf("first Reserve = %+v, %v", first, err)
	}
	second, err := e.rec.Codes.Reserve(ctx, code, CodeUse{JTI: "j2", FamilyID: "f2", Exp: 2}, time.Minute)
	if err != nil || *second != *first {
		t.Errorf("second Reserve = %+v, %v; want the first's names %+v", second, err, first)
	}
	if _, err := e.rec.Codes.Take(ctx, code); err != nil {
		t.Fatal(err)
	}
	if live, _ := e.rec.Codes.Live(ctx, code); live {
		t.Error("Live after the take")
	}
	if use, err := e.rec.Codes.Used(ctx, code); err != nil || use.JTI != "j1" {
		t.Errorf("Used after the take = %+v, %v; want the reserved names", use, err)
	}
}
