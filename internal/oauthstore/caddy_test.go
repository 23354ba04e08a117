package oauthstore

import (
	"context"
	"errors"
	"testing"

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
