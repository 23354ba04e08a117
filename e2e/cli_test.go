package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// The `caddy oauth` command line against a running example gateway: its
// table and --json output, the secret printed once, its exit codes (0
// done, 1 refused by the admin API or not reachable, 2 wrong usage), and
// that what it does takes effect at the token endpoint.

// cli runs `caddy oauth <args…> --address <g's admin>` and returns its
// stdout, stderr and exit code.
func cli(t *testing.T, g *gateway, args ...string) (string, string, int) {
	t.Helper()
	args = append(append([]string{"oauth"}, args...), "--address", fmt.Sprintf("localhost:%d", g.ports.admin))
	cmd := exec.Command(caddyBin, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func TestOAuthCLI(t *testing.T) {
	p := newPorts(t)
	g := startGateway(t, p, exampleCaddyfile(t, p), "")
	notes := g.url("/api/notes")

	// add: a table of the client, then the secret, once.
	out, errOut, code := cli(t, g, "clients", "add", "cli-svc", "--scope", "notes:read", "--resource", notes, "--name", "CLI service", "--metadata", "tier=gold")
	m := regexp.MustCompile(`(?m)^client_secret: (\S+)$`).FindStringSubmatch(out)
	if code != 0 || m == nil || !strings.Contains(out, "client_name:") || !strings.Contains(out, "shown only now") {
		t.Fatalf("add: exit %d\n%s\n%s", code, out, errOut)
	}
	secret := m[1]
	if status, tok := tokenAt(t, g, "cli-svc", secret, url.Values{"grant_type": {"client_credentials"}}); status != http.StatusOK {
		t.Fatalf("token with the secret the CLI printed: %d %v", status, tok)
	}

	// list: a table with a header and both kinds of client; --json: the
	// admin API's array.
	out, _, code = cli(t, g, "clients", "list")
	if code != 0 || !strings.HasPrefix(out, "CLIENT_ID") || !regexp.MustCompile(`(?m)^cli-svc\s+store\s+secret\s+client_credentials\s+notes:read\s+CLI service$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^notes-spa\s+caddyfile\s+public\s`).MatchString(out) {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	out, _, code = cli(t, g, "clients", "list", "--json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) < 8 {
		t.Errorf("list --json: exit %d, %v\n%s", code, err, out)
	}
	for _, c := range list {
		if c["client_secret"] != nil || c["secret_hash"] != nil {
			t.Errorf("list --json shows a secret: %v", c)
		}
	}

	// update (a merge patch of the flags given), show --json.
	if out, errOut, code := cli(t, g, "clients", "update", "cli-svc", "--name", "Renamed"); code != 0 || strings.Contains(out, "client_secret") {
		t.Errorf("update: exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = cli(t, g, "clients", "show", "cli-svc", "--json")
	var shown map[string]any
	if err := json.Unmarshal([]byte(out), &shown); code != 0 || err != nil || shown["client_name"] != "Renamed" || shown["scope"] != "notes:read" {
		t.Errorf("show --json after update: exit %d\n%s", code, out)
	}

	// rotate-secret with an overlap: both work for now.
	out, _, code = cli(t, g, "clients", "rotate-secret", "cli-svc", "--overlap", "1h")
	m = regexp.MustCompile(`(?m)^client_secret: (\S+)$`).FindStringSubmatch(out)
	if code != 0 || m == nil || m[1] == secret || !strings.Contains(out, "previous_secret_valid_until") {
		t.Fatalf("rotate-secret: exit %d\n%s", code, out)
	}
	for _, s := range []string{secret, m[1]} {
		if status, _ := tokenAt(t, g, "cli-svc", s, url.Values{"grant_type": {"client_credentials"}}); status != http.StatusOK {
			t.Errorf("a secret within the overlap: %d", status)
		}
	}

	// registration-token create needs registration on: refused (1).
	if _, errOut, code := cli(t, g, "registration-token", "create"); code != 1 || !strings.Contains(errOut, "registration is off") {
		t.Errorf("registration-token create while off: exit %d %s", code, errOut)
	}
	// keys list: the active key.
	if out, _, code := cli(t, g, "keys", "list"); code != 0 || !regexp.MustCompile(`(?m)^\S+\s+ES256\s+yes$`).MatchString(out) {
		t.Errorf("keys list: exit %d\n%s", code, out)
	}

	// users: add (password on stdin), list, disable, enable, passwd.
	cliIn := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		args = append(append([]string{"oauth"}, args...), "--address", fmt.Sprintf("localhost:%d", g.ports.admin))
		cmd := exec.Command(caddyBin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		_ = cmd.Run()
		return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
	}
	if out, errOut, code := cliIn("correct staple long 1\n", "users", "add", "bob", "--email", "bob@example.com", "--name", "Bob"); code != 0 || !strings.Contains(out, "source:") || strings.Contains(out, "$2a$") {
		t.Errorf("users add: exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = cli(t, g, "users", "list")
	if code != 0 || !regexp.MustCompile(`(?m)^bob\s+store\s+false\s+bob@example.com\s+Bob$`).MatchString(out) || !regexp.MustCompile(`(?m)^alice\s+caddyfile\s`).MatchString(out) {
		t.Errorf("users list: exit %d\n%s", code, out)
	}
	if out, _, code := cli(t, g, "users", "disable", "bob", "--json"); code != 0 || !strings.Contains(out, `"disabled": true`) {
		t.Errorf("users disable: exit %d\n%s", code, out)
	}
	if _, errOut, code := cliIn("short\n", "users", "passwd", "bob"); code != 1 || !strings.Contains(errOut, "at least") {
		t.Errorf("users passwd with a weak password: exit %d %s", code, errOut)
	}
	if _, errOut, code := cli(t, g, "users", "disable", "alice"); code != 1 || !strings.Contains(errOut, "configuration") {
		t.Errorf("users disable of a Caddyfile user: exit %d %s", code, errOut)
	}
	if _, _, code := cliIn("", "users", "add", "carol", "--email", "c@example.com"); code != 2 {
		t.Errorf("users add without a password: exit %d", code)
	}

	// Exit codes.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"clients", "show", "nobody"}, 1, "no client"},
		{[]string{"clients", "remove", "notes-spa"}, 1, "configuration"},
		{[]string{"clients", "add", "bad", "--scope", "notes:read", "--grant", "password"}, 1, "grant_types"},
		{[]string{"clients", "show"}, 2, "accepts 1 arg"},
		{[]string{"clients", "add", "x"}, 2, "--scope is required"},
		{[]string{"clients", "update", "cli-svc"}, 2, "nothing to change"},
		{[]string{"clients", "add", "x", "--scope", "a", "--metadata", "novalue"}, 2, "key=value"},
	} {
		if _, errOut, code := cli(t, g, tc.args...); code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, want %d; stderr %s", tc.args, code, tc.code, errOut)
		}
	}

	// remove: the client's secret is refused afterwards.
	if out, _, code := cli(t, g, "clients", "remove", "cli-svc"); code != 0 || !strings.Contains(out, "removed") {
		t.Errorf("remove: exit %d %s", code, out)
	}
	if status, _ := tokenAt(t, g, "cli-svc", m[1], url.Values{"grant_type": {"client_credentials"}}); status != http.StatusUnauthorized {
		t.Errorf("a removed client's secret: %d", status)
	}

	// Nothing listens at the address: 1.
	cmd := exec.Command(caddyBin, "oauth", "clients", "list", "--address", "localhost:1")
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != 1 {
		t.Errorf("no admin API: %v", err)
	}
}
