package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// A sha256 client-secret hash (of reports-demo-secret-not-for-production).
const demoSecretHash = "sha256:6fdd8e6008f83508d05d0878666ffb26f70af13148bf21dff63f2c918bcb190b"

const okClient = "client reports-service {\n\tsecret_hash " + demoSecretHash + "\n\tscopes user:read\n}"

// TestConfigRefusals loads configurations that adapt cleanly but are wrong
// into the Caddy of this process, and checks that Caddy refuses each with a
// message that names the field at fault.
//
// Loading goes through caddy.Load, the function behind `caddy run` and the
// admin API's POST /load, rather than caddytest.AssertLoadError: that helper
// starts `caddy run` in-process with an initial config that it autosaves to
// the user's config directory, talks to a fixed admin port that another
// test process may own, hands back the error JSON-escaped (`client
// \"reports-service\"`), skips instead of failing when its prerequisites are
// missing, and dereferences a nil error if the config loads after all.
func TestConfigRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("loads configs into an in-process Caddy")
	}

	// The harness itself must be able to load a good config, so that the
	// refusals below are down to the field each one breaks.
	t.Run("control_valid_config_loads", func(t *testing.T) {
		storage := t.TempDir()
		cfg := refusalCaddyfile(t, storage,
			"issuer https://localhost:9443\n"+okClient,
			"oauth_server\noauth_scope user:read\nrespond ok")
		if err := load(t, cfg); err != nil {
			t.Fatalf("a valid config was refused: %v\n%s", err, cfg)
		}
		// The signing key is generated into the configured storage, not
		// into the home directory.
		if entries, err := os.ReadDir(storage); err != nil || len(entries) == 0 {
			t.Errorf("nothing written to the configured storage %s (err %v)", storage, err)
		}
	})

	// oauth_scope trusting only another issuer needs no oauth app; the
	// issuer being down (nothing listens on its port) does not stop the load.
	t.Run("control_external_issuer_without_oauth_app_loads", func(t *testing.T) {
		issuer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		cfg := refusalCaddyfile(t, t.TempDir(), "",
			"oauth_scope {\n\tGET user:read\n\tissuer "+issuer+" {\n\t\taudience https://api.example.com\n\t}\n}\nrespond ok")
		if err := load(t, cfg); err != nil {
			t.Fatalf("a valid config was refused: %v\n%s", err, cfg)
		}
	})

	for _, tc := range []struct {
		name  string
		oauth string // body of the oauth global option; "" for none
		site  string // body of the site block
		want  string
	}{
		{
			name:  "confidential_client_without_secret",
			oauth: "issuer https://localhost:9443\nclient reports-service {\n\tscopes user:read\n}",
			want:  `client "reports-service": secret_hash: a confidential client needs secret_hash or secret`,
		},
		{
			name:  "oauth_server_templates_missing",
			oauth: "issuer https://localhost:9443\n" + okClient,
			site:  "oauth_server {\n\ttemplates /nonexistent/templates\n}\nrespond ok",
			want:  `templates: "/nonexistent/templates" is not a readable directory`,
		},
		{
			name: "oauth_scope_without_oauth_app",
			site: "oauth_scope user:read\nrespond ok",
			want: "oauth_scope needs a token issuer: configure the `oauth` global option",
		},
		{
			name:  "oauth_scope_duplicate_method_rule",
			oauth: "issuer https://localhost:9443\n" + okClient,
			site:  "oauth_scope {\n\tGET user:read\n\tPOST GET user:write\n}\nrespond ok",
			want:  "oauth_scope: rules[1]: methods: GET has two rules",
		},
		{
			name: "oauth_scope_issuer_without_audience",
			site: "oauth_scope {\n\tGET user:read\n\tissuer https://idp.example.com\n}\nrespond ok",
			want: "issuers[0] (https://idp.example.com): audience: required to accept this issuer's JWTs (RFC 9068 §4)",
		},
		{
			name: "oauth_scope_issuer_local_without_oauth_app",
			site: "oauth_scope {\n\tGET user:read\n\tissuer local\n}\nrespond ok",
			want: "issuer local needs the `oauth` global option",
		},
		{
			name: "oauth_scope_issuer_jwks_url_plain_http",
			site: "oauth_scope {\n\tGET user:read\n\tissuer https://idp.example.com {\n\t\taudience https://api.example.com\n\t\tjwks_url http://idp.example.com/jwks\n\t}\n}\nrespond ok",
			want: `issuers[0] (https://idp.example.com): jwks_url: "http://idp.example.com/jwks" must use https`,
		},
		{
			name: "oauth_scope_issuer_introspection_without_client_id",
			site: "oauth_scope {\n\tGET user:read\n\tissuer https://idp.example.com {\n\t\tintrospection_url https://idp.example.com/introspect\n\t}\n}\nrespond ok",
			want: "issuers[0] (https://idp.example.com): client_id: required with introspection_url",
		},
		{
			name: "oauth_scope_two_issuers_introspect",
			site: "oauth_scope {\n\tGET user:read\n" +
				"\tissuer https://a.example.com {\n\t\tintrospection_url https://a.example.com/i\n\t\tclient_id gw\n\t\tclient_secret s\n\t}\n" +
				"\tissuer https://b.example.com {\n\t\tintrospection_url https://b.example.com/i\n\t\tclient_id gw\n\t\tclient_secret s\n\t}\n}\nrespond ok",
			want: "issuers[1] (https://b.example.com): client_id: only one issuer of a route may introspect tokens",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := refusalCaddyfile(t, t.TempDir(), tc.oauth, tc.site)
			err := load(t, cfg)
			if err == nil {
				t.Fatalf("config loaded; want a refusal containing %q\n%s", tc.want, cfg)
			}
			t.Logf("refused: %v", err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("refusal\n\t%v\ndoes not contain\n\t%s", err, tc.want)
			}
		})
	}
}

// load adapts caddyfile, which must adapt cleanly (the refusal has to come
// from loading), and loads it. A config that loads is stopped at cleanup.
func load(t *testing.T, caddyfile string) error {
	t.Helper()
	cfgJSON, warnings, err := adapt(caddyfile)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("adapting: err=%v warnings=%v\n%s", err, warnings, caddyfile)
	}
	return loadJSON(t, cfgJSON)
}

// loadJSON loads a JSON config; one that loads is stopped at cleanup.
func loadJSON(t testing.TB, cfgJSON []byte) error {
	t.Helper()
	err := caddy.Load(cfgJSON, true)
	if err == nil {
		t.Cleanup(func() { _ = caddy.Stop() })
	}
	return err
}

// refusalJSON is the JSON config of refusalCaddyfile with a valid oauth
// app, its apps.oauth replaced by oauthJSON: the same harness (loopback,
// no admin, storage in a temporary directory), without a Caddyfile.
func refusalJSON(t *testing.T, oauthJSON string) []byte {
	t.Helper()
	cfgJSON, _, err := adapt(refusalCaddyfile(t, t.TempDir(), "issuer https://localhost:9443\n"+okClient, ""))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["apps"].(map[string]any)["oauth"] = json.RawMessage(oauthJSON)
	out, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// refusalCaddyfile builds a config that listens on loopback only (if it
// loads at all), keeps Caddy's state in storage, never installs a root
// certificate, runs no admin endpoint and writes nothing under $HOME.
func refusalCaddyfile(t testing.TB, storage, oauth, site string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("{\n\tadmin off\n\tpersist_config off\n\tauto_https off\n\tskip_install_trust\n\tgrace_period 1ns\n\tdefault_bind 127.0.0.1\n")
	// Storage cleaning stamps an instance ID into the data directory
	// under $HOME, whatever the storage; there is nothing to clean here.
	b.WriteString("\tstorage_clean_interval off\n")
	fmt.Fprintf(&b, "\tstorage file_system %s\n", storage)
	if site == "" {
		site = "respond ok"
	}
	if oauth != "" {
		b.WriteString("\toauth {\n" + indent(indent(oauth+"\n")) + "\t}\n")
	}
	fmt.Fprintf(&b, "}\n\nhttp://localhost:%d {\n%s}\n", freePort(t), indent(site+"\n"))
	return b.String()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
