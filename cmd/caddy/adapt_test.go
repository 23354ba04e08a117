package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
)

// adaptDir holds the Caddyfile adapt cases: a Caddyfile, a line of ten
// dashes, then the expected JSON or a substring of the expected error.
const adaptDir = "../../testdata/caddyfile_adapt"

// TestCaddyfileAdaptToJSON runs every case in adaptDir through the Caddyfile
// adapter of this binary (package main imports every module it ships).
func TestCaddyfileAdaptToJSON(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(adaptDir, "*.caddyfiletest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no *.caddyfiletest files in %s", adaptDir)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(strings.TrimSuffix(name, ".caddyfiletest"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			text := strings.ReplaceAll(string(data), "\r\n", "\n")
			input, expected, ok := strings.Cut(text, "\n----------\n")
			if !ok {
				t.Fatalf("%s: no ---------- line between the Caddyfile and the expectation", name)
			}
			caddyfile := strings.TrimSpace(input) + "\n"
			expected = strings.TrimSpace(expected)
			if expected == "" {
				t.Fatalf("%s: empty expectation", name)
			}

			if expected[0] == '{' {
				if !caddytest.CompareAdapt(t, name, caddyfile, "caddyfile", expected) {
					t.Errorf("%s: adapted JSON differs from the expected JSON (diff on stdout)", name)
				}
				// CompareAdapt only logs warnings; these cases are meant
				// to be clean (formatted, no deprecated syntax).
				_, warnings, err := adapt(caddyfile)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for _, w := range warnings {
					t.Errorf("%s: warning: %s:%d: %s: %s", name, w.File, w.Line, w.Directive, w.Message)
				}
				return
			}

			_, _, err = adapt(caddyfile)
			if err == nil {
				t.Fatalf("%s: adapting succeeded; want an error containing %q", name, expected)
			}
			if !strings.Contains(err.Error(), expected) {
				t.Errorf("%s: error\n\t%v\ndoes not contain\n\t%s", name, err, expected)
			}
		})
	}
}

func adapt(caddyfile string) ([]byte, []caddyconfig.Warning, error) {
	a := caddyconfig.GetAdapter("caddyfile")
	if a == nil {
		return nil, nil, fmt.Errorf("no caddyfile adapter registered")
	}
	return a.Adapt([]byte(caddyfile), nil)
}

// gatewayOrder is the order DESIGN.md requires in a plain site block: the
// authorization server first (its token endpoint must stay reachable), the
// bearer check before the rate limiter (zones key on {oauth.client_id}),
// and the proxy last.
var gatewayOrder = []string{"oauth_server", "oauth_resource_metadata", "oauth_scope", "rate_limit", "reverse_proxy"}

var gatewayDirectives = map[string]string{
	"oauth_server":            "oauth_server",
	"oauth_resource_metadata": "oauth_resource_metadata",
	"oauth_scope":             "oauth_scope {\n\tGET user:read\n}",
	"rate_limit":              "rate_limit {\n\tzone per_client {\n\t\tkey {oauth.client_id}\n\t\tevents 100\n\t\twindow 1m\n\t}\n}",
	"reverse_proxy":           "reverse_proxy 127.0.0.1:3001",
}

// TestDirectiveOrder writes the five gateway directives in every order, in
// a plain site block and inside handle_path, and checks that the adapted
// handlers always run in gatewayOrder, without any `order` option.
func TestDirectiveOrder(t *testing.T) {
	perms := permutations(gatewayOrder)
	if len(perms) != 120 {
		t.Fatalf("got %d permutations of 5 directives, want 120", len(perms))
	}
	for _, written := range perms {
		var body strings.Builder
		for _, dir := range written {
			body.WriteString(gatewayDirectives[dir] + "\n")
		}
		wrappers := []struct {
			name string
			site string
		}{
			{"site", indent(body.String())},
			{"handle_path", indent("handle_path /api/* {\n" + indent(body.String()) + "}\n")},
		}
		for _, w := range wrappers {
			caddyfile := "{\n\toauth {\n\t\tissuer https://localhost:8443\n\t}\n}\n\nlocalhost:8443 {\n" + w.site + "}\n"
			out, warnings, err := adapt(caddyfile)
			if err != nil {
				t.Fatalf("%s, written %v: %v\n%s", w.name, written, err, caddyfile)
			}
			for _, warn := range warnings {
				t.Errorf("%s, written %v: warning: line %d: %s", w.name, written, warn.Line, warn.Message)
			}
			var cfg adaptedConfig
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatal(err)
			}
			srv, ok := cfg.Apps.HTTP.Servers["srv0"]
			if !ok {
				t.Fatalf("%s, written %v: no srv0 in %s", w.name, written, out)
			}
			got := filterHandlers(handlerNames(srv.Routes), gatewayOrder)
			if msg := orderProblem(got, gatewayOrder); msg != "" {
				t.Errorf("%s, written %v: %s", w.name, written, msg)
			}
		}
	}
}

// orderProblem describes how got departs from want ("" if it does not):
// a missing handler, a repeated one, or the first pair that is swapped.
func orderProblem(got, want []string) string {
	for _, name := range want {
		switch n := count(got, name); {
		case n == 0:
			return fmt.Sprintf("%s is missing from the adapted handlers %v", name, got)
		case n > 1:
			return fmt.Sprintf("%s appears %d times in %v", name, n, got)
		}
	}
	for i := range want {
		for j := i + 1; j < len(want); j++ {
			if slices.Index(got, want[j]) < slices.Index(got, want[i]) {
				return fmt.Sprintf("%s moved ahead of %s: adapted handler order is %v, want %v", want[j], want[i], got, want)
			}
		}
	}
	return ""
}

func TestOrderProblem(t *testing.T) {
	for _, tc := range []struct {
		got  []string
		want string // substring; "" means no problem
	}{
		{[]string{"oauth_server", "oauth_resource_metadata", "oauth_scope", "rate_limit", "reverse_proxy"}, ""},
		{[]string{"oauth_server", "oauth_resource_metadata", "rate_limit", "oauth_scope", "reverse_proxy"}, "rate_limit moved ahead of oauth_scope"},
		{[]string{"oauth_resource_metadata", "oauth_scope", "oauth_server", "rate_limit", "reverse_proxy"}, "oauth_resource_metadata moved ahead of oauth_server"},
		{[]string{"oauth_server", "oauth_scope", "oauth_resource_metadata", "rate_limit", "reverse_proxy"}, "oauth_scope moved ahead of oauth_resource_metadata"},
		{[]string{"oauth_server", "oauth_resource_metadata", "oauth_scope", "reverse_proxy"}, "rate_limit is missing"},
		{[]string{"oauth_server", "oauth_resource_metadata", "oauth_scope", "rate_limit", "rate_limit", "reverse_proxy"}, "rate_limit appears 2 times"},
	} {
		msg := orderProblem(tc.got, gatewayOrder)
		if (tc.want == "") != (msg == "") || !strings.Contains(msg, tc.want) {
			t.Errorf("orderProblem(%v) = %q, want %q", tc.got, msg, tc.want)
		}
	}
}

// TestCaddyfileExample adapts the repository's Caddyfile.example, which
// docs/walkthrough.md walks through, and checks the facts the walkthrough relies on.
func TestCaddyfileExample(t *testing.T) {
	data, err := os.ReadFile("../../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	out, warnings, err := adapt(string(data))
	if err != nil {
		t.Fatalf("adapting Caddyfile.example: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("Caddyfile.example: warning: %s:%d: %s: %s", w.File, w.Line, w.Directive, w.Message)
	}
	var cfg adaptedConfig
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}

	if cfg.Apps.OAuth == nil {
		t.Fatal("no oauth app in the adapted config")
	}
	if got, want := cfg.Apps.OAuth.Issuer, "https://localhost:8443"; got != want {
		t.Errorf("oauth issuer = %q, want %q", got, want)
	}

	if cfg.Admin == nil || !isLoopbackAddr(t, cfg.Admin.Listen) {
		t.Errorf("admin endpoint %+v is not on loopback", cfg.Admin)
	}
	if len(cfg.Apps.HTTP.Servers) == 0 {
		t.Fatal("no HTTP servers in the adapted config")
	}
	var allRoutes []route
	for name, srv := range cfg.Apps.HTTP.Servers {
		if len(srv.Listen) == 0 {
			t.Errorf("server %s has no listen address (would bind every interface)", name)
		}
		for _, l := range srv.Listen {
			addr, err := caddy.ParseNetworkAddress(l)
			if err != nil {
				t.Errorf("server %s: listen %q: %v", name, l, err)
				continue
			}
			if addr.Host != "127.0.0.1" {
				t.Errorf("server %s listens on %q, want 127.0.0.1 only (default_bind)", name, l)
			}
		}
		allRoutes = append(allRoutes, srv.Routes...)
	}

	for _, h := range []string{"oauth_server", "oauth_resource_metadata"} {
		if !slices.Contains(handlerNames(allRoutes), h) {
			t.Errorf("no %s handler in the adapted config", h)
		}
	}

	for _, api := range []string{"/api/users", "/api/notes"} {
		matched := routesMatchingPath(allRoutes, api)
		if len(matched) != 1 {
			t.Errorf("%d routes match path %s exactly, want 1", len(matched), api)
			continue
		}
		got := filterHandlers(handlerNames(matched), gatewayOrder[2:])
		if msg := orderProblem(got, gatewayOrder[2:]); msg != "" {
			t.Errorf("route for %s: %s", api, msg)
		}
	}
}

func isLoopbackAddr(t *testing.T, listen string) bool {
	t.Helper()
	addr, err := caddy.ParseNetworkAddress(listen)
	if err != nil {
		t.Errorf("admin listen %q: %v", listen, err)
		return false
	}
	return addr.Host == "localhost" || addr.Host == "127.0.0.1" || addr.Host == "::1"
}

// adaptedConfig is the part of Caddy's JSON these tests look at.
type adaptedConfig struct {
	Admin *struct {
		Listen string `json:"listen"`
	} `json:"admin"`
	Apps struct {
		HTTP struct {
			Servers map[string]struct {
				Listen []string `json:"listen"`
				Routes []route  `json:"routes"`
			} `json:"servers"`
		} `json:"http"`
		OAuth *struct {
			Issuer string `json:"issuer"`
		} `json:"oauth"`
	} `json:"apps"`
}

type route struct {
	Match  []map[string]json.RawMessage `json:"match"`
	Handle []handler                    `json:"handle"`
}

type handler struct {
	Handler string  `json:"handler"`
	Routes  []route `json:"routes"` // of a subroute
}

// handlerNames lists the handlers of routes depth first, in the order a
// request that matches every route would meet them; subroutes are entered,
// not listed.
func handlerNames(routes []route) []string {
	var names []string
	for _, r := range routes {
		for _, h := range r.Handle {
			if h.Handler == "subroute" {
				names = append(names, handlerNames(h.Routes)...)
				continue
			}
			names = append(names, h.Handler)
		}
	}
	return names
}

// routesMatchingPath finds, at any depth, the routes with a path matcher
// that lists p.
func routesMatchingPath(routes []route, p string) []route {
	var found []route
	for _, r := range routes {
		for _, set := range r.Match {
			var paths []string
			if raw, ok := set["path"]; ok && json.Unmarshal(raw, &paths) == nil && slices.Contains(paths, p) {
				found = append(found, r)
				break
			}
		}
		for _, h := range r.Handle {
			found = append(found, routesMatchingPath(h.Routes, p)...)
		}
	}
	return found
}

func filterHandlers(names, keep []string) []string {
	var out []string
	for _, n := range names {
		if slices.Contains(keep, n) {
			out = append(out, n)
		}
	}
	return out
}

func count(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

func permutations(s []string) [][]string {
	if len(s) <= 1 {
		return [][]string{slices.Clone(s)}
	}
	var out [][]string
	for i := range s {
		rest := slices.Concat(s[:i:i], s[i+1:])
		for _, p := range permutations(rest) {
			out = append(out, append([]string{s[i]}, p...))
		}
	}
	return out
}

func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = "\t" + l
		}
	}
	return strings.Join(lines, "")
}
