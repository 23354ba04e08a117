package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyapigw/gateway/internal/testredis"
)

// clusterCaddyfile derives the example for one member of a cluster: its own
// ports and Caddy storage, the shared issuer, and the shared Redis store.
func clusterCaddyfile(t *testing.T, p ports, issuer, redisURL string) string {
	t.Helper()
	cfg := exampleCaddyfile(t, p)
	own := "issuer https://localhost:" + strconv.Itoa(p.https)
	if !strings.Contains(cfg, own) {
		t.Fatal("example issuer line not found")
	}
	cfg = strings.Replace(cfg, own, "issuer "+issuer+"\n\t\tstore redis "+redisURL, 1)
	// The APIs' resource identifiers (RFC 8707) are the cluster's public
	// names, one for every member, as behind one load balancer.
	host := "https://localhost:" + strconv.Itoa(p.https)
	cfg = strings.ReplaceAll(cfg, host+"/api/", issuer+"/api/")
	return strings.ReplaceAll(cfg, " "+host+"\n", " "+issuer+"\n")
}

// cluster is two gateways, A and B, with their own ports and Caddy storage,
// one issuer, and one real redis-server as their store.
type cluster struct {
	rds    *testredis.Server
	pa     ports
	issuer string
	a, b   *gateway
}

func startCluster(t *testing.T) cluster {
	t.Helper()
	needBinary(t)
	c := cluster{rds: testredis.Start(t), pa: newPorts(t)}
	pb := newPorts(t)
	c.issuer = "https://localhost:" + strconv.Itoa(c.pa.https)
	c.a = startGateway(t, c.pa, clusterCaddyfile(t, c.pa, c.issuer, c.rds.URL(0)), "")
	c.b = startGateway(t, pb, clusterCaddyfile(t, pb, c.issuer, c.rds.URL(0)), "")
	return c
}

// TestClusterSharesKeysThroughRedis: two gateways with separate Caddy
// storage and one Redis sign and verify with one keyring: a token from A is
// accepted by B, and both publish the same JWKS.
func TestClusterSharesKeysThroughRedis(t *testing.T) {
	needBinary(t)
	c := startCluster(t)
	a, b := c.a, c.b

	tok := a.token(reportsClient)
	if status, _, body := b.do("GET", "/api/users", tok, nil); status != http.StatusOK {
		t.Fatalf("B refused A's token: %d %s", status, body)
	}
	tokB := b.token(provisioningClient)
	if status, _, body := a.do("POST", "/api/users", tokB, nil); status != http.StatusOK {
		t.Fatalf("A refused B's token: %d %s", status, body)
	}
	_, _, jwksA := a.do("GET", "/oauth2/jwks", "", nil)
	_, _, jwksB := b.do("GET", "/oauth2/jwks", "", nil)
	if string(jwksA) != string(jwksB) || !strings.Contains(string(jwksA), `"kid"`) {
		t.Fatalf("JWKS differ:\nA %s\nB %s", jwksA, jwksB)
	}

	// Rotate the signing key through A's admin API: A signs with the new
	// key at once, B learns it from Redis on the first such token, and
	// tokens signed before stay valid on both.
	resp, err := http.Post(a.adminURL("/oauth/keys/rotate"), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var rotated struct {
		ActiveKid string           `json:"active_kid"`
		Keys      []map[string]any `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rotated); err != nil || resp.StatusCode != http.StatusOK || len(rotated.Keys) != 2 {
		t.Fatalf("rotate: %d %+v %v", resp.StatusCode, rotated, err)
	}
	resp.Body.Close()
	fresh := a.token(reportsClient)
	if kid := jwtKid(t, fresh); kid != rotated.ActiveKid {
		t.Fatalf("A signs with %s after rotating to %s", kid, rotated.ActiveKid)
	}
	for name, g := range map[string]*gateway{"A": a, "B": b} {
		for _, tk := range []string{tok, fresh} {
			if status, _, body := g.do("GET", "/api/users", tk, nil); status != http.StatusOK {
				t.Fatalf("%s after rotation: %d %s", name, status, body)
			}
		}
	}

	// A reload of B (new Redis client, old one closed) keeps the keyring.
	b.reload(withGeneration(t, b.config))
	b.awaitGeneration("/api/users", tok)

	// A restart of A with fresh Caddy storage still knows the keyring: it
	// lives in Redis, not on A's disk.
	a.stop()
	a2 := startGateway(t, c.pa, clusterCaddyfile(t, c.pa, c.issuer, c.rds.URL(0)), "")
	if status, _, body := a2.do("GET", "/api/users", tok, nil); status != http.StatusOK {
		t.Fatalf("restarted A with empty storage refused its old token: %d %s", status, body)
	}
}

// TestRedisUnreachableAtStart: a gateway whose Redis does not answer
// refuses to start, and says which Redis, without the password.
func TestRedisUnreachableAtStart(t *testing.T) {
	needBinary(t)
	p := newPorts(t)
	dead := freePorts(t, 1)[0]
	cfg := clusterCaddyfile(t, p, "https://localhost:"+strconv.Itoa(p.https), "redis://:topsecretpw@127.0.0.1:"+strconv.Itoa(dead)+"/0")
	home := t.TempDir()
	cfgPath := filepath.Join(home, "Caddyfile")
	mustWriteFile(t, cfgPath, cfg)
	cmd := exec.Command(caddyBin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	cmd.Env = append(cmd.Environ(), "XDG_DATA_HOME="+filepath.Join(home, "data"), "XDG_CONFIG_HOME="+filepath.Join(home, "config"), "HOME="+home)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("caddy started without its Redis")
	}
	want := "redis at 127.0.0.1:" + strconv.Itoa(dead) + " does not answer"
	if !strings.Contains(string(out), want) {
		t.Errorf("output lacks %q:\n%s", want, lastLines(string(out), 5))
	}
	if strings.Contains(string(out), "topsecretpw") {
		t.Error("the Redis password appears in the output")
	}
}

// jwtKid reads the kid of a JWT's header, unverified.
func jwtKid(t *testing.T, tok string) string {
	t.Helper()
	seg, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestClusterAdminClients: a client created through A's admin API gets
// tokens from B; revoking its tokens at A makes B refuse them within about
// a second; deleting it at A stops B from issuing to it.
func TestClusterAdminClients(t *testing.T) {
	needBinary(t)
	c := startCluster(t)
	a, b := c.a, c.b

	resp, err := http.Post(a.adminURL("/oauth/clients"), "application/json",
		strings.NewReader(`{"client_id":"billing-service","name":"Billing","scopes":["user:read"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Secret string `json:"client_secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != http.StatusCreated || created.Secret == "" {
		t.Fatalf("create at A: %d %+v %v", resp.StatusCode, created, err)
	}
	resp.Body.Close()
	billing := demoClient{"billing-service", created.Secret}

	tok := b.token(billing) // issued by B for a client made at A
	for name, g := range map[string]*gateway{"A": a, "B": b} {
		status, _, body := g.do("GET", "/api/users", tok, nil)
		if status != http.StatusOK {
			t.Fatalf("%s refused the admin-created client's token: %d %s", name, status, body)
		}
		if e := decodeEcho(t, body); len(e.ClientID) != 1 || e.ClientID[0] != "billing-service" || e.ClientName != "Billing" {
			t.Fatalf("%s: upstream saw %+v", name, e)
		}
	}

	resp, err = http.Post(a.adminURL("/oauth/clients/billing-service/revoke"), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke at A: %d", resp.StatusCode)
	}
	revokedAt := time.Now()
	for {
		status, h, _ := b.do("GET", "/api/users", tok, nil)
		if status == http.StatusUnauthorized && strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Logf("B refused the revoked token after %v", time.Since(revokedAt).Round(time.Millisecond))
			break
		}
		if time.Since(revokedAt) > 2*time.Second {
			t.Fatalf("B still accepts a token revoked at A %v ago (status %d)", time.Since(revokedAt), status)
		}
		time.Sleep(50 * time.Millisecond)
	}

	req, _ := http.NewRequest("DELETE", a.adminURL("/oauth/clients/billing-service"), nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete at A: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, err := b.ccConfig(billing, 0).Token(b.ctx())
		if err != nil && strings.Contains(err.Error(), "invalid_client") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B still issues tokens to a client deleted at A: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
