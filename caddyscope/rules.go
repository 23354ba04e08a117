package caddyscope

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// AnyMethod in a rule's methods matches every method that has no rule of
// its own.
const AnyMethod = "*"

// Rule requires scopes, and roles, for some HTTP methods.
type Rule struct {
	// Methods the rule applies to, upper case (GET, POST, …), or "*" for
	// every method without a rule of its own.
	Methods []string `json:"methods"`
	// Scopes are all required. None (and no Roles) means any valid token
	// will do.
	Scopes []string `json:"scopes,omitempty"`
	// Roles are all required too, compared exactly. They come from the
	// roles claim of the token's issuer (Issuer.RolesClaim or its
	// profile's); the local app's and RFC 9068 tokens carry none, so at
	// least one issuer of the route must have a roles claim. A token
	// without one of them is refused with 403 insufficient_scope (RFC
	// 6750 §3.1: the request requires higher privileges).
	Roles []string `json:"roles,omitempty"`
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
	roles  []string
}

// lacksRole reports whether a token's claims miss a role the rule requires.
func (cr *compiledRule) lacksRole(c *oauthjwt.Claims) bool {
	return len(cr.roles) > 0 && !oauthjwt.HasAll(c.Roles(), cr.roles)
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
		for _, role := range r.Roles {
			if !validRole(role) {
				return nil, fmt.Errorf("rules[%d]: roles: %q is not a role name (empty, or with a control character)", i, role)
			}
		}
		cr := &compiledRule{scopes: slices.Clone(r.Scopes), scope: oauthjwt.JoinScope(r.Scopes), roles: slices.Clone(r.Roles)}
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

// validRole accepts a role name: not empty, no control characters. Role
// names are the issuer's (Okta group names have spaces), so little else
// can be asked of them.
func validRole(role string) bool {
	if role == "" {
		return false
	}
	for _, c := range role {
		if unicode.IsControl(c) {
			return false
		}
	}
	return true
}

// checkRoleRules refuses rules that require roles on a route none of
// whose issuers has a roles claim: no token could ever pass them. An
// issuer whose claim options are wrong is left to newTrustSet to report.
func checkRoleRules(rules []Rule, issuers []Issuer) error {
	at := slices.IndexFunc(rules, func(r Rule) bool { return len(r.Roles) > 0 })
	if at < 0 {
		return nil
	}
	for i := range issuers {
		is := &issuers[i]
		if is.Issuer == LocalIssuer {
			continue
		}
		m, err := is.claimMapping()
		if err != nil || (m != nil && m.RolesClaim() != "") {
			return nil
		}
	}
	return fmt.Errorf("rules[%d]: roles: no issuer of this route has a roles claim, so no token could have the role: "+
		"the local oauth app's tokens, RFC 9068 tokens and introspection answers carry none; "+
		"set roles_claim on an issuer (auth0 and jwt need it), or use a profile that has one (keycloak, entra, okta)", at)
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
