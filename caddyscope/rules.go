package caddyscope

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// AnyMethod in a rule's methods matches every method that has no rule of
// its own.
const AnyMethod = "*"

// Rule requires scopes for some HTTP methods.
type Rule struct {
	// Methods the rule applies to, upper case (GET, POST, …), or "*" for
	// every method without a rule of its own.
	Methods []string `json:"methods"`
	// Scopes are all required. None means any valid token will do.
	Scopes []string `json:"scopes,omitempty"`
}

// ruleSet resolves a request method to its rule.
type ruleSet struct {
	byMethod map[string]*compiledRule
	fallback *compiledRule // the "*" rule
	allow    string        // Allow header for a 405
}

type compiledRule struct {
	scopes []string
	scope  string // space-delimited, for the WWW-Authenticate scope attribute
}

func compileRules(rules []Rule) (*ruleSet, error) {
	rs := &ruleSet{byMethod: make(map[string]*compiledRule)}
	var allow []string
	for i, r := range rules {
		if len(r.Methods) == 0 {
			return nil, fmt.Errorf("rules[%d]: methods: at least one method (or *) is required", i)
		}
		for _, s := range r.Scopes {
			if !oauthjwt.ValidScopeToken(s) {
				return nil, fmt.Errorf("rules[%d]: scopes: %q is not a valid scope token (RFC 6749 §3.3)", i, s)
			}
		}
		cr := &compiledRule{scopes: slices.Clone(r.Scopes), scope: oauthjwt.JoinScope(r.Scopes)}
		for _, m := range r.Methods {
			if m == AnyMethod {
				if rs.fallback != nil {
					return nil, fmt.Errorf("rules[%d]: methods: * has two rules", i)
				}
				rs.fallback = cr
				continue
			}
			if !validMethod(m) {
				return nil, fmt.Errorf("rules[%d]: methods: %q is not an upper-case HTTP method", i, m)
			}
			if _, dup := rs.byMethod[m]; dup {
				return nil, fmt.Errorf("rules[%d]: methods: %s has two rules", i, m)
			}
			rs.byMethod[m] = cr
			allow = append(allow, m)
		}
	}
	if _, ok := rs.byMethod[http.MethodGet]; ok {
		if _, ok := rs.byMethod[http.MethodHead]; !ok {
			allow = append(allow, http.MethodHead)
		}
	}
	rs.allow = strings.Join(allow, ", ")
	return rs, nil
}

// lookup returns the rule for method. HEAD without a rule of its own uses
// GET's (RFC 9110 §9.3.2: HEAD is GET without the content). A method with
// no rule and no "*" rule has none: it is refused.
func (rs *ruleSet) lookup(method string) *compiledRule {
	if r, ok := rs.byMethod[method]; ok {
		return r
	}
	if method == http.MethodHead {
		if r, ok := rs.byMethod[http.MethodGet]; ok {
			return r
		}
	}
	return rs.fallback
}

// validMethod accepts an RFC 9110 method token in upper case.
func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
