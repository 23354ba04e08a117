package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestPAROpenIDClient: pushed authorization requests (RFC 9126) with a
// relying party nobody here wrote. The example's notes-web is made to
// require PAR: its plain authorization request is refused; openid-client
// v6 pushes the request (buildAuthorizationUrlWithPAR), the person signs
// in through the request_uri, the library redeems the code and validates
// the ID token; the same request_uri does not work a second time.
func TestPAROpenIDClient(t *testing.T) {
	npmInstallIn(t, oidcRPDir, "openid-client")
	p := newPorts(t)
	cfg := exampleCaddyfile(t, p)
	anchor := "\t\tclient notes-web {\n"
	if !strings.Contains(cfg, anchor) {
		t.Fatal("example notes-web client not found")
	}
	cfg = strings.Replace(cfg, anchor, anchor+"\t\t\trequire_pushed_authorization_requests\n", 1)
	g := startGateway(t, p, cfg, "")
	callback := g.url("/demo/callback")

	// A plain request of a client that must push: refused, back to the
	// client (its redirect URI is registered), with no code.
	plain := url.Values{"response_type": {"code"}, "client_id": {notesWeb.id}, "redirect_uri": {callback},
		"scope": {"openid"}, "state": {"x"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}}
	resp, _ := newPerson(t).get(g, "/oauth2/authorize?"+plain.Encode())
	loc, _ := resp.Location()
	if loc == nil || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("code") != "" {
		t.Fatalf("plain request of a PAR client: %d %v", resp.StatusCode, loc)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "par.js", "--issuer", g.url(""), "--client-id", notesWeb.id,
		"--client-secret", notesWeb.secret, "--redirect-uri", callback)
	cmd.Dir = oidcRPDir
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+g.rootCertPath())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	defer stdin.Close()
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	next := func(v any) {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("par.js ended: %v\n%s", lines.Err(), stderr.String())
		}
		if err := json.Unmarshal(lines.Bytes(), v); err != nil {
			t.Fatalf("par.js said %s", lines.Bytes())
		}
	}
	var start struct {
		AuthorizationURL string `json:"authorization_url"`
		PAREndpoint      string `json:"par_endpoint"`
		Error            string `json:"error"`
	}
	next(&start)
	if start.Error != "" {
		t.Fatalf("openid-client could not push: %s", start.Error)
	}
	au, _ := url.Parse(start.AuthorizationURL)
	if au == nil || !strings.HasPrefix(au.Query().Get("request_uri"), "urn:ietf:params:oauth:request_uri:") || au.Query().Has("redirect_uri") || au.Query().Has("code_challenge") {
		t.Fatalf("authorization URL %s: want client_id and request_uri only", start.AuthorizationURL)
	}
	back := newPerson(t).signInAt(g, start.AuthorizationURL)
	if _, err := io.WriteString(stdin, back.String()+"\n"); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Claims map[string]any `json:"claims"`
		Error  string         `json:"error"`
		Cause  string         `json:"cause"`
	}
	next(&res)
	if res.Error != "" || res.Claims["sub"] != demoUser || res.Claims["aud"] != notesWeb.id {
		t.Fatalf("openid-client after PAR: claims %v, error %s (cause %s)", res.Claims, res.Error, res.Cause)
	}
	// §4: the request_uri yielded its code; it is gone.
	again, page := newPerson(t).get(g, au.RequestURI())
	if again.StatusCode != http.StatusBadRequest || !strings.Contains(page, "expired or was already used") {
		t.Fatalf("request_uri used twice: %d", again.StatusCode)
	}
	t.Logf("openid-client v6: pushed to %s, signed in %v through the request_uri", start.PAREndpoint, res.Claims["sub"])
}
