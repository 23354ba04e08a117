package caddyoauth

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"go.uber.org/zap"
)

// jsonEqual compares two JSON texts as values.
func jsonEqual(t testing.TB, got, want []byte) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want is not JSON: %v: %s", err, want)
	}
	return reflect.DeepEqual(g, w)
}

// TestParseOAuthOption: the `oauth` global option becomes the apps.oauth
// JSON documented by the App struct tags (durations in nanoseconds, as
// caddy.Duration is written).
func TestParseOAuthOption(t *testing.T) {
	hash := sha256Hex(svcSecret)
	input := `oauth {
		issuer           https://localhost:8443
		signing_key      RS256 /etc/caddy/as.pem
		access_token_ttl 30m
		audience         https://api.example
		leeway           1m
		client reports-service {
			name             "Reports service"
			secret_hash      ` + hash + `
			grant_types      client_credentials
			scopes           user:read user:write
			scopes           user:admin
			resources        https://api.example/reports urn:example:reports
			access_token_ttl 5m
			metadata         tier gold
			metadata         region "eu west"
		}
		client second {
			secret {env.SECOND_SECRET}
			scopes a
		}
	}`
	want := `{
		"issuer": "https://localhost:8443",
		"signing_key": {"algorithm": "RS256", "file": "/etc/caddy/as.pem"},
		"access_token_ttl": 1800000000000,
		"audience": "https://api.example",
		"leeway": 60000000000,
		"clients": [
			{
				"client_id": "reports-service",
				"name": "Reports service",
				"secret_hash": "` + hash + `",
				"grant_types": ["client_credentials"],
				"scopes": ["user:read", "user:write", "user:admin"],
				"resources": ["https://api.example/reports", "urn:example:reports"],
				"access_token_ttl": 300000000000,
				"metadata": {"tier": "gold", "region": "eu west"}
			},
			{"client_id": "second", "secret": "{env.SECOND_SECRET}", "scopes": ["a"]}
		],
		"config_source": "caddyfile"
	}`
	v, err := parseOAuthOption(caddyfile.NewTestDispenser(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	app, ok := v.(httpcaddyfile.App)
	if !ok {
		t.Fatalf("parseOAuthOption returned %T, want httpcaddyfile.App", v)
	}
	if app.Name != "oauth" {
		t.Errorf("app name = %q, want oauth (the module ID)", app.Name)
	}
	if !jsonEqual(t, app.Value, []byte(want)) {
		t.Errorf("JSON = %s\nwant %s", app.Value, want)
	}
}

// TestParseOAuthOptionProvisions: the JSON of a minimal option block
// provisions and serves tokens (Caddyfile → JSON → running app).
func TestParseOAuthOptionProvisions(t *testing.T) {
	input := `oauth {
		issuer https://as.example
		client ` + svcID + ` {
			secret_hash ` + sha256Hex(svcSecret) + `
			scopes user:read
		}
	}`
	v, err := parseOAuthOption(caddyfile.NewTestDispenser(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	var app App
	if err := json.Unmarshal(v.(httpcaddyfile.App).Value, &app); err != nil {
		t.Fatal(err)
	}
	if err := app.provision(context.Background(), newStorage(t), zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	body := decodeTokenResponse(t, basicToken(t, newServer(t, &app, ""), svcID, svcSecret, ccForm()))
	if body.Scope != "user:read" {
		t.Errorf("scope = %q", body.Scope)
	}
}

// TestParseOAuthOptionRefusals: Caddyfile mistakes are reported at parse
// time, naming the option.
func TestParseOAuthOptionRefusals(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"unknown option", "oauth {\n issuer https://a.example\n issuerr https://b.example\n}", "issuerr"},
		{"repeated issuer", "oauth {\n issuer https://a.example\n issuer https://b.example\n}", "issuer already specified"},
		{"issuer without value", "oauth {\n issuer\n}", "argument"},
		{"issuer with two values", "oauth {\n issuer https://a.example https://b.example\n}", "argument"},
		{"argument on the option line", "oauth https://a.example {\n}", "argument"},
		{"repeated audience", "oauth {\n audience a\n audience b\n}", "audience already specified"},
		{"repeated signing_key", "oauth {\n signing_key ES256\n signing_key RS256\n}", "signing_key already specified"},
		{"signing_key without algorithm", "oauth {\n signing_key\n}", "argument"},
		{"signing_key with three arguments", "oauth {\n signing_key ES256 a.pem b.pem\n}", "argument"},
		{"bad duration", "oauth {\n access_token_ttl soon\n}", "access_token_ttl"},
		{"repeated access_token_ttl", "oauth {\n access_token_ttl 1h\n access_token_ttl 2h\n}", "access_token_ttl already specified"},
		{"repeated leeway", "oauth {\n leeway 1s\n leeway 2s\n}", "leeway already specified"},
		{"client without id", "oauth {\n client {\n scopes a\n }\n}", "argument"},
		{"client with two ids", "oauth {\n client a b {\n scopes a\n }\n}", "argument"},
		{"unknown client option", "oauth {\n client a {\n scope a\n }\n}", "unrecognized client option scope"},
		{"repeated client name", "oauth {\n client a {\n name x\n name y\n }\n}", "name already specified"},
		{"repeated secret_hash", "oauth {\n client a {\n secret_hash " + sha256Hex("x") + "\n secret_hash " + sha256Hex("y") + "\n }\n}", "secret_hash already specified"},
		{"public with an argument", "oauth {\n client a {\n public yes\n }\n}", "argument"},
		{"grant_types without value", "oauth {\n client a {\n grant_types\n }\n}", "argument"},
		{"scopes without value", "oauth {\n client a {\n scopes\n }\n}", "argument"},
		{"metadata with one argument", "oauth {\n client a {\n metadata tier\n }\n}", "metadata takes a key and a value"},
		{"metadata with three arguments", "oauth {\n client a {\n metadata tier gold extra\n }\n}", "metadata takes a key and a value"},
		{"repeated metadata key", "oauth {\n client a {\n metadata tier gold\n metadata tier silver\n }\n}", "metadata tier already specified"},
		{"bad client duration", "oauth {\n client a {\n access_token_ttl 5 minutes\n }\n}", "argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseOAuthOption(caddyfile.NewTestDispenser(tt.input), nil)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}

	t.Run("option given twice", func(t *testing.T) {
		first, err := parseOAuthOption(caddyfile.NewTestDispenser("oauth {\n issuer https://a.example\n}"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseOAuthOption(caddyfile.NewTestDispenser("oauth {\n issuer https://b.example\n}"), first); err == nil || !strings.Contains(err.Error(), "already specified") {
			t.Fatalf("second oauth option: %v", err)
		}
	})
}

// adaptCaddyfile runs the Caddyfile adapter (with this package's option
// and directive registered) and returns the JSON config.
func adaptCaddyfile(t testing.TB, input string) ([]byte, error) {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("caddyfile adapter not registered")
	}
	out, _, err := adapter.Adapt([]byte(input), nil)
	return out, err
}

// findHandlers returns every JSON object with "handler": name in v.
func findHandlers(v any, name string) []map[string]any {
	var out []map[string]any
	switch x := v.(type) {
	case map[string]any:
		if x["handler"] == name {
			out = append(out, x)
		}
		for _, e := range x {
			out = append(out, findHandlers(e, name)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, findHandlers(e, name)...)
		}
	}
	return out
}

// TestServerDirective: `oauth_server` with and without `prefix` adapts to
// the http.handlers.oauth_server handler; the global option to apps.oauth.
func TestServerDirective(t *testing.T) {
	tests := []struct {
		name, site string
		want       string // the handler's JSON
	}{
		{"bare", "oauth_server", `{"handler": "oauth_server"}`},
		{"prefix", "oauth_server {\n\t\tprefix /auth\n\t}", `{"handler": "oauth_server", "prefix": "/auth"}`},
		{"named matcher", "@api host localhost\n\toauth_server @api {\n\t\tprefix /auth\n\t}", `{"handler": "oauth_server", "prefix": "/auth"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := adaptCaddyfile(t, "{\n\toauth {\n\t\tissuer https://localhost\n\t}\n}\n\nlocalhost {\n\t"+tt.site+"\n}\n")
			if err != nil {
				t.Fatal(err)
			}
			var cfg map[string]any
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatal(err)
			}
			hs := findHandlers(cfg, "oauth_server")
			if len(hs) != 1 {
				t.Fatalf("%d oauth_server handlers in %s", len(hs), out)
			}
			got, _ := json.Marshal(hs[0])
			if !jsonEqual(t, got, []byte(tt.want)) {
				t.Errorf("handler = %s, want %s", got, tt.want)
			}
			apps, _ := cfg["apps"].(map[string]any)
			oauth, _ := apps["oauth"].(map[string]any)
			if oauth["issuer"] != "https://localhost" {
				t.Errorf("apps.oauth = %v", apps["oauth"])
			}
		})
	}
}

// TestServerDirectiveRefusals: a path argument (which Caddyfile syntax
// would make an exact-path matcher, so the token endpoint would never
// match), unknown options and a relative prefix are refused.
func TestServerDirectiveRefusals(t *testing.T) {
	tests := []struct {
		name, site, want string
	}{
		{"path argument", "oauth_server /oauth2", "prefix"},
		{"path wildcard argument", "oauth_server /oauth2/*", "prefix"},
		{"unknown option", "oauth_server {\n\t\tprefx /auth\n\t}", "prefx"},
		{"relative prefix", "oauth_server {\n\t\tprefix auth\n\t}", "prefix"},
		{"repeated prefix", "oauth_server {\n\t\tprefix /a\n\t\tprefix /b\n\t}", "prefix already specified"},
		{"two prefix values", "oauth_server {\n\t\tprefix /a /b\n\t}", "argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := adaptCaddyfile(t, "{\n\toauth {\n\t\tissuer https://localhost\n\t}\n}\n\nlocalhost {\n\t"+tt.site+"\n}\n")
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}

	// The handler's own unmarshaler refuses an argument too, for callers
	// that hand it the raw tokens.
	var s Server
	if err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oauth_server /oauth2")); err == nil || !strings.Contains(err.Error(), "prefix") {
		t.Fatalf("UnmarshalCaddyfile with an argument: %v", err)
	}
	s = Server{}
	if err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oauth_server {\n prefix /auth\n}")); err != nil || s.Prefix != "/auth" {
		t.Fatalf("UnmarshalCaddyfile: %v, prefix %q", err, s.Prefix)
	}
}

// TestStoreOption: `store caddy` and `store redis <url> { key_prefix }`
// become oauth.stores.* modules; mistakes are refused with the line.
func TestStoreOption(t *testing.T) {
	parse := func(body string) (*App, error) {
		d := caddyfile.NewTestDispenser("oauth {\n issuer https://a.example\n " + body + "\n}")
		a := new(App)
		return a, a.UnmarshalCaddyfile(d)
	}
	a, err := parse("store redis redis://127.0.0.1:6379/3 {\n key_prefix gw:\n }")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(a.StoreRaw, &m); err != nil {
		t.Fatal(err)
	}
	if m["module"] != "redis" || m["url"] != "redis://127.0.0.1:6379/3" || m["key_prefix"] != "gw:" {
		t.Errorf("store JSON %s", a.StoreRaw)
	}
	a, err = parse("store caddy")
	if err != nil || string(a.StoreRaw) != `{"module":"caddy"}` {
		t.Errorf("store caddy: %s, %v", a.StoreRaw, err)
	}
	for body, want := range map[string]string{
		"store":                                    "argument",
		"store memcached":                          `unknown store "memcached"`,
		"store redis":                              "needs a URL",
		"store caddy extra":                        "argument",
		"store redis redis://h {\n bogus x\n }":    "unrecognized store redis option bogus",
		"store caddy\n store redis redis://h":      "store already specified",
		"store redis redis://h {\n key_prefix\n }": "argument",
	} {
		_, err := parse(body)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Testfile:") {
			t.Errorf("%q: err = %v, want %q with a position", body, err, want)
		}
	}
}

// TestRedisStoreModuleRefusals: a bad or unreachable Redis URL stops the
// load with the field or address named and the password left out.
func TestRedisStoreModuleRefusals(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	for url, want := range map[string]string{
		"":                                     "url: required",
		"http://127.0.0.1:6379":                "url: not a redis",
		"redis://:pw-secret-1@127.0.0.1:1/0":   "redis at 127.0.0.1:1 does not answer",
		"redis://:pw-secret-1@127.0.0.1:1/99x": "url: not a redis",
	} {
		m := &RedisStoreModule{URL: url}
		err := m.Provision(ctx)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", url, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "pw-secret-1") {
			t.Errorf("%q: password in the error: %v", url, err)
		}
	}
}

// parseCaddyfile parses input, the `oauth` option, as a file named
// Caddyfile, so errors end in ", at Caddyfile:<line>" as at adapt.
func parseCaddyfile(t testing.TB, input string) error {
	t.Helper()
	tokens, err := caddyfile.Tokenize([]byte(input), "Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	_, err = parseOAuthOption(caddyfile.NewDispenser(tokens), nil)
	return err
}

// caddyfileLines joins lines into a Caddyfile: the line numbers of the
// errors below are the positions in the list, counting from 1.
func caddyfileLines(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// TestCaddyfileChecks: what provision would refuse and the text alone
// shows is refused while the Caddyfile is parsed, in provision's words,
// at the line of the option at fault (or of the block, for what is
// missing from it).
func TestCaddyfileChecks(t *testing.T) {
	hash := sha256Hex(svcSecret)
	pw := bcryptHash(t, "alice-password")
	const iss = " issuer https://as.example"
	tests := []struct {
		name  string
		input string
		want  string
		line  int
	}{
		// The option.
		{"issuer over http", caddyfileLines("oauth {", " issuer http://as.example", "}"), `issuer: "http://as.example" must use https`, 2},
		{"issuer with a query", caddyfileLines("oauth {", " issuer https://as.example?x=1", "}"), "issuer: ", 2},
		{"no issuer", caddyfileLines("oauth {", " audience https://api.example", "}"), "issuer: required", 1},
		{"access_token_ttl too long", caddyfileLines("oauth {", iss, " access_token_ttl 48h", "}"), "access_token_ttl: 48h0m0s is outside 1m..24h", 3},
		{"access_token_ttl 0s (not silently the default)", caddyfileLines("oauth {", iss, " access_token_ttl 0s", "}"), "access_token_ttl: 0s is outside 1m..24h", 3},
		{"leeway too long", caddyfileLines("oauth {", iss, " leeway 10m", "}"), "leeway: 10m0s is outside 0..5m", 3},
		{"negative leeway", caddyfileLines("oauth {", iss, " leeway -1s", "}"), "leeway: -1s is outside 0..5m", 3},
		{"scope_description of a bad scope", caddyfileLines("oauth {", iss, " scope_description a ok", ` scope_description "b c" "two words"`, "}"), `scope_descriptions: "b c" is not a valid scope token`, 4},
		{"userinfo_scope bad", caddyfileLines("oauth {", iss, ` userinfo_scope "a\b"`, "}"), "userinfo_scope: ", 3},
		{"signing_key algorithm", caddyfileLines("oauth {", iss, " signing_key HS256", "}"), `signing_key: unsupported signing algorithm: "HS256"`, 3},
		{"rotate_every too short", caddyfileLines("oauth {", iss, " signing_key ES256 {", "  rotate_every 1h", " }", "}"), "signing_key: rotate_every: 1h0m0s is shorter than", 4},
		{"rotate_every with a key file", caddyfileLines("oauth {", iss, " signing_key ES256 /etc/as.pem {", "  rotate_every 720h", " }", "}"), "signing_key: rotate_every: the key comes from /etc/as.pem", 4},
		{"refresh_token_ttl above its max", caddyfileLines("oauth {", iss, " refresh_token_ttl 48h", " refresh_token_max_ttl 24h", "}"), "refresh_token_ttl: 48h0m0s is longer than refresh_token_max_ttl 24h0m0s", 3},
		{"session_max_ttl below the default session_ttl", caddyfileLines("oauth {", iss, " session_max_ttl 30m", "}"), "session_ttl: 1h0m0s is longer than session_max_ttl 30m0s", 3},
		{"refresh_token_reuse_grace too long (RFC 9700 §4.14.2: a short window)", caddyfileLines("oauth {", iss, " refresh_token_reuse_grace 2m", "}"), "refresh_token_reuse_grace: 2m0s is outside 0s..1m0s", 3},
		{"refresh_token_reuse_grace negative", caddyfileLines("oauth {", iss, " refresh_token_reuse_grace -1s", "}"), "refresh_token_reuse_grace: -1s is outside 0s..1m0s", 3},
		{"refresh_token_reuse_grace twice", caddyfileLines("oauth {", iss, " refresh_token_reuse_grace 0s", " refresh_token_reuse_grace 0s", "}"), "refresh_token_reuse_grace already specified", 4},
		{"session_ttl out of range", caddyfileLines("oauth {", iss, " session_ttl 30s", "}"), "session_ttl: 30s is outside 1m0s..", 3},
		{"signup min_password_length", caddyfileLines("oauth {", iss, " signup {", "  min_password_length 4", " }", "}"), "signup: min_password_length 4 is outside 8..72", 3},

		// A client.
		{"client without scopes", caddyfileLines("oauth {", iss, " client a {", "  secret_hash "+hash, " }", "}"), `client "a": scopes: at least one scope is required`, 3},
		{"client_id with a slash", caddyfileLines("oauth {", iss, " client a/b {", "  secret_hash "+hash, "  scopes s", " }", "}"), `client "a/b": client_id: must be 1 to 128 of`, 3},
		{"client_id defined twice", caddyfileLines("oauth {", iss, " client a {", "  secret_hash "+hash, "  scopes s", " }", " client a {", "  secret_hash "+hash, "  scopes s", " }", "}"), `client "a": client_id: defined twice`, 7},
		{"secret_hash short sha256", caddyfileLines("oauth {", iss, " client a {", "  secret_hash sha256:6fdd8e60", "  scopes s", " }", "}"), `client "a": secret_hash: sha256: needs 64 hex digits`, 4},
		{"secret_hash unknown format", caddyfileLines("oauth {", iss, " client a {", "  scopes s", "  secret_hash md5:0cc175b9c0f1b6a831c399e269772661", " }", "}"), `client "a": secret_hash: not a recognized hash`, 5},
		{"secret_hash bad bcrypt", caddyfileLines("oauth {", iss, " client a {", "  secret_hash $2a$10$tooshort", "  scopes s", " }", "}"), `client "a": secret_hash: bcrypt:`, 4},
		{"plain secret too short", caddyfileLines("oauth {", iss, " client a {", "  secret hunter2", "  scopes s", " }", "}"), `client "a": secret: shorter than 16 characters`, 4},
		{"bad scope token", caddyfileLines("oauth {", iss, " client a {", "  secret_hash "+hash, "  scopes ok", `  scopes "a\b"`, " }", "}"), `client "a": scopes: "a\\b" is not a valid scope token`, 6},
		{"redirect URI with a wildcard", caddyfileLines("oauth {", iss, " client a {", "  public", "  redirect_uris https://*.example/cb", "  scopes s", " }", "}"), `client "a": redirect_uris: "https://*.example/cb": wildcards and spaces are not allowed`, 5},
		{"redirect URI listed twice", caddyfileLines("oauth {", iss, " client a {", "  public", "  redirect_uris https://app.example/cb", "  redirect_uris https://app.example/cb", "  scopes s", " }", "}"), `client "a": redirect_uris: "https://app.example/cb" listed twice`, 6},
		{"resource with a fragment (RFC 8707 §2)", caddyfileLines("oauth {", iss, " client a {", "  secret_hash "+hash, "  scopes s", "  resources https://api.example/#x", " }", "}"), `client "a": resources: "https://api.example/#x" has a fragment`, 6},
		{"relative resource (RFC 8707 §2)", caddyfileLines("oauth {", iss, " client a {", "  secret_hash "+hash, "  scopes s", "  resources /api", " }", "}"), `client "a": resources: "/api" is not an absolute URI`, 6},
		{"metadata key", caddyfileLines("oauth {", iss, " client a {", "  secret_hash "+hash, "  scopes s", `  metadata "a b" c`, " }", "}"), `client "a": metadata: key "a b" must be`, 6},
		{"client access_token_ttl", caddyfileLines("oauth {", iss, " client a {", "  secret_hash "+hash, "  scopes s", "  access_token_ttl 30s", " }", "}"), `client "a": access_token_ttl: 30s is outside 1m..24h`, 6},
		{"client access_token_ttl 0s", caddyfileLines("oauth {", iss, " client a {", "  secret_hash "+hash, "  scopes s", "  access_token_ttl 0s", " }", "}"), `client "a": access_token_ttl: 0s is outside 1m..24h`, 6},
		{"token_endpoint_auth_method", caddyfileLines("oauth {", iss, " client a {", "  secret_hash "+hash, "  token_endpoint_auth_method tls_client_authx", "  scopes s", " }", "}"), `client "a": token_endpoint_auth_method: "tls_client_authx" is not one of`, 5},
		{"tls_client_auth with a secret (RFC 8705 §2)", caddyfileLines("oauth {", iss, " client a {", "  secret_hash "+hash, "  token_endpoint_auth_method tls_client_auth", "  tls_client_auth_san_dns a.example", "  scopes s", " }", "}"), `client "a": token_endpoint_auth_method: a tls_client_auth client authenticates with its certificate and has no secret`, 5},
		{"tls_client_auth without subject or SAN (RFC 8705 §2.1.2)", caddyfileLines("oauth {", iss, " client a {", "  token_endpoint_auth_method tls_client_auth", "  scopes s", " }", "}"), `client "a": token_endpoint_auth_method: tls_client_auth needs one of`, 4},
		{"subject DN not RFC 4514", caddyfileLines("oauth {", iss, " client a {", "  token_endpoint_auth_method tls_client_auth", `  tls_client_auth_subject_dn "CN=a;b"`, "  scopes s", " }", "}"), `client "a": tls_client_auth_subject_dn: at byte 4`, 5},
		{"SAN IP not an address", caddyfileLines("oauth {", iss, " client a {", "  token_endpoint_auth_method tls_client_auth", "  tls_client_auth_san_ip 10.1", "  scopes s", " }", "}"), `client "a": tls_client_auth_san_ip: "10.1" is not an IP address`, 5},
		{"SAN without tls_client_auth", caddyfileLines("oauth {", iss, " client a {", "  secret_hash "+hash, "  tls_client_auth_san_dns a.example", "  scopes s", " }", "}"), `client "a": tls_client_auth_san_dns: only for token_endpoint_auth_method tls_client_auth`, 5},
		{"mtls_endpoint_base over http (RFC 8705 §5)", caddyfileLines("oauth {", iss, " mtls_endpoint_base http://mtls.example/oauth2", "}"), `mtls_endpoint_base: "http://mtls.example/oauth2": mutual TLS needs https`, 3},
		{"unknown grant type", caddyfileLines("oauth {", iss, " client a {", "  secret_hash "+hash, "  grant_types client_credentials password", "  scopes s", " }", "}"), `client "a": grant_types: unknown or unsupported grant type "password"`, 5},
		{"grant type listed twice", caddyfileLines("oauth {", iss, " client a {", "  secret_hash "+hash, "  scopes s", "  grant_types client_credentials client_credentials", " }", "}"), `client "a": grant_types: "client_credentials" listed twice`, 6},
		{"public client with client_credentials", caddyfileLines("oauth {", iss, " client a {", "  public", "  grant_types client_credentials", "  scopes s", " }", "}"), `client "a": grant_types: a public client cannot use client_credentials`, 5},
		{"public client without redirect URIs", caddyfileLines("oauth {", iss, " client a {", "  public", "  scopes s", " }", "}"), `client "a": redirect_uris: the authorization_code grant needs at least one redirect URI`, 3},
		{"id_token_signed_response_alg unknown", caddyfileLines("oauth {", iss, " client a {", "  public", "  redirect_uris https://app.example/cb", "  scopes openid", "  id_token_signed_response_alg HS256", " }", "}"), `client "a": id_token_signed_response_alg: "HS256" is not one of`, 7},
		{"require_pkce without the code grant", caddyfileLines("oauth {", iss, " client a {", "  secret_hash "+hash, "  require_pkce", "  scopes s", " }", "}"), `client "a": require_pkce: only applies to the authorization_code grant`, 5},
		{"jwt-bearer grant without keys", caddyfileLines("oauth {", iss, " client a {", "  grant_types "+GrantJWTBearer, "  assertion_subjects *", "  secret_hash "+hash, "  scopes s", " }", "}"), `client "a": grant_types: ` + GrantJWTBearer + " needs the assertion issuer's keys", 4},
		{"assertion_subjects without the grant", caddyfileLines("oauth {", iss, " client a {", "  secret_hash "+hash, "  scopes s", "  assertion_subjects svc", " }", "}"), `client "a": assertion_issuer, assertion_subjects: only used with`, 6},

		// A user.
		{"username with a space", caddyfileLines("oauth {", iss, ` user "al ice" {`, "  password_hash "+pw, " }", "}"), `user "al ice": username: must be 1 to 64 of`, 3},
		{"user defined twice", caddyfileLines("oauth {", iss, " user alice {", "  password_hash "+pw, " }", " user alice {", "  password_hash "+pw, " }", "}"), `user "alice": username: defined twice`, 6},
		{"plain password", caddyfileLines("oauth {", iss, " user alice {", "  name Alice", "  password_hash hunter2", " }", "}"), `user "alice": password_hash: not a recognized hash`, 5},
		{"sha256 password hash", caddyfileLines("oauth {", iss, " user alice {", "  password_hash "+hash, " }", "}"), `user "alice": password_hash: not a recognized hash`, 4},
		{"no password hash", caddyfileLines("oauth {", iss, " user alice {", "  name Alice", " }", "}"), `user "alice": password_hash: required`, 3},
		{"demo password off localhost", caddyfileLines("oauth {", iss, " user alice {", "  password_hash "+demoPasswordHashes[0], " }", "}"), `user "alice": password_hash: this is a demo password`, 4},
		{"bad email", caddyfileLines("oauth {", iss, " user alice {", "  password_hash "+pw, "  email alice", " }", "}"), `user "alice": email: "alice" is not a plain e-mail address`, 5},
		{"reserved claim", caddyfileLines("oauth {", iss, " user alice {", "  password_hash "+pw, "  claim sub root", " }", "}"), `user "alice": claims: "sub" is set by the server`, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := parseCaddyfile(t, tt.input)
			if err == nil {
				t.Fatalf("accepted:\n%s", tt.input)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if at := fmt.Sprintf(", at Caddyfile:%d", tt.line); !strings.HasSuffix(err.Error(), at) {
				t.Errorf("error %q does not end in %q", err, at)
			}
		})
	}
}

// TestCaddyfileChecksLeaveToProvision: what only provision can judge
// (placeholders, files, the demo secrets, settings whose empty value
// means unset) is not refused at parse time.
func TestCaddyfileChecksLeaveToProvision(t *testing.T) {
	hash := sha256Hex(svcSecret)
	const iss = " issuer https://as.example"
	for name, input := range map[string]string{
		"secret from a placeholder": caddyfileLines("oauth {", iss, " client a {", "  secret {env.A_SECRET}", "  scopes s", " }", "}"),
		"empty secret_hash":         caddyfileLines("oauth {", iss, " client a {", `  secret_hash ""`, "  public", "  redirect_uris https://app.example/cb", "  scopes s", " }", "}"),
		"demo secret off localhost": caddyfileLines("oauth {", iss, " client a {", "  secret_hash "+demoSecretHashes[0], "  scopes s", " }", "}"),
		"jwks_file not read":        caddyfileLines("oauth {", iss, " client a {", "  token_endpoint_auth_method private_key_jwt", "  jwks_file /nonexistent/jwks.json", "  scopes s", " }", "}"),
		"signing key file not read": caddyfileLines("oauth {", iss, " signing_key ES256 /nonexistent/as.pem", "}"),
		// (access_token_ttl 0s is refused: TestCaddyfileChecks.)
		"zero durations are unset": caddyfileLines("oauth {", iss, " session_ttl 0s", " client a {", "  secret_hash "+hash, "  scopes s", " }", "}"),
		"issuer after the clients": caddyfileLines("oauth {", " client a {", "  secret_hash "+hash, "  scopes s", " }", iss, "}"),
	} {
		if err := parseCaddyfile(t, input); err != nil {
			t.Errorf("%s: refused at parse time: %v", name, err)
		}
	}
}
