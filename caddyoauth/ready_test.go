package caddyoauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyapigw/gateway/internal/oauthready"
)

// downStore is a store that does not answer.
type downStore struct{ Store }

func (downStore) Get(context.Context, string) ([]byte, error) {
	return nil, errors.New("connection refused")
}

// ready asks the readiness endpoint.
func ready(t *testing.T) (int, readyAnswer) {
	t.Helper()
	rec := httptest.NewRecorder()
	err := handleReady(rec, httptest.NewRequest(http.MethodGet, "/oauth/ready", nil))
	if err != nil {
		t.Fatal(err)
	}
	var ans readyAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	return rec.Code, ans
}

// TestReadiness: 200 when the store answers, the keys are loaded and every
// registered part (other issuers) is ready; 503 naming the part that is
// not, and why.
func TestReadiness(t *testing.T) {
	app := newApp(t, baseConfig())
	activeApp.Store(app)
	t.Cleanup(func() { activeApp.CompareAndSwap(app, nil) })

	if code, ans := ready(t); code != http.StatusOK || !ans.Ready || len(ans.Checks) != 2 {
		t.Fatalf("healthy: %d %+v", code, ans)
	}

	off := oauthready.Register("issuer https://idp.example", func(context.Context) error { return errors.New("metadata discovery: connection refused") })
	code, ans := ready(t)
	off()
	if code != http.StatusServiceUnavailable || ans.Ready {
		t.Fatalf("issuer down: %d %+v", code, ans)
	}
	if last := ans.Checks[len(ans.Checks)-1]; last.Name != "issuer https://idp.example" || last.Ready || !strings.Contains(last.Error, "connection refused") {
		t.Errorf("issuer check %+v", last)
	}

	good := app.store
	app.store = downStore{good}
	code, ans = ready(t)
	app.store = good
	if code != http.StatusServiceUnavailable || ans.Checks[0].Name != "store" || ans.Checks[0].Ready {
		t.Fatalf("store down: %d %+v", code, ans)
	}

	rec := httptest.NewRecorder()
	if err := handleReady(rec, httptest.NewRequest(http.MethodPost, "/oauth/ready", nil)); err == nil {
		t.Error("POST accepted")
	}
}
