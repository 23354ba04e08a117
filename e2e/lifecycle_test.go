package e2e

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestReloadUnderLoad: POST /load with a changed Caddyfile while a bounded
// load runs. No request may fail, a token issued before the reload is
// accepted after it, and rate-limit state carries over.
func TestReloadUnderLoad(t *testing.T) {
	g := startExample(t)
	gold := g.token(goldClient)
	reports := g.token(reportsClient)

	// 60 of the reports client's 100 requests a minute, before the reload.
	for range 60 {
		if status, _, body := g.do("GET", "/api/users", reports, nil); status != http.StatusOK {
			t.Fatalf("before reload: %d %s", status, body)
		}
	}

	const maxRequests = 700 // under the gold tier's 1000/min
	l := g.startLoad("/api/notes", gold, 4, maxRequests, 20*time.Second, 2*time.Millisecond)
	defer l.stop()

	// Reload once the load is under way.
	for l.sent.Load() < 150 {
		time.Sleep(5 * time.Millisecond)
	}
	sentAtReload := l.sent.Load()
	g.reload(withGeneration(t, g.config))
	sentAfterReload := l.sent.Load()
	l.wg.Wait()
	if sentAfterReload >= maxRequests {
		t.Fatalf("the load ended before the reload did (%d sent): it did not overlap", sentAfterReload)
	}
	t.Logf("reload ran while requests %d to %d were sent", sentAtReload, sentAfterReload)

	got := l.outcomes.snapshot()
	if len(got) != 1 || got["200"] == 0 {
		t.Fatalf("outcomes during reload: %v (want only 200s)", got)
	}
	t.Logf("requests during reload: %v", got)

	g.awaitGeneration("/api/notes", gold)
	// 40 more of reports' budget pass, then it is exhausted: the zone's
	// state survived the reload.
	var ok, limited int
	for range 60 {
		switch status, _, _ := g.do("GET", "/api/users", reports, nil); status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("status %d", status)
		}
	}
	if ok != 40 || limited != 20 {
		t.Fatalf("after reload: ok=%d limited=%d, want 40 and 20 (rate-limit state lost?)", ok, limited)
	}
}

// TestRestartKeepsTokens: stop the process and start it again on the same
// storage; a token issued before is still accepted (the keyring lives in
// Caddy storage).
func TestRestartKeepsTokens(t *testing.T) {
	needBinary(t)
	p := newPorts(t)
	home := t.TempDir()
	cfg := exampleCaddyfile(t, p)
	g := startGateway(t, p, cfg, home)
	tok := g.token(reportsClient)
	_, _, jwks1 := g.do("GET", "/oauth2/jwks", "", nil)
	g.stop()

	g2 := startGateway(t, p, cfg, home)
	if status, _, body := g2.do("GET", "/api/users", tok, nil); status != http.StatusOK {
		t.Fatalf("token from before the restart: %d %s", status, body)
	}
	_, _, jwks2 := g2.do("GET", "/oauth2/jwks", "", nil)
	if string(jwks1) != string(jwks2) {
		t.Errorf("JWKS changed across restart:\n%s\n%s", jwks1, jwks2)
	}
}

// TestSecretCommand: `caddy oauth-secret --client` prints a secret and a
// client block; pasted into the Caddyfile, the secret gets a token.
func TestSecretCommand(t *testing.T) {
	needBinary(t)
	out, err := exec.Command(caddyBin, "oauth-secret", "--client", "billing-service").Output()
	if err != nil {
		t.Fatal(err)
	}
	var secret, hash string
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "secret:"); ok {
			secret = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "secret_hash:"); ok {
			hash = strings.TrimSpace(v)
		}
	}
	if len(secret) != 43 || !strings.HasPrefix(hash, "sha256:") || !strings.Contains(string(out), "client billing-service {") {
		t.Fatalf("unexpected output:\n%s", out)
	}
	p := newPorts(t)
	cfg := exampleCaddyfile(t, p)
	block := "\t\tclient billing-service {\n\t\t\tsecret_hash " + hash + "\n\t\t\tscopes user:read\n\t\t}\n"
	cfg = strings.Replace(cfg, "\t\tclient reports-service {", block+"\t\tclient reports-service {", 1)
	g := startGateway(t, p, cfg, "")
	tok := g.token(demoClient{"billing-service", secret})
	if status, _, body := g.do("GET", "/api/users", tok, nil); status != http.StatusOK {
		t.Fatalf("%d %s", status, body)
	}
}

// TestBinaryModulesAndAdapt: the built binary lists the modules and adapts
// the example.
func TestBinaryModulesAndAdapt(t *testing.T) {
	needBinary(t)
	out, err := exec.Command(caddyBin, "list-modules").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"oauth", "http.handlers.oauth_server", "http.handlers.oauth_scope", "http.handlers.rate_limit"} {
		if !strings.Contains("\n"+string(out), "\n"+m+"\n") {
			t.Errorf("list-modules lacks %s", m)
		}
	}
	cmd := exec.Command(caddyBin, "adapt", "--config", "../Caddyfile.example", "--validate")
	cmd.Env = append(cmd.Environ(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("caddy adapt --validate Caddyfile.example: %v\n%s", err, out)
	}
}

// TestReloadRemovesClient: a client removed from the config by a reload
// loses its tokens at once, not when they expire; other clients keep theirs.
func TestReloadRemovesClient(t *testing.T) {
	g := startExample(t)
	reports := g.token(reportsClient)
	gold := g.token(goldClient)
	start := strings.Index(g.config, "\t\tclient reports-service {")
	end := strings.Index(g.config[start:], "\n\t\t}\n")
	if start < 0 || end < 0 {
		t.Fatal("reports-service block not found in the example")
	}
	g.reload(withGeneration(t, g.config[:start]+g.config[start+end+len("\n\t\t}\n"):]))
	// A connection the old config accepted may answer a request or two
	// (graceful reload); the first answer of the new config must refuse.
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, h, _ := g.do("GET", "/api/users", reports, nil)
		if h.Get("X-Config-Generation") == "2" {
			if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("removed client's token: status %d, challenge %q", status, h.Get("WWW-Authenticate"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reloaded config never answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status, _, body := g.do("GET", "/api/users", gold, nil); status != http.StatusOK {
		t.Errorf("other client's token after the reload: %d %s", status, body)
	}
}
