package caddyscope

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestCompileRulesRefusals: a rule set that is ambiguous or malformed is
// refused at provisioning, with a message naming the rule.
func TestCompileRulesRefusals(t *testing.T) {
	tests := []struct {
		name    string
		rules   []Rule
		wantErr string
	}{
		{"empty methods", []Rule{{Scopes: []string{"a"}}}, "rules[0]: methods"},
		{"duplicate method across rules", []Rule{{Methods: []string{"GET"}, Scopes: []string{"a"}}, {Methods: []string{"POST", "GET"}, Scopes: []string{"b"}}}, "rules[1]: methods: GET"},
		{"duplicate method in one rule", []Rule{{Methods: []string{"PUT", "PUT"}}}, "rules[0]: methods: PUT"},
		{"two * rules", []Rule{{Methods: []string{"*"}, Scopes: []string{"a"}}, {Methods: []string{"*"}, Scopes: []string{"b"}}}, "rules[1]: methods: *"},
		{"lower-case method (RFC 9110 §9.1: case-sensitive)", []Rule{{Methods: []string{"get"}}}, `"get"`},
		{"mixed-case method", []Rule{{Methods: []string{"Post"}}}, `"Post"`},
		{"method with a space", []Rule{{Methods: []string{"GE T"}}}, `"GE T"`},
		{"empty method", []Rule{{Methods: []string{""}}}, `""`},
		{"empty scope (RFC 6749 §3.3: 1*NQCHAR)", []Rule{{Methods: []string{"GET"}, Scopes: []string{""}}}, "scopes"},
		{"scope with a space (RFC 6749 §3.3)", []Rule{{Methods: []string{"GET"}, Scopes: []string{"a b"}}}, `"a b"`},
		{"scope with a quote (RFC 6749 §3.3)", []Rule{{Methods: []string{"GET"}, Scopes: []string{`a"b`}}}, "scopes"},
		{"scope with a backslash (RFC 6749 §3.3)", []Rule{{Methods: []string{"GET"}, Scopes: []string{`a\b`}}}, "scopes"},
		{"scope with non-ASCII (RFC 6749 §3.3)", []Rule{{Methods: []string{"GET"}, Scopes: []string{"lecture"}}, {Methods: []string{"POST"}, Scopes: []string{"écriture"}}}, "rules[1]: scopes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := compileRules(tt.rules)
			if err == nil {
				t.Fatalf("compileRules accepted %+v", tt.rules)
			}
			if rs != nil {
				t.Errorf("compileRules returned a rule set with its error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

// TestRuleLookup checks which rule a method gets.
func TestRuleLookup(t *testing.T) {
	tests := []struct {
		name   string
		rules  []Rule
		method string
		want   string // the rule's scope; "-" for no rule
	}{
		{"own rule", []Rule{{Methods: []string{"GET"}, Scopes: []string{"r"}}, {Methods: []string{"POST"}, Scopes: []string{"w"}}}, "POST", "w"},
		{"several scopes, all kept", []Rule{{Methods: []string{"POST"}, Scopes: []string{"w", "admin"}}}, "POST", "w admin"},
		{"HEAD uses GET's rule (RFC 9110 §9.3.2)", []Rule{{Methods: []string{"GET"}, Scopes: []string{"r"}}}, "HEAD", "r"},
		{"HEAD's own rule wins over GET's", []Rule{{Methods: []string{"GET"}, Scopes: []string{"r"}}, {Methods: []string{"HEAD"}, Scopes: []string{"h"}}}, "HEAD", "h"},
		{"HEAD takes GET's rule before *", []Rule{{Methods: []string{"GET"}, Scopes: []string{"r"}}, {Methods: []string{"*"}, Scopes: []string{"any"}}}, "HEAD", "r"},
		{"HEAD without GET falls to *", []Rule{{Methods: []string{"POST"}, Scopes: []string{"w"}}, {Methods: []string{"*"}, Scopes: []string{"any"}}}, "HEAD", "any"},
		{"* covers methods without a rule", []Rule{{Methods: []string{"GET"}, Scopes: []string{"r"}}, {Methods: []string{"*"}, Scopes: []string{"any"}}}, "DELETE", "any"},
		{"* does not override an own rule", []Rule{{Methods: []string{"*"}, Scopes: []string{"any"}}, {Methods: []string{"GET"}, Scopes: []string{"r"}}}, "GET", "r"},
		{"* covers extension methods", []Rule{{Methods: []string{"*"}, Scopes: []string{"any"}}}, "PROPFIND", "any"},
		{"no rule, no *: none", []Rule{{Methods: []string{"GET"}, Scopes: []string{"r"}}}, "DELETE", "-"},
		{"HEAD without GET or *: none", []Rule{{Methods: []string{"POST"}, Scopes: []string{"w"}}}, "HEAD", "-"},
		{"GET does not borrow HEAD's rule", []Rule{{Methods: []string{"HEAD"}, Scopes: []string{"h"}}}, "GET", "-"},
		{"method names are case-sensitive (RFC 9110 §9.1)", []Rule{{Methods: []string{"GET"}, Scopes: []string{"r"}}}, "get", "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := compileRules(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			r := rs.lookup(tt.method)
			got := "-"
			if r != nil {
				got = r.scope
				if r.scope != strings.Join(r.scopes, " ") {
					t.Errorf("rule scope %q does not match its scopes %q", r.scope, r.scopes)
				}
			}
			if got != tt.want {
				t.Fatalf("lookup(%s) = %q, want %q", tt.method, got, tt.want)
			}
		})
	}
}

// TestCompileRulesDoesNotAlias: the compiled rule keeps its own copy of the
// scopes, so a later change to the config slice cannot widen access.
func TestCompileRulesDoesNotAlias(t *testing.T) {
	scopes := []string{"admin"}
	rs, err := compileRules([]Rule{{Methods: []string{"GET"}, Scopes: scopes}})
	if err != nil {
		t.Fatal(err)
	}
	scopes[0] = "public"
	if got := rs.lookup("GET").scopes; !slices.Equal(got, []string{"admin"}) {
		t.Fatalf("scopes = %q after the config slice changed", got)
	}
}

// TestServeRules runs the handler per method: required scopes, fallback,
// HEAD, and default deny (405) even with a valid token.
func TestServeRules(t *testing.T) {
	f := newFixture(t)
	readWrite := []Rule{
		{Methods: []string{"GET"}, Scopes: []string{"user:read"}},
		{Methods: []string{"POST", "PUT"}, Scopes: []string{"user:write", "audit"}},
	}
	tests := []struct {
		name   string
		rules  []Rule
		method string
		scope  string // granted
		status int    // 200: next ran
		want   string // scope attribute of a 403
	}{
		{"GET with its scope", readWrite, "GET", "user:read", 200, ""},
		{"GET without its scope (RFC 6750 §3.1 insufficient_scope)", readWrite, "GET", "user:write audit", 403, "user:read"},
		{"POST needs every scope of its rule", readWrite, "POST", "user:write audit", 200, ""},
		{"POST with one of two scopes", readWrite, "POST", "user:write", 403, "user:write audit"},
		{"PUT shares POST's rule", readWrite, "PUT", "audit user:write extra", 200, ""},
		{"scopes are case-sensitive (RFC 6749 §3.3)", readWrite, "GET", "USER:READ", 403, "user:read"},
		{"scope prefix is not the scope", readWrite, "GET", "user:rea", 403, "user:read"},
		{"HEAD uses GET's rule (RFC 9110 §9.3.2)", readWrite, "HEAD", "user:read", 200, ""},
		{"HEAD uses GET's rule: refused without it", readWrite, "HEAD", "user:write audit", 403, "user:read"},
		{"HEAD's own rule wins", append([]Rule{{Methods: []string{"HEAD"}, Scopes: []string{"meta"}}}, readWrite...), "HEAD", "user:read", 403, "meta"},
		{"HEAD's own rule satisfied", append([]Rule{{Methods: []string{"HEAD"}, Scopes: []string{"meta"}}}, readWrite...), "HEAD", "meta", 200, ""},
		{"* fallback", append([]Rule{{Methods: []string{"*"}, Scopes: []string{"admin"}}}, readWrite...), "DELETE", "admin", 200, ""},
		{"* fallback refused", append([]Rule{{Methods: []string{"*"}, Scopes: []string{"admin"}}}, readWrite...), "DELETE", "user:read", 403, "admin"},
		{"* rule without scopes: any valid token", []Rule{{Methods: []string{"*"}}}, "PATCH", "", 200, ""},
		{"method rule without scopes: any valid token", []Rule{{Methods: []string{"GET"}}}, "GET", "", 200, ""},
		{"default deny: no rule, valid token, every scope", readWrite, "DELETE", "user:read user:write audit", 405, ""},
		{"default deny: extension method", readWrite, "PROPFIND", "user:read user:write audit", 405, ""},
		{"default deny: OPTIONS without a rule", readWrite, "OPTIONS", "user:read user:write audit", 405, ""},
		{"bare config (no rules): any valid token", nil, "DELETE", "", 200, ""},
		{"bare config (no rules): any method", nil, "PROPFIND", "whatever", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(t, f, &Scope{Rules: tt.rules})
			r, _ := newRequest(tt.method, "/api/users", "Bearer "+f.token(t, claims(tt.scope, nil)))
			res := serve(t, h, r)
			switch tt.status {
			case 200:
				if res.calls != 1 || res.rec.Code != 200 || res.err != nil {
					t.Fatalf("next ran %d times, status %d, err %v (body %s)", res.calls, res.rec.Code, res.err, res.rec.Body)
				}
			case 403:
				checkRefused(t, res, 403, errInsufficientScope)
				ch := parseChallenge(t, res.rec.Header().Get("WWW-Authenticate"))
				if ch["error"] != errInsufficientScope || !sameScopes(ch["scope"], tt.want) {
					t.Fatalf("challenge %v, want insufficient_scope with scope %q", ch, tt.want)
				}
			case 405:
				checkRefused(t, res, 405, "")
				if _, ok := res.rec.Header()["Allow"]; !ok {
					t.Fatal("405 without an Allow header (RFC 9110 §15.5.6)")
				}
			}
		})
	}
}

// TestMethodNotAllowed: a method with no rule and no * is refused with 405
// and an Allow header naming the methods that have a rule (RFC 9110
// §15.5.6, §10.2.1), before and regardless of any token.
func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name  string
		rules []Rule
		allow []string
	}{
		{"GET implies HEAD (RFC 9110 §9.3.2)", []Rule{{Methods: []string{"GET"}, Scopes: []string{"r"}}, {Methods: []string{"POST", "PUT"}, Scopes: []string{"w"}}}, []string{"GET", "HEAD", "POST", "PUT"}},
		{"HEAD listed once when it has a rule", []Rule{{Methods: []string{"HEAD", "GET"}, Scopes: []string{"r"}}}, []string{"GET", "HEAD"}},
		{"no GET, no HEAD", []Rule{{Methods: []string{"PATCH"}}}, []string{"PATCH"}},
	}
	tokens := map[string][]string{
		"no token":           nil,
		"valid token":        {"Bearer " + f.token(t, claims("r w", nil))},
		"invalid token":      {"Bearer garbage"},
		"two headers":        {"Bearer a", "Bearer b"},
		"Basic credentials":  {"Basic dXNlcjpwYXNz"},
		"valid, every scope": {"Bearer " + f.token(t, claims("r w admin", nil))},
	}
	for _, tt := range tests {
		for tname, authz := range tokens {
			t.Run(tt.name+"/"+tname, func(t *testing.T) {
				h := newHandler(t, f, &Scope{Rules: tt.rules})
				r, repl := newRequest(http.MethodDelete, "/api/users/1", authz...)
				res := serve(t, h, r)
				checkRefused(t, res, http.StatusMethodNotAllowed, "")
				var got []string
				for _, m := range strings.Split(res.rec.Header().Get("Allow"), ",") {
					got = append(got, strings.TrimSpace(m))
				}
				slices.Sort(got)
				if !slices.Equal(got, tt.allow) {
					t.Errorf("Allow = %q, want %q", res.rec.Header().Get("Allow"), tt.allow)
				}
				if slices.Contains(got, http.MethodDelete) {
					t.Error("Allow lists the refused method")
				}
				if _, ok := repl.GetString("oauth.client_id"); ok {
					t.Error("identity placeholders set on a 405")
				}
			})
		}
	}
}
