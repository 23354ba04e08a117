package caddyoauth

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "oauth-secret",
		Usage: "[--client <client_id>] [--hash]",
		Short: "Generates an OAuth client secret and its hash for the Caddyfile",
		Long: `
Generates a random client secret (256 bits, base64url) and prints it with the
SHA-256 hash to paste into a client block of the oauth global option:

	client reports-service {
		secret_hash sha256:...
		scopes user:read
	}

Give the secret to the client application; it is not stored anywhere. A
high-entropy secret is safe to keep as a fast SHA-256 hash, which keeps the
token endpoint fast. For a human-chosen secret use bcrypt or argon2id
(caddy hash-password) instead.

--client
    Print a complete client block for this client_id, with a placeholder
    scope to replace by the scopes the client may be granted.

--hash
    Do not generate: read an existing secret from stdin (not echoed on a
    terminal) and print its hash.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().StringP("client", "c", "", "client_id to print a client block for")
			cmd.Flags().Bool("hash", false, "hash a secret read from stdin instead of generating one")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdOAuthSecret)
		},
	})
}

func cmdOAuthSecret(fl caddycmd.Flags) (int, error) {
	client := fl.String("client")
	if client != "" && !clientIDPattern.MatchString(client) {
		return caddy.ExitCodeFailedStartup, errors.New("--client: must be 1 to 128 of A-Z a-z 0-9 . _ ~ : -")
	}
	var secret string
	if fl.Bool("hash") {
		s, err := readSecret(os.Stdin, os.Stderr)
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		secret = s
	} else {
		s, err := GenerateSecret()
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		secret = s
	}
	writeSecretReport(os.Stdout, client, secret, !fl.Bool("hash"))
	return 0, nil
}

// placeholderScope is the scope of the client block --client prints, for
// the user to replace.
const placeholderScope = "example:read"

// minHashedSecretLen is the shortest secret --hash turns into a SHA-256
// hash (32 characters of base64url carry 192 bits).
const minHashedSecretLen = 32

// GenerateSecret returns a new client secret: 32 random bytes, base64url.
func GenerateSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashSecret returns the `sha256:<hex>` form accepted by secret_hash.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func writeSecretReport(w io.Writer, client, secret string, generated bool) {
	if generated {
		fmt.Fprintf(w, "secret:      %s\n", secret)
	}
	fmt.Fprintf(w, "secret_hash: %s\n", HashSecret(secret))
	if client != "" {
		// scopes is required: a block without it would not load. The
		// placeholder is a valid scope so the block loads as pasted.
		fmt.Fprintf(w, "\n\tclient %s {\n\t\tsecret_hash %s\n"+
			"\t\t# the scopes this client may be granted: replace the placeholder\n"+
			"\t\tscopes %s\n\t}\n", client, HashSecret(secret), placeholderScope)
	}
	if generated {
		fmt.Fprintln(w, "\nGive the secret to the client; only the hash goes into the Caddyfile.")
	}
}

// readSecret reads one line from in, without echo when in is a terminal.
func readSecret(in *os.File, prompt io.Writer) (string, error) {
	var line string
	if term.IsTerminal(int(in.Fd())) {
		fmt.Fprint(prompt, "Enter secret: ")
		b, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		line = string(b)
	} else {
		s, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		line = strings.TrimRight(s, "\r\n")
	}
	// A fast unsalted hash is only safe for a high-entropy secret: the
	// Caddyfile holding it may end up in a repository.
	if len(line) < minHashedSecretLen {
		return "", fmt.Errorf("secret must have at least %d characters to be kept as SHA-256; for a human-chosen secret use `caddy hash-password` (bcrypt or argon2id)", minHashedSecretLen)
	}
	return line, nil
}
