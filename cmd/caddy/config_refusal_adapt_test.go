package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// okClientJSON is okClient in JSON.
const okClientJSON = `{"client_id": "reports-service", "secret_hash": "` + demoSecretHash + `", "scopes": ["user:read"]}`

// parseTimeRefusals are mistakes the text alone shows. In a Caddyfile they
// are refused at adapt, with the file and line; in a JSON config, which no
// Caddyfile check sees, the same mistake is refused at load, in the same
// words.
var parseTimeRefusals = []struct {
	name  string
	oauth string // body of the oauth global option
	line  int    // the line at fault, counting the body's first line as 1
	json  string // the same apps.oauth in JSON
	want  string
}{
	{
		name:  "issuer_http_not_localhost",
		oauth: "issuer http://auth.example.com\n" + okClient,
		line:  1,
		json:  `{"issuer": "http://auth.example.com", "clients": [` + okClientJSON + `]}`,
		want:  `issuer: "http://auth.example.com" must use https`,
	},
	{
		name:  "unknown_grant_type",
		oauth: "issuer https://localhost:9443\nclient reports-service {\n\tsecret_hash " + demoSecretHash + "\n\tgrant_types client_credentials password\n\tscopes user:read\n}",
		line:  4,
		json:  `{"issuer": "https://localhost:9443", "clients": [{"client_id": "reports-service", "secret_hash": "` + demoSecretHash + `", "grant_types": ["client_credentials", "password"], "scopes": ["user:read"]}]}`,
		want:  `client "reports-service": grant_types: unknown or unsupported grant type "password"`,
	},
	{
		name:  "duplicate_client_id",
		oauth: "issuer https://localhost:9443\n" + okClient + "\n" + okClient,
		line:  6,
		json:  `{"issuer": "https://localhost:9443", "clients": [` + okClientJSON + `, ` + okClientJSON + `]}`,
		want:  `client "reports-service": client_id: defined twice`,
	},
	{
		name:  "secret_hash_short_sha256",
		oauth: "issuer https://localhost:9443\nclient reports-service {\n\tsecret_hash sha256:6fdd8e60\n\tscopes user:read\n}",
		line:  3,
		json:  `{"issuer": "https://localhost:9443", "clients": [{"client_id": "reports-service", "secret_hash": "sha256:6fdd8e60", "scopes": ["user:read"]}]}`,
		want:  `client "reports-service": secret_hash: sha256: needs 64 hex digits`,
	},
	{
		name:  "secret_hash_unknown_format",
		oauth: "issuer https://localhost:9443\nclient reports-service {\n\tsecret_hash md5:0cc175b9c0f1b6a831c399e269772661\n\tscopes user:read\n}",
		line:  3,
		json:  `{"issuer": "https://localhost:9443", "clients": [{"client_id": "reports-service", "secret_hash": "md5:0cc175b9c0f1b6a831c399e269772661", "scopes": ["user:read"]}]}`,
		want:  `client "reports-service": secret_hash: not a recognized hash`,
	},
	{
		name:  "public_client_without_redirect_uris",
		oauth: "issuer https://localhost:9443\nclient notes-spa {\n\tpublic\n\tscopes notes:read\n}",
		line:  2, // the client block: the option is missing
		json:  `{"issuer": "https://localhost:9443", "clients": [{"client_id": "notes-spa", "public": true, "scopes": ["notes:read"]}]}`,
		want:  `client "notes-spa": redirect_uris: the authorization_code grant needs at least one redirect URI`,
	},
	{
		name:  "redirect_uri_with_wildcard",
		oauth: "issuer https://localhost:9443\nclient notes-spa {\n\tpublic\n\tredirect_uris https://*.example.com/cb\n\tscopes notes:read\n}",
		line:  4,
		json:  `{"issuer": "https://localhost:9443", "clients": [{"client_id": "notes-spa", "public": true, "redirect_uris": ["https://*.example.com/cb"], "scopes": ["notes:read"]}]}`,
		want:  `client "notes-spa": redirect_uris: "https://*.example.com/cb": wildcards and spaces are not allowed`,
	},
	{
		name:  "implicit_grant",
		oauth: "issuer https://localhost:9443\nclient notes-spa {\n\tpublic\n\tgrant_types implicit\n\tscopes notes:read\n}",
		line:  4,
		json:  `{"issuer": "https://localhost:9443", "clients": [{"client_id": "notes-spa", "public": true, "grant_types": ["implicit"], "scopes": ["notes:read"]}]}`,
		want:  `client "notes-spa": grant_types: unknown or unsupported grant type "implicit"`,
	},
	{
		name:  "user_with_plain_password",
		oauth: "issuer https://localhost:9443\n" + okClient + "\nuser alice {\n\tpassword_hash hunter2\n}",
		line:  7,
		json:  `{"issuer": "https://localhost:9443", "clients": [` + okClientJSON + `], "users": [{"username": "alice", "password_hash": "hunter2"}]}`,
		want:  `user "alice": password_hash: not a recognized hash`,
	},
	{
		name:  "user_with_sha256_hash",
		oauth: "issuer https://localhost:9443\n" + okClient + "\nuser alice {\n\tpassword_hash " + demoSecretHash + "\n}",
		line:  7,
		json:  `{"issuer": "https://localhost:9443", "clients": [` + okClientJSON + `], "users": [{"username": "alice", "password_hash": "` + demoSecretHash + `"}]}`,
		want:  `user "alice": password_hash: not a recognized hash`,
	},
	{
		name:  "session_ttl_longer_than_max",
		oauth: "issuer https://localhost:9443\n" + okClient + "\nsession_ttl 10h\nsession_max_ttl 1h",
		line:  6,
		json:  `{"issuer": "https://localhost:9443", "clients": [` + okClientJSON + `], "session_ttl": "10h", "session_max_ttl": "1h"}`,
		want:  `session_ttl: 10h0m0s is longer than session_max_ttl 1h0m0s`,
	},
}

// TestConfigRefusalsAtAdapt: each mistake in parseTimeRefusals stops the
// Caddyfile at adapt, before anything loads, with the message ending at
// the file and line of the option at fault.
func TestConfigRefusalsAtAdapt(t *testing.T) {
	for _, tc := range parseTimeRefusals {
		t.Run(tc.name, func(t *testing.T) {
			cfg := refusalCaddyfile(t, t.TempDir(), tc.oauth, "")
			_, _, err := adapt(cfg)
			if err == nil {
				t.Fatalf("adapted; want a refusal containing %q\n%s", tc.want, cfg)
			}
			t.Logf("refused: %v", err)
			lines := strings.Split(cfg, "\n")
			first := slices.Index(lines, "\toauth {") + 2 // 1-based, the line after `oauth {`
			at := fmt.Sprintf(", at Caddyfile:%d", first+tc.line-1)
			if !strings.Contains(err.Error(), tc.want) || !strings.HasSuffix(err.Error(), at) {
				t.Errorf("refusal\n\t%v\nwant it to contain\n\t%s\nand end in %q", err, tc.want, at)
			}
		})
	}
}

// TestConfigRefusalsJSON: the mistakes of parseTimeRefusals in a JSON
// config, which no Caddyfile check sees, are still refused at load.
func TestConfigRefusalsJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("loads configs into an in-process Caddy")
	}
	t.Run("control_valid_config_loads", func(t *testing.T) {
		if err := loadJSON(t, refusalJSON(t, `{"issuer": "https://localhost:9443", "clients": [`+okClientJSON+`]}`)); err != nil {
			t.Fatalf("a valid config was refused: %v", err)
		}
	})
	for _, tc := range parseTimeRefusals {
		t.Run(tc.name, func(t *testing.T) {
			err := loadJSON(t, refusalJSON(t, tc.json))
			if err == nil {
				t.Fatalf("config loaded; want a refusal containing %q\n%s", tc.want, tc.json)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("refusal\n\t%v\ndoes not contain\n\t%s", err, tc.want)
			}
		})
	}
}
