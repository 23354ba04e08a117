package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestPrometheusScrapesGateway: a real Prometheus server (Debian's
// `prometheus` package) scrapes the gateway's /metrics, and its query API
// returns oauth_scope's and the token endpoint's series: the exposition is
// valid for the real thing, not only for this repository's parser.
func TestPrometheusScrapesGateway(t *testing.T) {
	needBinary(t)
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not on the PATH (Debian: apt-get install prometheus; .ci/run installs it)")
	}
	g := startExample(t)
	tok := g.token(reportsClient)
	g.do("GET", "/api/users", "", nil)
	g.do("GET", "/api/users/1", tok, nil)
	g.do("GET", "/api/users/1", tok, nil) // from oauth_scope's cache

	admin, _ := url.Parse(g.adminURL("/"))
	prom := startPrometheus(t, bin, admin.Host)
	query := prom.count
	queries := []string{
		`oauth_scope_decisions_total{outcome="refused",reason="missing"}`,
		`oauth_scope_decisions_total{outcome="accepted"}`,
		`oauth_token_issued_total{client="reports-service"}`,
		`oauth_scope_validation_seconds_bucket`,
		`oauth_scope_cache_total{result="hit"} > 0`,
		`oauth_signins_total{result="success"}`,
		`oauth_refresh_tokens_total{result="reuse_detected"}`,
		`oauth_signing_key_age_seconds >= 0`,
		`up{job="gateway"} == 1`,
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, q := range queries {
		for {
			n, err := query(q)
			if err == nil && n > 0 {
				break
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(filepath.Join(prom.dir, "prometheus.log"))
				t.Fatalf("Prometheus has no series for %s (last error %v); its log:\n%s", q, err, log)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// promServer is a real Prometheus server scraping one target every second.
type promServer struct {
	t    *testing.T
	port int
	dir  string
}

// startPrometheus starts bin scraping target (host:port, path /metrics),
// listening on 127.0.0.1; it is killed when the test ends.
func startPrometheus(t *testing.T, bin, target string) *promServer {
	t.Helper()
	dir := t.TempDir()
	port := freePorts(t, 1)[0]
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: gateway
    metrics_path: /metrics
    static_configs:
      - targets: ["%s"]
`, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port), "--log.level=warn")
	logFile, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
	})
	return &promServer{t: t, port: port, dir: dir}
}

// api sends a query API request and decodes its data.
func (p *promServer) api(path string, params url.Values, data any) error {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s?%s", p.port, path, params.Encode()))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ans struct {
		Status string
		Data   json.RawMessage
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.Status != "success" {
		return fmt.Errorf("%s %s: %s", path, params.Get("query"), body)
	}
	return json.Unmarshal(ans.Data, data)
}

// count runs an instant query and returns how many series it returned.
func (p *promServer) count(q string) (int, error) {
	var data struct{ Result []json.RawMessage }
	if err := p.api("/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return 0, err
	}
	return len(data.Result), nil
}

// waitUp waits (at most 30 s) until Prometheus has scraped the target.
func (p *promServer) waitUp() {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n, err := p.count(`up{job="gateway"} == 1`); err == nil && n > 0 {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(p.dir, "prometheus.log"))
			p.t.Fatalf("Prometheus did not scrape the gateway; its log:\n%s", log)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
