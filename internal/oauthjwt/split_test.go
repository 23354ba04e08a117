package oauthjwt

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// splitPayloads are payloads whose members the fields of Claims hold in
// every way a token may write them (RFC 7519 §4.1: aud a string or an
// array, NumericDate a non-integer; RFC 9068 §2.2.3 scope; RFC 8693 §4.3
// client_id), with escapes, case variants encoding/json folds into the
// same field, repeated members and members Claims has no field for.
var splitPayloads = []string{
	`{"iss":"https://as.example","sub":"alice","aud":["https://api.example/"],"exp":1900000000,"iat":1800000000,"jti":"j1","client_id":"web","scope":"a b"}`,
	`{"iss":"https://as.example","sub":"alice","aud":"https://api.example/","exp":1900000000,"nbf":1800000000,"auth_time":1800000000,"scope":"a b"}`,
	`{"aud":["x","y"],"scope":["a","b"],"scp":["c"],"exp":1.9e9,"iat":1800000000.5,"cnf":{"jkt":"t"}}`,
	`{"scope":"a  b","sub":"al\u0069ce","\u0069ss":"https://as.example","aud":["a&b"],"client_id":""}`,
	`{"iss":"https://a","iss":"https://b","email":"a@example.com","email":"b@example.com"}`,
	`{"ISS":"https://upper","iss":"https://lower","Sub":"x","roles":["admin"],"nested":{"sub":"inner"}}`,
	`{"iss":"https://lower","ISS":"https://upper","exp":"1900000000","aud":[]}`,
	`{"jti":"a\"b","client_id":"c\\d","sub":"line\nbreak","aud":["é"],"scope":"ü"}`,
	`{}`,
	`{"exp":01}`,
	`not json`,
}

// claimNames are the names each payload is asked for: every member Claims
// has a field for, and others.
var claimNames = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "scope", "scp", "cnf", "auth_time", "email", "ISS", "Sub", "roles", "nested", "absent"}

// checkSplitClaims compares Claim on claims made from payload and finished
// (their payload split) with what Claim gave when the claims kept the
// whole payload: every member as encoding/json reads it into a map, the
// last of duplicates winning, strings decoded.
func checkSplitClaims(t *testing.T, payload string) {
	t.Helper()
	c := new(Claims)
	if json.Unmarshal([]byte(payload), c) != nil {
		return // not claims a verifier would accept
	}
	var want map[string]json.RawMessage
	_ = json.Unmarshal([]byte(payload), &want)
	c.payload = payload
	c.scopes = c.mergeScopes()
	c.scopeText = JoinScope(c.scopes)
	c.finish("", newInterner())
	names := append([]string(nil), claimNames...)
	for name := range want {
		names = append(names, name)
	}
	for _, name := range names {
		got, ok := c.Claim(name)
		raw, wantOK := want[name]
		wantText := string(raw)
		var s string
		if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
			wantText = s
		}
		if ok != wantOK || got != wantText {
			t.Fatalf("payload %s, kept %s: Claim(%q) = %q, %v; want %q, %v", payload, c.payload, name, got, ok, wantText, wantOK)
		}
	}
}

// TestSplitPayloadClaimUnchanged: a cached token keeps only the members
// its fields do not hold, and Claim ({oauth.claims.*}) answers every
// member as it did from the whole payload.
func TestSplitPayloadClaimUnchanged(t *testing.T) {
	for _, p := range splitPayloads {
		checkSplitClaims(t, p)
	}
}

// TestSplitPayloadKeepsOnlyTheRest: what the cache keeps of a payload.
func TestSplitPayloadKeepsOnlyTheRest(t *testing.T) {
	for _, tt := range []struct{ payload, kept string }{
		// A token of this gateway: the fields hold every member.
		{splitPayloads[0], ""},
		// auth_time has no field; aud as a string is held too.
		{splitPayloads[1], `{"auth_time":1800000000}`},
		// Arrays of scope, a non-integer exp and members without a field stay.
		{splitPayloads[2], `{"scope":["a","b"],"scp":["c"],"exp":1.9e9,"iat":1800000000.5,"cnf":{"jkt":"t"}}`},
		// Text the fields would give differently (two spaces, escapes in a
		// value) stays; an escaped name is read unescaped, an empty
		// string is held.
		{splitPayloads[3], `{"scope":"a  b","sub":"al\u0069ce","aud":["a&b"]}`},
		// A member the fields hold, repeated: the payload is kept whole.
		{splitPayloads[4], splitPayloads[4]},
	} {
		c := new(Claims)
		if err := json.Unmarshal([]byte(tt.payload), c); err != nil {
			t.Fatal(err)
		}
		c.payload = tt.payload
		c.finish("", nil)
		if c.payload != tt.kept {
			t.Errorf("%s: kept %s, want %s", tt.payload, c.payload, tt.kept)
		}
	}
}

// FuzzSplitPayload: for any payload that decodes into Claims, splitting it
// changes no answer of Claim.
func FuzzSplitPayload(f *testing.F) {
	for _, p := range splitPayloads {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		if len(payload) > MaxTokenSize || !strings.HasPrefix(strings.TrimSpace(payload), "{") {
			return
		}
		checkSplitClaims(t, payload)
	})
}

// TestInternerShares: tokens of one client share its strings and lists;
// lists that spaces would make ambiguous and values too long are not
// shared; a full table starts again, so it never holds more than its
// bound, and subjects have a table of their own.
func TestInternerShares(t *testing.T) {
	in := newInterner()
	a, b := strings.Clone("reports-service"), strings.Clone("reports-service")
	if x, y := in.str(a), in.str(b); x != "reports-service" || unsafeData(x) != unsafeData(y) {
		t.Fatal("equal strings not shared")
	}
	l1, l2 := in.list([]string{"a", "b"}), in.list([]string{"a", "b"})
	if &l1[0] != &l2[0] || strings.Join(l1, ",") != "a,b" {
		t.Fatalf("lists %q %q not shared", l1, l2)
	}
	spaced := []string{"a b"}
	if got := in.list(spaced); &got[0] != &spaced[0] {
		t.Fatal("a list with a space in an element was interned: it would be shared with [a b]")
	}
	long := strings.Repeat("x", maxInternedLen+1)
	if got := in.str(long); unsafeData(got) != unsafeData(long) || len(in.strs) != 1 {
		t.Fatal("a string longer than maxInternedLen was interned")
	}
	for i := range 3 * maxInternedStrings {
		in.subject(fmt.Sprint("person-", i))
		if len(in.subs) > maxInternedStrings {
			t.Fatalf("subject table grew to %d", len(in.subs))
		}
	}
	if len(in.strs) != 1 {
		t.Fatalf("subjects crowded the client table: %d entries", len(in.strs))
	}
	x, _ := in.subject(strings.Clone("late"))
	y, _ := in.subject(strings.Clone("late"))
	if unsafeData(x) != unsafeData(y) {
		t.Fatal("a full table did not start again")
	}
}

func unsafeData(s string) *byte { return unsafe.StringData(s) }
