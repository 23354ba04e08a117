package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/caddyapigw/gateway/internal/testredis"
)

// TestRedisLostWhileRunning stops redis-server under a bounded load and
// starts it again. While it is gone: API calls with JWTs keep working (they
// need no store), Caddyfile clients still get tokens, a store-kept client
// the gateway has not seen gets 503 temporarily_unavailable, the admin API
// answers 503. When it is back, everything recovers by itself and the
// keyring is the same.
func TestRedisLostWhileRunning(t *testing.T) {
	needBinary(t)
	rds := testredis.StartPersistent(t)
	p := newPorts(t)
	g := startGateway(t, p, clusterCaddyfile(t, p, "https://localhost:"+strconv.Itoa(p.https), rds.URL(0)), "")

	createClient := func(id string) demoClient {
		t.Helper()
		resp, err := http.Post(g.adminURL("/oauth/clients"), "application/json",
			strings.NewReader(`{"client_id":"`+id+`","scopes":["user:read"]}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var c struct {
			Secret string `json:"client_secret"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("create %s: %d %v", id, resp.StatusCode, err)
		}
		return demoClient{id, c.Secret}
	}
	seen, unseen := createClient("seen-service"), createClient("unseen-service")
	seenTok := g.token(seen)
	gold := g.token(goldClient)
	_, _, jwksBefore := g.do("GET", "/oauth2/jwks", "", nil)

	// Load through the whole outage, bounded in count and time; stopped
	// explicitly once recovery is checked.
	const maxLoad = 900 // under the gold tier's 1000 requests a minute
	l := g.startLoad("/api/notes", gold, 2, maxLoad, 30*time.Second, 20*time.Millisecond)
	defer l.stop()

	for l.sent.Load() < 50 {
		time.Sleep(5 * time.Millisecond)
	}
	rds.Stop()
	sentAtStop := l.sent.Load()
	time.Sleep(1200 * time.Millisecond) // past the client cache's lifetime

	if _, err := g.ccConfig(reportsClient, oauth2.AuthStyleInHeader).Token(g.ctx()); err != nil {
		t.Errorf("Caddyfile client during the outage: %v", err)
	}
	if _, err := g.ccConfig(seen, oauth2.AuthStyleInHeader).Token(g.ctx()); err != nil {
		t.Errorf("client seen before the outage: %v", err)
	}
	if status, _, body := g.do("GET", "/api/users", seenTok, nil); status != http.StatusOK {
		t.Errorf("token of a client seen before the outage: %d %s", status, body)
	}
	_, err := g.ccConfig(unseen, oauth2.AuthStyleInHeader).Token(g.ctx())
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable || re.ErrorCode != "temporarily_unavailable" || re.Response.Header.Get("Retry-After") == "" {
		t.Errorf("unseen store client during the outage: %v", err)
	}
	if resp, err := http.Get(g.adminURL("/oauth/clients")); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("admin API during the outage: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}

	sentAtRestart := l.sent.Load()
	if sentAtRestart <= sentAtStop || sentAtRestart >= maxLoad {
		t.Fatalf("the load did not run through the outage (sent %d at stop, %d at restart)", sentAtStop, sentAtRestart)
	}
	rds.Restart(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := g.ccConfig(unseen, oauth2.AuthStyleInHeader).Token(g.ctx())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery 15s after Redis came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if resp, err := http.Get(g.adminURL("/oauth/clients")); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("admin API after recovery: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if _, _, jwksAfter := g.do("GET", "/oauth2/jwks", "", nil); string(jwksAfter) != string(jwksBefore) {
		t.Errorf("keyring changed across the outage:\n%s\n%s", jwksBefore, jwksAfter)
	}

	sentAtEnd := l.sent.Load()
	l.stop()
	if sentAtEnd <= sentAtRestart {
		t.Fatalf("the load ended before Redis came back (%d sent)", sentAtEnd)
	}
	got := l.outcomes.snapshot()
	if len(got) != 1 || got["200"] == 0 {
		t.Fatalf("API calls during the outage: %v (want only 200s)", got)
	}
	t.Logf("API calls across the outage: %v; Redis down from request %d to %d", got, sentAtStop, sentAtRestart)
}
