package caddyoauth

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// TestScheduledRotation: with rotate_every, a key older than the period is
// replaced by exactly one of the instances sharing the store (however many
// check at once); tokens signed before stay valid and the JWKS publishes
// both keys (issue 6: "rotation keeps old tokens valid and JWKS shows both
// keys"); a younger key is left alone.
func TestScheduledRotation(t *testing.T) {
	storage := newStorage(t)
	cfg := func() *App {
		c := baseConfig()
		c.SigningKey = &SigningKeyConfig{RotateEvery: caddy.Duration(48 * time.Hour)}
		return c
	}
	apps := []*App{provisionApp(t, cfg(), storage), provisionApp(t, cfg(), storage), provisionApp(t, cfg(), storage)}
	ctx := context.Background()
	old := decodeTokenResponse(t, basicToken(t, newServer(t, apps[0], ""), svcID, svcSecret, ccForm()))
	firstKid := apps[0].Keyring().Active().ID

	if rotated, err := apps[0].keys.rotateIfDue(ctx, time.Now().Add(47*time.Hour)); err != nil || rotated {
		t.Fatalf("a 47h-old key rotated (%v, %v) with rotate_every 48h", rotated, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	count := 0
	for _, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rotated, err := a.keys.rotateIfDue(ctx, time.Now().Add(49*time.Hour))
			if err != nil {
				t.Error(err)
			}
			if rotated {
				mu.Lock()
				count++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if count != 1 {
		t.Fatalf("%d instances rotated, want exactly 1", count)
	}
	for i, a := range apps {
		if err := a.keys.refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if a.Keyring().Active().ID == firstKid {
			t.Errorf("instance %d still signs with the old key", i)
		}
		if _, err := a.Verifier().Verify(old.AccessToken); err != nil {
			t.Errorf("instance %d refuses a token signed before the rotation: %v", i, err)
		}
		jwks, _ := json.Marshal(a.Keyring().JWKS())
		if !strings.Contains(string(jwks), firstKid) || len(a.Keyring().Keys()) != 2 {
			t.Errorf("instance %d JWKS %s: want the old and the new key", i, jwks)
		}
	}
}

// TestRotateEveryRefused: a period shorter than the longest token lifetime,
// or with a key from a file, is refused at load.
func TestRotateEveryRefused(t *testing.T) {
	for _, sk := range []*SigningKeyConfig{
		{RotateEvery: caddy.Duration(time.Hour)},
		{RotateEvery: caddy.Duration(72 * time.Hour), File: "/etc/key.pem"},
	} {
		a := baseConfig()
		a.SigningKey = sk
		err := a.provision(context.Background(), newStorage(t), zap.NewNop())
		if err == nil || !strings.Contains(err.Error(), "rotate_every") {
			t.Errorf("%+v: %v, want a rotate_every refusal", sk, err)
		}
	}
}
