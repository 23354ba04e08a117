package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// jwksKids is the sorted list of kids g publishes.
func (g *gateway) jwksKids() []string {
	g.t.Helper()
	status, _, body := g.do("GET", "/oauth2/jwks", "", nil)
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &set) != nil {
		g.t.Fatalf("JWKS: %d %s", status, body)
	}
	kids := make([]string, 0, len(set.Keys))
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

// TestRedisRestartedEmptyKeepsKeys (issue 15, item 4): two gateways share
// a Redis that is restarted EMPTY (no persistence), then one gateway's
// config is reloaded. Before the fix that reload minted a new keyring,
// which the other gateway followed within seconds, and every token issued
// before was refused on both. Now the reloaded gateway writes back the
// keyring it held, says so at error level, and nothing changes: tokens
// issued before are accepted on both gateways, the JWKS kids are the
// same. Then A is pointed at another database of the same Redis, a
// different, fresh store: it gets a keyring of its own, not A's old keys.
func TestRedisRestartedEmptyKeepsKeys(t *testing.T) {
	needBinary(t)
	c := startCluster(t)
	a, b := c.a, c.b
	tokA := a.token(reportsClient)
	tokB := b.token(provisioningClient)
	kid := jwtKid(t, tokA)
	kidsBefore := a.jwksKids()

	c.rds.Stop()
	c.rds.Restart(t) // --save "" --appendonly no: it comes back empty
	a.reload(withGeneration(t, a.config))
	// Every answer during and after the reload is 200 with the old token.
	a.awaitGeneration("/api/users", tokA)

	if !a.logContains("lost the signing keyring") || !a.logContains(`"active_kid":"`+kid+`"`) {
		a.dumpLog()
		t.Errorf("no error line naming kid %s in A's log", kid)
	}
	if a.logContains("PRIVATE KEY") {
		t.Error("A's log carries key material")
	}
	// B's refresh loop (30 s) and its unknown-kid read (5 s) would have
	// followed a new keyring; wait past the latter and check both.
	time.Sleep(6 * time.Second)
	for name, g := range map[string]*gateway{"A": a, "B": b} {
		for _, tk := range []string{tokA, tokB} {
			if status, _, body := g.do("GET", "/api/users", tk, nil); status != http.StatusOK {
				t.Errorf("%s refused a token issued before Redis lost its data: %d %s", name, status, body)
			}
		}
		if kids := g.jwksKids(); !slices.Equal(kids, kidsBefore) {
			t.Errorf("%s publishes %v, want the kids from before %v", name, kids, kidsBefore)
		}
	}
	fresh := a.token(reportsClient)
	if jwtKid(t, fresh) != kid {
		t.Errorf("A signs with %s after the reload, want %s", jwtKid(t, fresh), kid)
	}
	if status, _, body := b.do("GET", "/api/users", fresh, nil); status != http.StatusOK {
		t.Errorf("B refused A's new token: %d %s", status, body)
	}

	// A different store (database 1 of the same Redis) is fresh: A makes
	// a keyring of its own there and does not carry its old keys over.
	other := strings.Replace(a.config, c.rds.URL(0), c.rds.URL(1), 1)
	if other == a.config {
		t.Fatal("could not point A at database 1")
	}
	a.reload(other)
	deadline := time.Now().Add(5 * time.Second)
	for slices.Equal(a.jwksKids(), kidsBefore) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	kidsOther := a.jwksKids()
	if slices.ContainsFunc(kidsOther, func(k string) bool { return slices.Contains(kidsBefore, k) }) {
		t.Errorf("a fresh store inherited keys: before %v, now %v", kidsBefore, kidsOther)
	}
}
