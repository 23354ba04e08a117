package caddyoauth

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestSlowBodyCutOff: a client that sends the headers of a form POST and
// then trickles its body is answered 408 and its connection closed once
// formReadTimeout has passed, at the token endpoint and at the login page,
// instead of holding the connection open for as long as it likes; a
// client that sends its body in time is served as before.
func TestSlowBodyCutOff(t *testing.T) {
	old := formReadTimeout
	formReadTimeout = 300 * time.Millisecond
	t.Cleanup(func() { formReadTimeout = old })
	b, _ := newFlow(t, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = b.s.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
	}))
	t.Cleanup(srv.Close)

	for _, path := range []string{"/oauth2/token", "/oauth2/login"} {
		t.Run(path, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=", path)
			// One more byte a little later, well within the body's 1000:
			// the client is alive, only slow.
			go func() {
				time.Sleep(100 * time.Millisecond)
				_, _ = conn.Write([]byte("c"))
			}()
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer to a slow body: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("status %d, want 408", resp.StatusCode)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("cut off after %v", took)
			}
		})
	}

	// In time: served.
	resp, err := http.Post(srv.URL+"/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusRequestTimeout {
		t.Error("a prompt body was cut off")
	}
}
