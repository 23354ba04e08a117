// Package e2e runs the gateway as users run it: a caddy binary built from
// ./cmd/caddy, started as a separate process with a Caddyfile derived from
// Caddyfile.example (only ports and storage changed), called over HTTPS
// through Caddy's internal CA by real client libraries.
//
// With E2E_CADDY set, the tests run that binary instead of building one;
// .ci/test sets it to its xcaddy build of the module (the README's plugin
// build), so the tests cover what users build and Caddy is not compiled
// once more.
//
// This directory is a module of its own (e2e/go.mod), so that what only
// these tests use (the chromedp browser driver) stays out of the module
// graph of those who build the gateway.
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// caddyBin is the binary built once for the whole package, or the one
// E2E_CADDY names.
var caddyBin string

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if testing.Short() {
			return m.Run()
		}
		if bin := os.Getenv("E2E_CADDY"); bin != "" {
			abs, err := filepath.Abs(bin)
			if err != nil {
				fmt.Fprintln(os.Stderr, "E2E_CADDY:", err)
				return 1
			}
			caddyBin = abs
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "gateway-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		caddyBin = filepath.Join(dir, "caddy")
		build := exec.Command("go", "build", "-o", caddyBin, "./cmd/caddy")
		build.Dir = ".."
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building cmd/caddy:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func needBinary(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: runs a real caddy process; skipped with -short")
	}
}

// ports of one gateway instance; they replace those of Caddyfile.example.
type ports struct {
	https, http, admin, upstream int
}

// gateway is one running caddy process.
type gateway struct {
	t       *testing.T
	ports   ports
	home    string // XDG_DATA_HOME and XDG_CONFIG_HOME live here
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	client  *http.Client // trusts the gateway's internal CA, no redirects
	config  string       // the Caddyfile it was started with
}

// Ports for test servers come from below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range, 32768 and up by default), so an outgoing
// connection cannot take a port between the moment it is chosen and the
// moment caddy binds it; and none is handed out twice in one run, since a
// restart test binds the same ports again later.
const (
	portRangeLow  = 20000
	portRangeHigh = 32000
)

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
	portNext  = portRangeLow + os.Getpid()%(portRangeHigh-portRangeLow)
)

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	var out []int
	for tries := 0; len(out) < n; tries++ {
		if tries > portRangeHigh-portRangeLow {
			t.Fatal("no free port for a test server")
		}
		p := portNext
		portNext++
		if portNext >= portRangeHigh {
			portNext = portRangeLow
		}
		if portsUsed[p] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		portsUsed[p] = true
		out = append(out, p)
	}
	return out
}

func newPorts(t *testing.T) ports {
	p := freePorts(t, 4)
	return ports{https: p[0], http: p[1], admin: p[2], upstream: p[3]}
}

// exampleCaddyfile returns Caddyfile.example with its ports replaced.
func exampleCaddyfile(t *testing.T, p ports) string {
	t.Helper()
	b, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	return derive(t, string(b), p)
}

// derive swaps the example's ports (8443, 8080, 2019, 3001) for p's. Each
// must occur, so a change to the example cannot silently detach the tests.
func derive(t *testing.T, cfg string, p ports) string {
	t.Helper()
	for _, r := range []struct {
		from string
		to   int
	}{{"8443", p.https}, {"8080", p.http}, {"2019", p.admin}, {"3001", p.upstream}} {
		if !strings.Contains(cfg, r.from) {
			t.Fatalf("Caddyfile.example no longer mentions port %s", r.from)
		}
		cfg = strings.ReplaceAll(cfg, r.from, strconv.Itoa(r.to))
	}
	return cfg
}

// startGateway runs caddy with cfg. home keeps storage across restarts;
// pass "" for a fresh one.
func startGateway(t *testing.T, p ports, cfg, home string) *gateway {
	t.Helper()
	needBinary(t)
	if home == "" {
		home = t.TempDir()
	}
	cfgPath := filepath.Join(home, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, ports: p, home: home, config: cfg, done: make(chan struct{})}
	g.logPath = filepath.Join(home, fmt.Sprintf("caddy-%d.log", time.Now().UnixNano()))
	logFile, err := os.Create(g.logPath)
	if err != nil {
		t.Fatal(err)
	}
	g.cmd = exec.Command(caddyBin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	g.cmd.Env = append(os.Environ(),
		"XDG_DATA_HOME="+filepath.Join(home, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"HOME="+home,
	)
	g.cmd.Stdout, g.cmd.Stderr = logFile, logFile
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = g.cmd.Wait()
		logFile.Close()
		close(g.done)
	}()
	t.Cleanup(func() {
		g.stop()
		g.logMustNotLeak(t)
		if t.Failed() {
			g.dumpLog()
		}
	})
	g.waitReady()
	return g
}

// waitReady polls /health over HTTPS until it answers, trusting the root
// certificate of the instance's internal CA once it exists.
func (g *gateway) waitReady() {
	g.t.Helper()
	rootPath := filepath.Join(g.home, "data", "caddy", "pki", "authorities", "local", "root.crt")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-g.done:
			g.dumpLog()
			g.t.Fatal("caddy exited during start")
		default:
		}
		if g.client == nil {
			if pem, err := os.ReadFile(rootPath); err == nil {
				pool := x509.NewCertPool()
				if pool.AppendCertsFromPEM(pem) {
					g.client = newClient(pool)
				}
			}
		}
		if g.client != nil {
			resp, err := g.client.Get(g.url("/health"))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.dumpLog()
	g.t.Fatal("gateway did not become ready in 30s")
}

func newClient(pool *x509.CertPool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 64,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (g *gateway) url(path string) string {
	return fmt.Sprintf("https://localhost:%d%s", g.ports.https, path)
}

func (g *gateway) adminURL(path string) string {
	return fmt.Sprintf("http://localhost:%d%s", g.ports.admin, path)
}

// stop ends the process: a graceful SIGINT, then a kill after 10s.
func (g *gateway) stop() {
	select {
	case <-g.done:
		return
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
}

func (g *gateway) dumpLog() {
	b, err := os.ReadFile(g.logPath)
	if err != nil {
		return
	}
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	g.t.Logf("caddy log (tail):\n%s", b)
}

// logContains reports whether the process log contains s.
func (g *gateway) logContains(s string) bool {
	b, _ := os.ReadFile(g.logPath)
	return bytes.Contains(b, []byte(s))
}

// do sends a request with an optional bearer token and returns status,
// headers and body.
func (g *gateway) do(method, path, token string, hdr map[string]string) (int, http.Header, []byte) {
	g.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, g.url(path), nil)
	if err != nil {
		g.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header[k] = append(req.Header[k], v) // keep non-canonical names as sent
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// demo clients of Caddyfile.example, with the secrets the README documents.
var (
	reportsClient      = demoClient{"reports-service", "reports-demo-secret-not-for-production"}
	provisioningClient = demoClient{"provisioning-service", "provisioning-demo-secret-not-for-production"}
	goldClient         = demoClient{"partner-gold", "partner-demo-secret-not-for-production"}
)

type demoClient struct{ id, secret string }

// counter is a tally of outcomes shared by load goroutines.
type counter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *counter) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = make(map[string]int)
	}
	c.counts[k]++
}

func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

func mustWriteFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// reload posts cfg to the instance's admin /load endpoint as a Caddyfile.
func (g *gateway) reload(cfg string) {
	g.t.Helper()
	req, _ := http.NewRequest("POST", g.adminURL("/load"), strings.NewReader(cfg))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("POST /load: %d %s", resp.StatusCode, body)
	}
}

// withGeneration marks a config so a reload is visible: every response
// of the gateway site carries X-Config-Generation: 2.
func withGeneration(t *testing.T, cfg string) string {
	t.Helper()
	changed := strings.Replace(cfg, "\toauth_server\n", "\toauth_server\n\theader X-Config-Generation 2\n", 1)
	if changed == cfg {
		t.Fatal("could not derive the changed config")
	}
	return changed
}

// awaitGeneration calls path with token until an answer comes from the
// config withGeneration made. Caddy reloads gracefully: a connection the
// old server accepted may still answer a request or two. Every answer must
// be 200, and the new config must answer within 5 s.
func (g *gateway) awaitGeneration(path, token string) {
	g.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, h, body := g.do("GET", path, token, nil)
		if status != http.StatusOK {
			g.t.Fatalf("after reload: status %d: %s", status, body)
		}
		if h.Get("X-Config-Generation") == "2" {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatal("after reload: the new config never answered (reload not applied?)")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// load sends GET requests with a bearer token from several goroutines,
// bounded in count and time, and tallies the outcomes.
type load struct {
	sent     atomic.Int64
	outcomes counter
	stopCh   chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

// startLoad runs workers until max requests were sent, until d passed, or
// until stop; each pauses between its requests.
func (g *gateway) startLoad(path, token string, workers, max int, d, pause time.Duration) *load {
	l := &load{stopCh: make(chan struct{})}
	deadline := time.Now().Add(d)
	for range workers {
		l.wg.Go(func() {
			for l.sent.Add(1) <= int64(max) && time.Now().Before(deadline) {
				select {
				case <-l.stopCh:
					return
				default:
				}
				req, _ := http.NewRequestWithContext(context.Background(), "GET", g.url(path), nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := g.client.Do(req)
				if err != nil {
					l.outcomes.add("error: " + err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				l.outcomes.add(fmt.Sprint(resp.StatusCode))
				time.Sleep(pause)
			}
		})
	}
	return l
}

// stop ends the load and waits for the workers; it may be called twice.
func (l *load) stop() {
	l.once.Do(func() { close(l.stopCh) })
	l.wg.Wait()
}
