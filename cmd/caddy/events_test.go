package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(eventRecorder{})
}

// recorded is what eventRecorder saw, across the configs of this process.
var recorded struct {
	sync.Mutex
	events []caddy.Event
}

// eventRecorder is an `events` handler for the tests: it keeps each event.
type eventRecorder struct{}

func (eventRecorder) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "events.handlers.oauth_test_recorder", New: func() caddy.Module { return new(eventRecorder) }}
}

func (eventRecorder) Handle(_ context.Context, e caddy.Event) error {
	recorded.Lock()
	defer recorded.Unlock()
	recorded.events = append(recorded.events, e)
	return nil
}

// TestSecurityEventsReachSubscribers: the token endpoint's security events
// are Caddy events (oauth.token_issued, oauth.token_refused) that an
// `events` subscription receives, with the client, grant, error and
// remote address, and never the secret.
func TestSecurityEventsReachSubscribers(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a config into an in-process Caddy")
	}
	port := freePort(t)
	caddyfile := refusalCaddyfile(t, t.TempDir(), "issuer https://localhost:9443\n"+okClient, "oauth_server")
	cfgJSON, _, err := adapt(caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	apps := cfg["apps"].(map[string]any)
	apps["events"] = map[string]any{"subscriptions": []any{map[string]any{
		"events":   []string{"oauth.token_issued", "oauth.token_refused"},
		"handlers": []any{map[string]any{"handler": "oauth_test_recorder"}},
	}}}
	srv := apps["http"].(map[string]any)["servers"].(map[string]any)
	for _, s := range srv {
		s.(map[string]any)["listen"] = []string{fmt.Sprintf("127.0.0.1:%d", port)}
	}
	out, _ := json.Marshal(cfg)
	if err := loadJSON(t, out); err != nil {
		t.Fatal(err)
	}
	recorded.Lock()
	recorded.events = nil
	recorded.Unlock()

	tokenURL := fmt.Sprintf("http://localhost:%d/oauth2/token", port)
	post := func(secret string) int {
		req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("reports-service", secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK && !strings.Contains(string(b), "invalid_client") {
			t.Errorf("answer %d %s", resp.StatusCode, b)
		}
		return resp.StatusCode
	}
	if st := post("reports-demo-secret-not-for-production"); st != http.StatusOK {
		t.Fatalf("token: %d", st)
	}
	if st := post("wrong-secret-value"); st != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d", st)
	}

	recorded.Lock()
	defer recorded.Unlock()
	if len(recorded.events) != 2 {
		t.Fatalf("%d events, want 2: %v", len(recorded.events), recorded.events)
	}
	issued, refused := recorded.events[0], recorded.events[1]
	if issued.Name() != "oauth.token_issued" || issued.Data["client_id"] != "reports-service" || issued.Data["grant"] != "client_credentials" || issued.Data["remote_ip"] == "" {
		t.Errorf("issued event %s %v", issued.Name(), issued.Data)
	}
	if refused.Name() != "oauth.token_refused" || refused.Data["error"] != "invalid_client" || refused.Data["client_id"] != "reports-service" {
		t.Errorf("refused event %s %v", refused.Name(), refused.Data)
	}
	for _, e := range recorded.events {
		b, _ := json.Marshal(e.Data)
		if strings.Contains(string(b), "secret") {
			t.Errorf("event %s carries a secret: %s", e.Name(), b)
		}
	}
}
