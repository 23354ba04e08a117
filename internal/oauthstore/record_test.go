package oauthstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

type recordV struct {
	Name string `json:"name"`
}

// TestGetJSON: the absent-or-corrupt policy in one place: absent is
// ErrNotFound, not logged; not JSON or refused by valid is ErrNotFound
// and a warning; a store failure is the store's error, never ErrNotFound.
func TestGetJSON(t *testing.T) {
	ctx := context.Background()
	nonEmpty := func(v *recordV) func() bool { return func() bool { return v.Name != "" } }
	tests := []struct {
		name    string
		stored  *string // nil: absent
		valid   bool    // pass nonEmpty as valid
		fail    bool    // the store fails
		want    error
		corrupt bool // a warning is logged
	}{
		{name: "absent", want: ErrNotFound},
		{name: "good", stored: new(`{"name":"x"}`)},
		{name: "good, valid", stored: new(`{"name":"x"}`), valid: true},
		{name: "not JSON", stored: new(`{name`), want: ErrNotFound, corrupt: true},
		{name: "empty", stored: new(``), want: ErrNotFound, corrupt: true},
		{name: "wrong type", stored: new(`{"name":1}`), want: ErrNotFound, corrupt: true},
		{name: "refused by valid", stored: new(`{"name":""}`), valid: true, want: ErrNotFound, corrupt: true},
		{name: "null refused by valid", stored: new(`null`), valid: true, want: ErrNotFound, corrupt: true},
		{name: "no valid: anything JSON", stored: new(`{}`)},
		{name: "store failure", stored: new(`{"name":"x"}`), fail: true, want: errStoreDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := &countingStore{Store: NewMemoryStore()}
			if tt.stored != nil {
				if err := cs.Put(ctx, "rec/k", []byte(*tt.stored), 0); err != nil {
					t.Fatal(err)
				}
			}
			if tt.fail {
				cs.fail = errStoreDown
			}
			log, logs := observedLogger(zapcore.DebugLevel)
			o := owner{kv: cs, now: newTestClock().Now, log: log}
			var v recordV
			var valid func() bool
			if tt.valid {
				valid = nonEmpty(&v)
			}
			err := o.getJSON(ctx, "rec/k", "thing", &v, valid)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if tt.want == errStoreDown && errors.Is(err, ErrNotFound) {
				t.Error("a store failure reads as ErrNotFound")
			}
			if tt.corrupt {
				wantLogged(t, logs, zapcore.WarnLevel, "corrupt thing entry in the store; treating it as absent")
			} else {
				wantNothingLogged(t, logs)
			}
		})
	}
}

// TestPutJSON: a record is stored as JSON for its lifetime; a value JSON
// cannot encode is an error and stores nothing.
func TestPutJSON(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	kv := NewMemoryStore()
	kv.SetClock(clock.Now)
	o := owner{kv: kv, now: clock.Now, log: zap.NewNop()}
	if err := o.putJSON(ctx, "rec/a", recordV{"x"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if b, err := kv.Get(ctx, "rec/a"); err != nil || string(b) != `{"name":"x"}` {
		t.Errorf("stored %q, %v", b, err)
	}
	if err := o.putJSON(ctx, "rec/b", make(chan int), 0); err == nil {
		t.Error("putJSON of a channel succeeded")
	}
	if ok, _ := o.exists(ctx, "rec/b"); ok {
		t.Error("a failed putJSON stored something")
	}
	if ok, err := o.exists(ctx, "rec/a"); !ok || err != nil {
		t.Errorf("exists(rec/a) = %v, %v", ok, err)
	}
	clock.Advance(time.Minute)
	if ok, err := o.exists(ctx, "rec/a"); ok || err != nil {
		t.Errorf("exists after the lifetime = %v, %v; want false, nil", ok, err)
	}
	failing := owner{kv: &countingStore{Store: kv, fail: errStoreDown}, now: clock.Now, log: zap.NewNop()}
	if ok, err := failing.exists(ctx, "rec/a"); ok || !errors.Is(err, errStoreDown) {
		t.Errorf("exists on a failing store = %v, %v; want the store's error", ok, err)
	}
}

// TestNew: every owner shares the one store, clock and logger, and the
// lifetimes go to the owners that enforce them.
func TestNew(t *testing.T) {
	kv := NewMemoryStore()
	clock := newTestClock()
	life := Lifetimes{RefreshIdle: 1, RefreshMax: 2, SessionIdle: 3, SessionMax: 4}
	r := New(kv, clock.Now, zap.NewNop(), life)
	owners := map[string]owner{
		"Codes": r.Codes.owner, "Families": r.Families.owner, "Sessions": r.Sessions.owner,
		"Consents": r.Consents.owner, "Users": r.Users.owner, "Revocations": r.Revocations.owner,
		"Keyrings": r.Keyrings.owner, "Assertions": r.Assertions.owner,
	}
	for name, o := range owners {
		if o.kv != Store(kv) || o.now == nil || o.log == nil || !o.now().Equal(testEpoch) {
			t.Errorf("%s is not wired to the store and clock", name)
		}
	}
	if r.Families.idle != 1 || r.Families.max != 2 || r.Sessions.idle != 3 || r.Sessions.max != 4 {
		t.Errorf("lifetimes: families %v/%v, sessions %v/%v", r.Families.idle, r.Families.max, r.Sessions.idle, r.Sessions.max)
	}
}

// TestTTLUntil: an entry that must be gone by t lives until t, and never
// zero or less, which every Store reads as "for ever".
func TestTTLUntil(t *testing.T) {
	for _, tt := range []struct {
		until time.Time
		want  time.Duration
	}{
		{testEpoch.Add(time.Hour), time.Hour},
		{testEpoch.Add(1500 * time.Millisecond), 1500 * time.Millisecond},
		{testEpoch.Add(time.Millisecond), time.Second},
		{testEpoch, time.Second},
		{testEpoch.Add(-time.Hour), time.Second},
		{time.Time{}, time.Second},
	} {
		if got := TTLUntil(testEpoch, tt.until); got != tt.want {
			t.Errorf("TTLUntil(now, now%+v) = %v, want %v", tt.until.Sub(testEpoch), got, tt.want)
		}
	}
}
