package oauthready

import (
	"context"
	"errors"
	"testing"
)

// TestRegistry: checks run sorted by name, a failing one says why, and an
// unregistered one no longer runs.
func TestRegistry(t *testing.T) {
	offB := Register("b", func(context.Context) error { return errors.New("not yet") })
	offA := Register("a", func(context.Context) error { return nil })
	got := Run(context.Background())
	if len(got) != 2 || got[0] != (Result{Name: "a", Ready: true}) || got[1] != (Result{Name: "b", Error: "not yet"}) {
		t.Fatalf("Run = %+v", got)
	}
	offB()
	offA()
	if got := Run(context.Background()); len(got) != 0 {
		t.Fatalf("after unregistering: %+v", got)
	}
}
