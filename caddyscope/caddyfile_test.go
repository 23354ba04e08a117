package caddyscope

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  Scope
	}{
		{
			"bare directive: no rules",
			`oauth_scope`,
			Scope{},
		},
		{
			"one-line scopes become a * rule",
			`oauth_scope read write`,
			Scope{Rules: []Rule{{Methods: []string{"*"}, Scopes: []string{"read", "write"}}}},
		},
		{
			"method lines with several methods and scopes",
			`oauth_scope {
				GET HEAD              user:read
				POST PUT PATCH DELETE user:write audit
			}`,
			Scope{Rules: []Rule{
				{Methods: []string{"GET", "HEAD"}, Scopes: []string{"user:read"}},
				{Methods: []string{"POST", "PUT", "PATCH", "DELETE"}, Scopes: []string{"user:write", "audit"}},
			}},
		},
		{
			"* line and a method without scopes",
			`oauth_scope {
				GET
				* admin
			}`,
			Scope{Rules: []Rule{
				{Methods: []string{"GET"}},
				{Methods: []string{"*"}, Scopes: []string{"admin"}},
			}},
		},
		{
			"every option",
			`oauth_scope {
				OPTIONS CONNECT TRACE diag
				audience https://api.example https://api2.example
				audience https://api3.example
				realm "api gateway"
				allow_preflight
				pass_credentials
				forward_header X-Client-Id {oauth.client_id}
				forward_header X-Tier {oauth.client.metadata.tier}
			}`,
			Scope{
				Rules:           []Rule{{Methods: []string{"OPTIONS", "CONNECT", "TRACE"}, Scopes: []string{"diag"}}},
				Audience:        []string{"https://api.example", "https://api2.example", "https://api3.example"},
				Realm:           "api gateway",
				AllowPreflight:  true,
				PassCredentials: true,
				ForwardHeaders:  map[string]string{"X-Client-Id": "{oauth.client_id}", "X-Tier": "{oauth.client.metadata.tier}"},
			},
		},
		{
			"issuers: local, discovery, and every option",
			`oauth_scope {
				GET read
				issuer local
				issuer https://idp.example
				issuer https://partner.example/tenant {
					audience https://api.example https://api2.example
					jwks_url https://partner.example/keys
					introspection_url https://partner.example/introspect
					client_id gateway
					client_secret {env.PARTNER_SECRET}
					tls_trusted_ca_certs /etc/ca1.pem /etc/ca2.pem
					algorithms RS256 ES256
					timeout 2s
					jwks_refresh_interval 30m
					jwks_refetch_floor 10s
					introspection_cache_ttl 45s
					introspection_cache_size 500
					introspection_negative_ttl 5s
				}
			}`,
			Scope{
				Rules: []Rule{{Methods: []string{"GET"}, Scopes: []string{"read"}}},
				Issuers: []Issuer{
					{Issuer: "local"},
					{Issuer: "https://idp.example"},
					{
						Issuer:                   "https://partner.example/tenant",
						Audience:                 []string{"https://api.example", "https://api2.example"},
						JWKSURL:                  "https://partner.example/keys",
						IntrospectionURL:         "https://partner.example/introspect",
						ClientID:                 "gateway",
						ClientSecret:             "{env.PARTNER_SECRET}",
						TLSTrustedCACerts:        []string{"/etc/ca1.pem", "/etc/ca2.pem"},
						Algorithms:               []string{"RS256", "ES256"},
						Timeout:                  caddy.Duration(2 * time.Second),
						JWKSRefreshInterval:      caddy.Duration(30 * time.Minute),
						JWKSRefetchFloor:         caddy.Duration(10 * time.Second),
						IntrospectionCacheTTL:    caddy.Duration(45 * time.Second),
						IntrospectionCacheSize:   500,
						IntrospectionNegativeTTL: caddy.Duration(5 * time.Second),
					},
				},
			},
		},
		{
			"one-line scopes and a block",
			`oauth_scope base {
				POST write
			}`,
			Scope{Rules: []Rule{
				{Methods: []string{"*"}, Scopes: []string{"base"}},
				{Methods: []string{"POST"}, Scopes: []string{"write"}},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Scope
			if err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input)); err != nil {
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestUnmarshalCaddyfileRefusals(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantErr string
	}{
		{"lower-case method", "oauth_scope {\n get user:read\n}", `"get"`},
		{"unknown option", "oauth_scope {\n scopes user:read\n}", `"scopes"`},
		{"method after a scope", "oauth_scope {\n GET read POST\n}", "POST after a scope"},
		{"* after a scope", "oauth_scope {\n GET read *\n}", "* after a scope"},
		{"realm twice", "oauth_scope {\n realm a\n realm b\n}", "realm already specified"},
		{"realm without a value", "oauth_scope {\n realm\n}", "argument"},
		{"realm with two values", "oauth_scope {\n realm a b\n}", "argument"},
		{"audience without a value", "oauth_scope {\n audience\n}", "argument"},
		{"allow_preflight with an argument", "oauth_scope {\n allow_preflight yes\n}", "argument"},
		{"pass_credentials with an argument", "oauth_scope {\n pass_credentials yes\n}", "argument"},
		{"forward_header with one argument", "oauth_scope {\n forward_header X-Client-Id\n}", "forward_header"},
		{"forward_header with three arguments", "oauth_scope {\n forward_header X-Client-Id {oauth.client_id} extra\n}", "forward_header"},
		{"forward_header without arguments", "oauth_scope {\n forward_header\n}", "forward_header"},
		{"method on the one-line form", "oauth_scope GET user:read", "one-line form takes scopes only"},
		{"* on the one-line form", "oauth_scope * user:read", "one-line form takes scopes only"},
		{"empty realm", "oauth_scope {\n realm \"\"\n}", "realm must not be empty"},
		{"audience without a value after one with", "oauth_scope {\n audience a\n audience\n}", "argument"},
		{"issuer without a URL", "oauth_scope {\n issuer\n}", "argument"},
		{"issuer with two URLs", "oauth_scope {\n issuer https://a https://b\n}", "argument"},
		{"unknown issuer option", "oauth_scope {\n issuer https://a {\n  jwks https://a/k\n }\n}", `unrecognized issuer option "jwks"`},
		{"issuer option twice", "oauth_scope {\n issuer https://a {\n  jwks_url https://a/k\n  jwks_url https://a/j\n }\n}", "jwks_url already specified"},
		{"issuer option without a value", "oauth_scope {\n issuer https://a {\n  client_id\n }\n}", "argument"},
		{"issuer audience without a value", "oauth_scope {\n issuer https://a {\n  audience\n }\n}", "argument"},
		{"bad duration", "oauth_scope {\n issuer https://a {\n  timeout soon\n }\n}", `timeout: "soon" is not a positive duration`},
		{"negative duration", "oauth_scope {\n issuer https://a {\n  introspection_cache_ttl -1s\n }\n}", "introspection_cache_ttl"},
		{"bad cache size", "oauth_scope {\n issuer https://a {\n  introspection_cache_size many\n }\n}", "introspection_cache_size"},
		{"options on issuer local", "oauth_scope {\n issuer local {\n  audience a\n }\n}", "issuer local takes no options"},
		{"duplicate forward_header", "oauth_scope {\n forward_header X-A {oauth.sub}\n forward_header X-A {oauth.client_id}\n}", "X-A already specified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Scope
			err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if err == nil {
				t.Fatalf("accepted:\n%s\nas %+v", tt.input, s)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
			// Caddyfile errors carry the file and line.
			if !strings.Contains(err.Error(), "Testfile:") {
				t.Errorf("error %q has no position", err)
			}
		})
	}
}

// TestCaddyfileProvisioned takes Caddyfile input through provisioning to
// requests: the one-line form is a * rule, and a rule set that the parser
// accepts but is ambiguous is refused at provisioning.
func TestCaddyfileProvisioned(t *testing.T) {
	f := newFixture(t)
	parse := func(t *testing.T, input string) *Scope {
		t.Helper()
		s := new(Scope)
		if err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("one-line form applies to every method", func(t *testing.T) {
		h := newHandler(t, f, parse(t, `oauth_scope read write`))
		for _, m := range []string{"GET", "DELETE", "PROPFIND"} {
			r, _ := newRequest(m, "/", "Bearer "+f.token(t, claims("read write", nil)))
			if res := serve(t, h, r); res.calls != 1 {
				t.Errorf("%s refused: %d", m, res.rec.Code)
			}
			r, _ = newRequest(m, "/", "Bearer "+f.token(t, claims("read", nil)))
			res := serve(t, h, r)
			checkRefused(t, res, http.StatusForbidden, errInsufficientScope)
			if ch := parseChallenge(t, res.rec.Header().Get("WWW-Authenticate")); !sameScopes(ch["scope"], "read write") {
				t.Errorf("%s: scope attribute %q, want read write", m, ch["scope"])
			}
		}
	})

	t.Run("one-line form plus a * line: two * rules", func(t *testing.T) {
		s := parse(t, "oauth_scope read {\n * write\n}")
		if err := s.provision(f.auth, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "*") {
			t.Fatalf("provision = %v, want a refusal of two * rules", err)
		}
	})

	t.Run("same method on two lines", func(t *testing.T) {
		s := parse(t, "oauth_scope {\n GET a\n GET b\n}")
		if err := s.provision(f.auth, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "GET") {
			t.Fatalf("provision = %v, want a refusal naming GET", err)
		}
	})

	t.Run("forward_header end to end", func(t *testing.T) {
		h := newHandler(t, f, parse(t, "oauth_scope {\n GET r\n forward_header X-Client-Id {oauth.client_id}\n}"))
		r, _ := newRequest(http.MethodGet, "/", "Bearer "+f.token(t, claims("r", nil)))
		r.Header["x_client_id"] = []string{"evil"}
		res := serve(t, h, r)
		if res.calls != 1 {
			t.Fatalf("refused: %d", res.rec.Code)
		}
		if keys := normalizedHeaderKeys(res.nextHeader, "X-Client-Id"); len(keys) != 1 || res.nextHeader.Get("X-Client-Id") != testClientID {
			t.Errorf("headers %q, X-Client-Id = %q", keys, res.nextHeader.Get("X-Client-Id"))
		}
	})
}
