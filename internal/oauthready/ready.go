// Package oauthready keeps the readiness checks of running parts that the
// admin API's readiness endpoint cannot reach otherwise: the issuers that
// oauth_scope routes trust live in caddyscope, the endpoint in caddyoauth,
// and neither module imports the other.
package oauthready

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// Check reports nil when its part is ready, else why not.
type Check func(ctx context.Context) error

type entry struct {
	name  string
	check Check
}

var registry struct {
	sync.Mutex
	entries []*entry
}

// Register adds a named check until the returned function removes it.
func Register(name string, check Check) (unregister func()) {
	e := &entry{name: name, check: check}
	registry.Lock()
	registry.entries = append(registry.entries, e)
	registry.Unlock()
	return func() {
		registry.Lock()
		defer registry.Unlock()
		registry.entries = slices.DeleteFunc(registry.entries, func(x *entry) bool { return x == e })
	}
}

// Result is one check's outcome.
type Result struct {
	Name  string `json:"name"`
	Ready bool   `json:"ready"`
	Error string `json:"error,omitempty"`
}

// Run runs every registered check, sorted by name; two with one name (a
// reload in progress) both run.
func Run(ctx context.Context) []Result {
	registry.Lock()
	entries := slices.Clone(registry.entries)
	registry.Unlock()
	slices.SortStableFunc(entries, func(a, b *entry) int { return strings.Compare(a.name, b.name) })
	out := make([]Result, 0, len(entries))
	for _, e := range entries {
		r := Result{Name: e.name, Ready: true}
		if err := e.check(ctx); err != nil {
			r.Ready, r.Error = false, err.Error()
		}
		out = append(out, r)
	}
	return out
}
