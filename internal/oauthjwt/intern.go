package oauthjwt

import (
	"strings"
	"sync"
)

// maxInterned bounds each table of an interner.
const maxInterned = 4096

// interner shares, among the cached claims of one verifier, the strings
// and lists that many tokens repeat: client_id, sub, iss, the audiences,
// the scope. A cached token then costs its own jti and little else. It
// holds at most maxInterned strings and as many lists, kept for the
// verifier's life (only verified tokens reach it, so only an issuer's
// signing key can fill it); once full, new values stay with the claims
// that carry them, as if there were no interner. Interned values are
// shared: nothing may change a list's elements.
type interner struct {
	mu    sync.RWMutex
	strs  map[string]any      // each string, boxed once (see boxed)
	lists map[string][]string // by the elements joined with spaces
}

func newInterner() *interner {
	return &interner{strs: map[string]any{}, lists: map[string][]string{}}
}

// str returns the interned copy of s, interning it if there is room. A
// nil interner returns s.
func (in *interner) str(s string) string {
	s, _ = in.boxed(s)
	return s
}

// boxed is str that also returns the string as an interface value, one
// per interned string (so claims that box it do not allocate), or a new
// one when s is not interned.
func (in *interner) boxed(s string) (string, any) {
	if in == nil || s == "" {
		return s, s
	}
	in.mu.RLock()
	v, ok := in.strs[s]
	in.mu.RUnlock()
	if ok {
		return v.(string), v
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if v, ok := in.strs[s]; ok {
		return v.(string), v
	}
	if len(in.strs) >= maxInterned {
		return s, s
	}
	s = strings.Clone(s) // s may be a view of a larger string
	v = s
	in.strs[s] = v
	return s, v
}

// list returns the interned copy of l (a list equal to it), interning it
// if there is room. Lists with an empty element or one with a space are
// returned as they are: joined with spaces they would not name one list.
func (in *interner) list(l []string) []string {
	if in == nil || len(l) == 0 {
		return l
	}
	var buf [256]byte
	key := buf[:0]
	for i, s := range l {
		if s == "" || strings.IndexByte(s, ' ') >= 0 {
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
	if len(in.lists) >= maxInterned {
		return l
	}
	text := string(key)
	v = strings.Split(text, " ") // views of text: one string for the list
	in.lists[text] = v
	return v
}
