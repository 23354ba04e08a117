package caddyoauth

import (
	"slices"
	"sync"
)

// resourceSet is the resources that oauth_scope routes of this
// configuration guard (RFC 8707 §2).
type resourceSet struct {
	mu sync.Mutex
	m  map[string]struct{}
}

// DeclareResource records a resource that a route of this configuration
// guards. It implements oauthjwt.Authority; oauth_scope calls it while
// the configuration is provisioned, after the app.
func (a *App) DeclareResource(uri string) {
	s := a.declared
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]struct{})
	}
	s.m[uri] = struct{}{}
}

// declaredResource reports whether a route declared uri.
func (a *App) declaredResource(uri string) bool {
	s := a.declared
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[uri]
	return ok
}

// declaredResources returns the resources routes declared, sorted.
func (a *App) declaredResources() []string {
	s := a.declared
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for uri := range s.m {
		if uri != a.Audience {
			out = append(out, uri)
		}
	}
	slices.Sort(out)
	return out
}
