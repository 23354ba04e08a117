package oauthjwt

import (
	"strings"
	"sync"
)

// Bounds of an interner's tables: entries in each, and the longest value
// shared (longer ones stay with the claims that carry them). At most
// about 2 × 4,096 × 256 B + 1,024 × 1 KiB = 3 MiB however tokens look.
const (
	maxInternedStrings = 4096
	maxInternedLists   = 1024
	maxInternedLen     = 256
	maxInternedListLen = 1024
)

// interner shares, among the cached claims of one verifier, the strings
// and lists that many tokens repeat: client_id, iss, the audiences, the
// scope (one table), sub (a table of its own, so that a crowd of people
// does not crowd out the clients) and the lists. A cached token then
// costs its own jti and little else. Each table is bounded in entries and
// in the length of what it shares; a full table starts again empty (the
// claims that share its values keep them), so what recent tokens repeat
// is what it holds. Only verified tokens reach it. Interned values are
// shared: nothing may change a list's elements.
type interner struct {
	mu    sync.RWMutex
	strs  map[string]any      // client_id, iss, aud, scope text: each boxed once (see boxed)
	subs  map[string]any      // sub, boxed once
	lists map[string][]string // by the elements joined with spaces
}

func newInterner() *interner {
	return &interner{strs: map[string]any{}, subs: map[string]any{}, lists: map[string][]string{}}
}

// str returns the interned copy of s. A nil interner returns s.
func (in *interner) str(s string) string {
	s, _ = in.boxed(s)
	return s
}

// boxed is str that also returns the string as an interface value, one
// per interned string (so claims that box it do not allocate).
func (in *interner) boxed(s string) (string, any) {
	if in == nil {
		return s, s
	}
	return in.intern(in.strs, s)
}

// subject is boxed for a sub, in its own table.
func (in *interner) subject(s string) (string, any) {
	if in == nil {
		return s, s
	}
	return in.intern(in.subs, s)
}

func (in *interner) intern(table map[string]any, s string) (string, any) {
	if s == "" || len(s) > maxInternedLen {
		return s, s
	}
	in.mu.RLock()
	v, ok := table[s]
	in.mu.RUnlock()
	if ok {
		return v.(string), v
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if v, ok := table[s]; ok {
		return v.(string), v
	}
	if len(table) >= maxInternedStrings {
		clear(table)
	}
	s = strings.Clone(s) // s may be a view of a larger string
	v = s
	table[s] = v
	return s, v
}

// list returns the interned copy of l (a list equal to it). Lists with an
// empty element or one with a space are returned as they are: joined with
// spaces they would not name one list.
func (in *interner) list(l []string) []string {
	if in == nil || len(l) == 0 {
		return l
	}
	var buf [256]byte
	key := buf[:0]
	for i, s := range l {
		if s == "" || strings.IndexByte(s, ' ') >= 0 || len(key)+len(s) >= maxInternedListLen {
			return l
		}
		if i > 0 {
			key = append(key, ' ')
		}
		key = append(key, s...)
	}
	in.mu.RLock()
	v, ok := in.lists[string(key)]
	in.mu.RUnlock()
	if ok {
		return v
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if v, ok := in.lists[string(key)]; ok {
		return v
	}
	if len(in.lists) >= maxInternedLists {
		clear(in.lists)
	}
	text := string(key)
	v = strings.Split(text, " ") // views of text: one string for the list
	in.lists[text] = v
	return v
}
