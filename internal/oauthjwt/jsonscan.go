package oauthjwt

import (
	"encoding/json"
	"errors"
	"strings"
	"unsafe"
)

// errNotObject reports JSON that is not one well-formed object.
var errNotObject = errors.New("not a JSON object")

// findMembers scans the JSON object obj once and sets out[i] to the raw
// value of the member named names[i], or leaves it nil when there is none.
// Of duplicate members the last one counts, as with encoding/json. Names
// are compared exactly (encoding/json matches map keys exactly too); a key
// written with escapes is unescaped first.
//
// It exists so that a claim mapping reads the few members it needs from a
// verified payload without decoding the whole payload a second time
// (golang-jwt decoded it into Claims already, and checked it is valid
// JSON). It still copes with any input: malformed JSON is errNotObject,
// never a panic or an out-of-range read.
func findMembers(obj []byte, names []string, out [][]byte) error {
	return eachMember(obj, func(key string, _, raw []byte) {
		for n, name := range names {
			if key == name {
				out[n] = raw
			}
		}
	})
}

// eachMember calls fn with the name (unescaped), the name as written
// (quoted) and the raw value of each member of the JSON object obj, in
// order, duplicates included. The key passed aliases obj unless it had
// escapes; fn must not keep it. Malformed JSON is errNotObject (fn may
// have been called for the members before the fault).
func eachMember(obj []byte, fn func(key string, quoted, raw []byte)) error {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return errNotObject
	}
	i = skipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return nil
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return errNotObject
		}
		keyStart := i
		end, escaped, ok := scanString(obj, i)
		if !ok {
			return errNotObject
		}
		var key string
		if escaped {
			if key, ok = unquote(obj[i:end]); !ok {
				return errNotObject
			}
		} else {
			// A view of obj without a copy: fn only compares it.
			key = unsafe.String(unsafe.SliceData(obj[i+1:end-1]), end-1-(i+1))
		}
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return errNotObject
		}
		i = skipSpace(obj, i+1)
		start := i
		if i, ok = skipValue(obj, i); !ok {
			return errNotObject
		}
		fn(key, obj[keyStart:end], obj[start:i])
		i = skipSpace(obj, i)
		if i >= len(obj) {
			return errNotObject
		}
		switch obj[i] {
		case ',':
			i = skipSpace(obj, i+1)
		case '}':
			return nil
		default:
			return errNotObject
		}
	}
}

// unquote decodes a JSON string with escapes; kept apart so that only
// such (rare) keys cost an allocation.
func unquote(quoted []byte) (string, bool) {
	var s string
	err := json.Unmarshal(quoted, &s)
	return s, err == nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString reads the JSON string starting at b[i] (a quote) and returns
// the index just past its closing quote and whether it has escapes.
func scanString(b []byte, i int) (end int, escaped, ok bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped, true
		}
	}
	return 0, false, false
}

// structural marks the bytes skipValue stops at inside an object or array.
var structural = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}

// skipValue returns the index just past the JSON value starting at b[i].
// Objects and arrays are skipped by depth, strings inside them whole;
// their inner syntax is not checked (the caller's input was).
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		end, _, ok := scanString(b, i)
		return end, ok
	case '{', '[':
		depth := 0
		for j := i; j < len(b); {
			for j < len(b) && !structural[b[j]] {
				j++
			}
			if j == len(b) {
				return 0, false
			}
			switch b[j] {
			case '"':
				end, _, ok := scanString(b, j)
				if !ok {
					return 0, false
				}
				j = end
				continue
			case '{', '[':
				depth++
			default:
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
			j++
		}
		return 0, false
	}
	j := i
	for j < len(b) && strings.IndexByte(",}] \t\r\n", b[j]) < 0 {
		j++
	}
	if j == i {
		return 0, false
	}
	return j, true
}
