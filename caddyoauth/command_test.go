package caddyoauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"
)

// TestGenerateSecret: 256 random bits, base64url without padding (RFC 4648
// §5): 43 characters, all different.
func TestGenerateSecret(t *testing.T) {
	alphabet := regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	seen := map[string]bool{}
	for range 100 {
		s, err := GenerateSecret()
		if err != nil {
			t.Fatal(err)
		}
		if !alphabet.MatchString(s) {
			t.Fatalf("secret %q is not 43 base64url characters", s)
		}
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(raw) != 32 {
			t.Fatalf("secret %q decodes to %d bytes (%v), want 32", s, len(raw), err)
		}
		if seen[s] {
			t.Fatalf("secret %q generated twice", s)
		}
		seen[s] = true
	}
	// It is long enough for the plain `secret` option too.
	s, _ := GenerateSecret()
	if len(s) < minSecretLen {
		t.Fatalf("generated secret shorter than minSecretLen")
	}
}

// TestHashSecret: the sha256:<hex> form, checked against the FIPS 180-2
// test vectors for SHA-256 ("abc" and the empty string).
func TestHashSecret(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"", "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	}
	for _, tt := range tests {
		if got := HashSecret(tt.in); got != tt.want {
			t.Errorf("HashSecret(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
	// What it prints is what secret_hash accepts, for that secret only.
	s, _ := GenerateSecret()
	chk, err := parseSecretHash(HashSecret(s))
	if err != nil {
		t.Fatal(err)
	}
	if !chk.check(s) || chk.check(s+"x") {
		t.Fatal("HashSecret output does not verify exactly its secret")
	}
}

// TestWriteSecretReport: the report shows the secret only when generated,
// always the hash, and a client block that loads as printed: pasted into
// the oauth global option of a Caddyfile, it adapts, and Caddy provisions
// the app from it with the same secret_hash.
func TestWriteSecretReport(t *testing.T) {
	const secret = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
	hash := HashSecret(secret) // checked against test vectors in TestHashSecret

	var buf bytes.Buffer
	writeSecretReport(&buf, "reports-service", secret, true)
	out := buf.String()
	for _, want := range []string{
		"secret:      " + secret + "\n",
		"secret_hash: " + hash + "\n",
		"client reports-service {",
		"secret_hash " + hash,
		"scopes " + placeholderScope, // a client without scopes is refused at load
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	block := printedClientBlock(t, out, "reports-service")
	cfgJSON := adaptPastedBlock(t, block)
	var cfg struct {
		Apps struct {
			OAuth App `json:"oauth"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	clients := cfg.Apps.OAuth.Clients
	if len(clients) != 1 || clients[0].ID != "reports-service" || clients[0].SecretHash != hash || len(clients[0].Scopes) == 0 {
		t.Fatalf("adapted clients %+v", clients)
	}
	// Loads: Caddy provisions and validates the oauth app from it.
	var loaded caddy.Config
	if err := json.Unmarshal(cfgJSON, &loaded); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&loaded); err != nil {
		t.Fatalf("the printed client block does not load: %v\n%s", err, block)
	}

	buf.Reset()
	writeSecretReport(&buf, "", secret, false)
	out = buf.String()
	if strings.Contains(out, secret) {
		t.Errorf("--hash report repeats the secret:\n%s", out)
	}
	if !strings.Contains(out, "secret_hash: "+hash) {
		t.Errorf("report lacks the hash:\n%s", out)
	}
	if strings.Contains(out, "client ") {
		t.Errorf("client block printed without --client:\n%s", out)
	}
}

// TestReadSecret reads a secret from a pipe (not a terminal), as with
// `echo $SECRET | caddy oauth-secret --hash`.
func TestReadSecret(t *testing.T) {
	const long = "0123456789abcdefXYZ0123456789abcdef" // 35 characters
	tests := []struct {
		name, input, want string
		wantErr           bool
	}{
		{"LF", long + "\n", long, false},
		{"CRLF", long + "\r\n", long, false},
		{"no newline", long, long, false},
		{"only the first line", long + "\nsecond line\n", long, false},
		{"inner spaces kept", "0123 4567 89ab cdef 0123 4567 89ab\n", "0123 4567 89ab cdef 0123 4567 89ab", false},
		{"too short", "short\n", "", true},
		// 16..31 characters is a plain `secret` but too weak for an
		// unsalted SHA-256 hash in a Caddyfile.
		{"too short to keep as SHA-256", "0123456789abcdefXYZ\n", "", true},
		{"empty", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			go func() {
				w.WriteString(tt.input)
				w.Close()
			}()
			var prompt bytes.Buffer
			got, err := readSecret(r, &prompt)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if prompt.Len() != 0 {
				t.Errorf("prompted on a pipe: %q", prompt.String())
			}
		})
	}
}

// TestCmdOAuthSecretRefusesBadClientID: --client must be a valid client_id.
func TestCmdOAuthSecretRefusesBadClientID(t *testing.T) {
	fs := new(cobra.Command).Flags()
	fs.String("client", "", "")
	fs.Bool("hash", false, "")
	if err := fs.Parse([]string{"--client", "bad id"}); err != nil {
		t.Fatal(err)
	}
	code, err := cmdOAuthSecret(caddycmd.Flags{FlagSet: fs})
	if err == nil || code == 0 || !strings.Contains(err.Error(), "--client") {
		t.Fatalf("cmdOAuthSecret(--client 'bad id') = %d, %v", code, err)
	}
}

// printedClientBlock returns the client block of a report, from its
// `client <id> {` line to its closing brace, as a user would copy it.
func printedClientBlock(t *testing.T, report, id string) string {
	t.Helper()
	lines := strings.Split(report, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "client "+id+" {" {
			continue
		}
		for j := i + 1; j < len(lines); j++ {
			if strings.TrimSpace(lines[j]) == "}" {
				return strings.Join(lines[i:j+1], "\n")
			}
		}
	}
	t.Fatalf("no client block for %s in the report:\n%s", id, report)
	return ""
}

// adaptPastedBlock pastes a client block into the oauth global option of
// an otherwise minimal Caddyfile (storage in a temporary directory) and
// returns the JSON config the Caddyfile adapter makes of it.
func adaptPastedBlock(t *testing.T, block string) []byte {
	t.Helper()
	// Indented one level deeper, where it goes: in oauth, in the global options.
	pasted := "\t" + strings.ReplaceAll(block, "\n", "\n\t")
	caddyfileText := "{\n\tstorage file_system " + t.TempDir() + "\n\toauth {\n\t\tissuer https://localhost:8443\n" +
		pasted + "\n\t}\n}\n"
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("caddyfile adapter not registered")
	}
	out, warnings, err := adapter.Adapt([]byte(caddyfileText), nil)
	if err != nil {
		t.Fatalf("the printed client block does not adapt: %v\n%s", err, caddyfileText)
	}
	for _, w := range warnings {
		t.Errorf("adapt warning: %s:%d: %s", w.File, w.Line, w.Message)
	}
	return out
}
