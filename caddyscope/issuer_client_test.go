package caddyscope

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// clientIssuer is a remoteIssuer that only calls: its client as
// newIssuerClient makes it, and a short timeout.
func clientIssuer(t *testing.T) *remoteIssuer {
	t.Helper()
	ri, err := newRemoteIssuer(resolvedIssuer{issuer: "https://idp.example", timeout: 300 * time.Millisecond, cacheSize: 16}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ri.Destruct() })
	return ri
}

// TestIssuerCall: what every call to an issuer gets, discovery and
// introspection alike: JSON asked for, the body of a 200 answer, a
// statusError otherwise, no redirect followed, bodies bounded, the
// timeout.
func TestIssuerCall(t *testing.T) {
	var hold chan struct{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write([]byte(r.Header.Get("Accept")))
		case "/down":
			http.Error(w, "down", http.StatusServiceUnavailable)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/large":
			_, _ = w.Write([]byte(strings.Repeat("x", maxDocumentSize+1)))
		case "/slow":
			select {
			case <-hold:
			case <-r.Context().Done():
			}
		}
	}))
	hold = make(chan struct{})
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hold) })
	ri := clientIssuer(t)
	call := func(path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ri.ctx, http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ri.call(req)
	}

	body, err := call("/ok")
	if err != nil || string(body) != "application/json" {
		t.Errorf("/ok: body %q, err %v; want the Accept header echoed", body, err)
	}
	tests := []struct {
		path, want string
		status     int // the statusError's, 0: none
	}{
		{"/down", "status 503", http.StatusServiceUnavailable},
		{"/redirect", "status 302", http.StatusFound},
		{"/large", errBodyTooLarge.Error(), 0},
		{"/slow", "", 0}, // a timeout: the call's deadline or the client's, whichever fires first
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			body, err := call(tt.path)
			if tt.want == "" {
				var ne net.Error
				if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()) {
					t.Fatalf("body %d bytes, err %v; want a timeout", len(body), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("body %d bytes, err %v; want an error with %q", len(body), err, tt.want)
			}
			var se *statusError
			if got := errors.As(err, &se); got != (tt.status != 0) || (got && se.status != tt.status) {
				t.Errorf("err %v: statusError %v, want status %d", err, got, tt.status)
			}
		})
	}
}
