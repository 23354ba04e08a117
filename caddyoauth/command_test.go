package caddyoauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
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
// always the hash, and a client block that the Caddyfile parser reads back
// to the same secret_hash.
func TestWriteSecretReport(t *testing.T) {
	const secret = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
	hash := sha256Hex(secret)

	var buf bytes.Buffer
	writeSecretReport(&buf, "reports-service", secret, true)
	out := buf.String()
	for _, want := range []string{"secret:      " + secret + "\n", "secret_hash: " + hash + "\n", "client reports-service {", "secret_hash " + hash} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	// The client block, pasted into the oauth option, parses to that hash.
	start := strings.Index(out, "client reports-service {")
	end := strings.Index(out[start:], "}") + start + 1
	block := out[start:end]
	v, err := parseOAuthOption(caddyfile.NewTestDispenser("oauth {\n issuer https://as.example\n"+block+"\n}"), nil)
	if err != nil {
		t.Fatalf("client block does not parse: %v\n%s", err, block)
	}
	var app App
	if err := json.Unmarshal(v.(httpcaddyfile.App).Value, &app); err != nil {
		t.Fatal(err)
	}
	if len(app.Clients) != 1 || app.Clients[0].ID != "reports-service" || app.Clients[0].SecretHash != hash {
		t.Fatalf("parsed clients %+v", app.Clients)
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
