package caddyoauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyapigw/gateway/internal/oauthready"
	"github.com/caddyapigw/gateway/internal/oauthstore"
)

// readyTimeout bounds the readiness checks of one probe.
const readyTimeout = 3 * time.Second

// readyProbeKey is read (and never written) to see that the store answers.
const readyProbeKey = "readiness/probe"

// readyAnswer is the body of GET /oauth/ready.
type readyAnswer struct {
	Ready  bool                `json:"ready"`
	Checks []oauthready.Result `json:"checks"`
}

// handleReady is the admin API's readiness endpoint, for load balancers
// and Kubernetes readiness probes: 200 when the store answers, the signing
// keys are loaded and every issuer that oauth_scope routes trust has been
// reached (its keys fetched once); 503 naming the part that is not, and
// why. Liveness stays Caddy's own.
func handleReady(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(w, "GET, HEAD")
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	ans := readyAnswer{Ready: true}
	if a := activeApp.Load(); a != nil {
		ans.Checks = append(ans.Checks, a.readiness(ctx)...)
	}
	ans.Checks = append(ans.Checks, oauthready.Run(ctx)...)
	for _, c := range ans.Checks {
		ans.Ready = ans.Ready && c.Ready
	}
	status := http.StatusOK
	if !ans.Ready {
		status = http.StatusServiceUnavailable
	}
	return writeAdminJSON(w, status, ans)
}

// readiness checks the app's own parts: its store and its signing keys.
func (a *App) readiness(ctx context.Context) []oauthready.Result {
	store := oauthready.Result{Name: "store", Ready: true}
	if _, err := a.store.Get(ctx, readyProbeKey); err != nil && !errors.Is(err, oauthstore.ErrNotFound) {
		store.Ready, store.Error = false, fmt.Sprintf("the store does not answer: %v", err)
	}
	keys := oauthready.Result{Name: "signing keys", Ready: true}
	if a.keys == nil || a.keys.current.Load() == nil {
		keys.Ready, keys.Error = false, "no signing keyring loaded"
	}
	return []oauthready.Result{store, keys}
}
