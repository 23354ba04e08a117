package oauthstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

func fileStorage(dir string) certmagic.Storage { return &certmagic.FileStorage{Path: dir} }

func zaptestLogger(t *testing.T) *zap.Logger { return zaptest.NewLogger(t) }

// TestCaddyStoreCorruptEntry: a corrupt stored entry is logged and treated
// as absent, never returned and never a panic (issue: faults).
func TestCaddyStoreCorruptEntry(t *testing.T) {
	ctx := context.Background()
	storage := fileStorage(t.TempDir())
	core, logs := observer.New(zapcore.ErrorLevel)
	s := NewCaddyStore(storage, "oauth/store", zap.New(core))
	for _, bad := range [][]byte{nil, []byte("x"), []byte("oas1"), []byte("garbage that is long enough")} {
		if err := storage.Store(ctx, "oauth/store/bad", bad); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "bad"); !errors.Is(err, ErrNotFound) {
			t.Errorf("corrupt %q: Get err = %v, want ErrNotFound", bad, err)
		}
		if _, err := s.Take(ctx, "bad"); !errors.Is(err, ErrNotFound) {
			t.Errorf("corrupt %q: Take err = %v, want ErrNotFound", bad, err)
		}
		if ok, err := s.PutIfAbsent(ctx, "bad", []byte("fresh"), 0); !ok || err != nil {
			t.Errorf("corrupt %q: PutIfAbsent = %v, %v; want it replaced", bad, ok, err)
		}
	}
	if logs.Len() == 0 {
		t.Error("corrupt entries were not logged")
	}
	for _, e := range logs.All() {
		if e.ContextMap()["key"] != "bad" {
			t.Errorf("log entry %v does not name the key", e.ContextMap())
		}
	}
}

// TestCaddyStoreSweep: on Caddy storage an entry expires only when read,
// so Sweep removes the expired ones (codes nobody redeems, RFC 6749
// §4.1.2) from disk; live entries, entries without expiry, corrupt files
// and files outside the store's prefix stay, and the count is right.
func TestCaddyStoreSweep(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	storage := fileStorage(dir)
	const prefix = "oauth/store"
	s := NewCaddyStore(storage, prefix, zaptestLogger(t))
	clock := newTestClock()
	s.now = clock.Now
	rec := New(s, clock.Now, zaptestLogger(t), testLifetimes)

	code, err := rec.Codes.Issue(ctx, testCode())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		key string
		ttl time.Duration
	}{
		{"sweep/short", time.Second},
		{"sweep/live", time.Hour},
		{"sweep/forever", 0},
	} {
		if err := s.Put(ctx, p.key, []byte("v"), p.ttl); err != nil {
			t.Fatal(err)
		}
	}
	expiredLongAgo := encodeEntry([]byte("v"), testEpoch.Add(-time.Hour))
	for key, b := range map[string][]byte{
		prefix + "/sweep/corrupt": []byte("not an entry"),
		"elsewhere/codes/x":       expiredLongAgo, // not the store's
	} {
		if err := storage.Store(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}
	file := func(key string) string {
		return filepath.Join(dir, filepath.FromSlash(prefix), filepath.FromSlash(key))
	}
	exists := func(path string) bool {
		t.Helper()
		_, err := os.Stat(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		return err == nil
	}
	if !exists(file(codeKey(code))) {
		t.Fatalf("the code is not at %s", file(codeKey(code)))
	}

	if n, err := s.Sweep(ctx); n != 0 || err != nil {
		t.Errorf("Sweep with nothing expired = %d, %v", n, err)
	}
	clock.Advance(CodeTTL)
	n, err := s.Sweep(ctx)
	if n != 2 || err != nil {
		t.Errorf("Sweep = %d, %v; want 2 removed", n, err)
	}
	for path, want := range map[string]bool{
		file(codeKey(code)):                     false,
		file("sweep/short"):                     false,
		file("sweep/live"):                      true,
		file("sweep/forever"):                   true,
		file("sweep/corrupt"):                   true,
		filepath.Join(dir, "elsewhere/codes/x"): true,
	} {
		if got := exists(path); got != want {
			t.Errorf("%s exists = %v, want %v", path, got, want)
		}
	}
	if v, err := s.Get(ctx, "sweep/live"); err != nil || string(v) != "v" {
		t.Errorf("live entry after Sweep = %q, %v", v, err)
	}
	if n, err := s.Sweep(ctx); n != 0 || err != nil {
		t.Errorf("second Sweep = %d, %v; want 0", n, err)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	clock.Advance(2 * time.Hour)
	if n, err := s.Sweep(canceled); n != 0 || err == nil {
		t.Errorf("Sweep with a canceled context = %d, %v; want an error", n, err)
	}
	empty := NewCaddyStore(fileStorage(t.TempDir()), prefix, zaptestLogger(t))
	if n, err := empty.Sweep(ctx); n != 0 || err != nil {
		t.Errorf("Sweep of a store never written = %d, %v", n, err)
	}
}

// FuzzDecodeEntry: decodeEntry reads bytes from shared storage, which
// anything may have written: it never panics, refuses what encodeEntry
// cannot have made, and round-trips what encodeEntry makes.
func FuzzDecodeEntry(f *testing.F) {
	f.Add([]byte(nil), []byte("v"), int64(0))
	f.Add([]byte("oas1"), []byte{}, int64(1))
	f.Add([]byte("oas1\x00\x00\x00\x00\x00\x00\x00\x00"), []byte{0, 0xff}, testEpoch.UnixNano())
	f.Add([]byte("oas2\x00\x00\x00\x00\x00\x00\x00\x00v"), []byte("value"), int64(-1))
	f.Add(encodeEntry([]byte("x"), testEpoch), []byte("x"), int64(1<<63-1))
	f.Fuzz(func(t *testing.T, b, value []byte, n int64) {
		if v, exp, err := decodeEntry(b); err == nil {
			if len(b) < len(storeEntryMagic)+8 || !bytes.HasPrefix(b, []byte(storeEntryMagic)) || !bytes.Equal(v, b[len(storeEntryMagic)+8:]) {
				t.Errorf("decodeEntry(%q) accepted bytes encodeEntry cannot have made", b)
			}
			if !bytes.Equal(encodeEntry(v, exp), b) {
				t.Errorf("decodeEntry(%q) = %q, %v does not encode back", b, v, exp)
			}
		} else if !errors.Is(err, errCorruptEntry) {
			t.Errorf("decodeEntry error %v is not errCorruptEntry", err)
		}

		var exp time.Time
		if n != 0 {
			exp = time.Unix(0, n)
		}
		v, gotExp, err := decodeEntry(encodeEntry(value, exp))
		if err != nil || !bytes.Equal(v, value) || !gotExp.Equal(exp) || gotExp.IsZero() != exp.IsZero() {
			t.Errorf("round trip of %q, %v = %q, %v, %v", value, exp, v, gotExp, err)
		}
	})
}
