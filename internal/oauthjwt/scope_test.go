package oauthjwt

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestParseScope checks the scope syntax of RFC 6749 §3.3:
// scope = scope-token *( SP scope-token ), scope-token = 1*NQCHAR.
func TestParseScope(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{"empty means no scope (§3.3)", "", nil, false},
		{"one token", "user:read", []string{"user:read"}, false},
		{"space delimited (§3.3)", "user:read user:write", []string{"user:read", "user:write"}, false},
		{"duplicates collapse, order kept", "b a b", []string{"b", "a"}, false},
		{"double space is an empty token (§3.3)", "a  b", nil, true},
		{"leading space (§3.3)", " a", nil, true},
		{"trailing space (§3.3)", "a ", nil, true},
		{"tab is not SP (§3.3)", "a\tb", nil, true},
		{"double quote is not NQCHAR (§3.3)", `a"b`, nil, true},
		{"backslash is not NQCHAR (§3.3)", `a\b`, nil, true},
		{"DEL is not NQCHAR (§3.3)", "a\x7f", nil, true},
		{"non-ASCII is not NQCHAR (§3.3)", "é", nil, true},
		{"MaxScopes tokens accepted", strings.TrimSuffix(strings.Repeat("a ", MaxScopes), " "), []string{"a"}, false},
		{"more than MaxScopes refused, duplicates counted", strings.TrimSuffix(strings.Repeat("a ", MaxScopes+1), " "), nil, true},
		{"a huge scope string is refused before it is split", strings.Repeat("s ", 1<<20) + "s", nil, true},
		{"punctuation is NQCHAR (§3.3)", "https://api.example/x!#$%&'()*+,-./:;<=>?@[]^_`{|}~", []string{"https://api.example/x!#$%&'()*+,-./:;<=>?@[]^_`{|}~"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseScope(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseScope(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ParseScope(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestHasAll(t *testing.T) {
	have := []string{"a", "b"}
	if !HasAll(have, nil) || !HasAll(have, []string{"b", "a"}) {
		t.Fatal("HasAll refused a subset")
	}
	if HasAll(have, []string{"a", "c"}) {
		t.Fatal("HasAll accepted a scope not held")
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"", "a b", "a  b", "user:read", "\x00", `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseScope(s)
		if err != nil {
			return
		}
		for _, tok := range got {
			if !ValidScopeToken(tok) {
				t.Fatalf("ParseScope(%q) returned invalid token %q", s, tok)
			}
		}
		// Round trip: a valid scope string without duplicates re-joins to itself.
		if again, err := ParseScope(JoinScope(got)); err != nil || !slices.Equal(again, got) {
			t.Fatalf("round trip of %q: %q, %v", s, again, err)
		}
	})
}

// TestParseScopeLinear: ParseScope's cost grows with the input, not its
// square (a request of MaxScopes distinct scopes of the longest kind).
func TestParseScopeLinear(t *testing.T) {
	toks := make([]string, MaxScopes)
	for i := range toks {
		toks[i] = "scope:" + strconv.Itoa(i) + ":" + strings.Repeat("x", 64)
	}
	in := strings.Join(toks, " ")
	got, err := ParseScope(in)
	if err != nil || len(got) != MaxScopes {
		t.Fatalf("ParseScope of %d distinct scopes: %d, %v", MaxScopes, len(got), err)
	}
	if allocs := testing.AllocsPerRun(10, func() { _, _ = ParseScope(in) }); allocs > 8 {
		t.Errorf("%v allocations, want a handful", allocs)
	}
	if !errors.Is(func() error { _, err := ParseScope(in + " one-more"); return err }(), ErrInvalidScope) {
		t.Error("MaxScopes+1 not ErrInvalidScope")
	}
}
