package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// BenchmarkProtectedRoute measures whole requests through a Caddy running
// in this process, over loopback HTTP/1.1 with keep-alive: a bare
// reverse_proxy to an upstream, and the same proxy behind oauth_scope and
// a per-client rate_limit (the example's protected route, without TLS).
// The protected route's figure is the denominator for what its metrics
// cost (caddyscope's BenchmarkRouteMetrics), since metrics cannot be
// switched off; the ratio of the two sub-benchmarks is oauth_scope's and
// rate_limit's share of a proxied request. The client runs in the same
// process and is part of every figure.
func BenchmarkProtectedRoute(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	b.Cleanup(up.Close)
	upstream := strings.TrimPrefix(up.URL, "http://")
	site := fmt.Sprintf(`oauth_server
route /plain/* {
	reverse_proxy %[1]s
}
route /api/* {
	oauth_scope {
		GET user:read
	}
	rate_limit {
		zone per_client {
			key {oauth.client_id}
			events 10000
			window 100ms
		}
	}
	reverse_proxy %[1]s
}`, upstream)
	cfg := refusalCaddyfile(b, b.TempDir(), "issuer https://localhost:9443\n"+okClient, site)
	cfgJSON, _, err := adapt(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := loadJSON(b, cfgJSON); err != nil {
		b.Fatal(err)
	}
	base := strings.TrimSuffix(regexp.MustCompile(`http://localhost:\d+ \{`).FindString(cfg), " {")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	resp, err := client.PostForm(base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {"reports-service"}, "client_secret": {"reports-demo-secret-not-for-production"}})
	if err != nil {
		b.Fatal(err)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if err != nil || tr.AccessToken == "" {
		b.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	get := func(b *testing.B, path, token string) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	b.Run("bare_proxy", func(b *testing.B) {
		for b.Loop() {
			get(b, "/plain/x", "")
		}
	})
	b.Run("protected", func(b *testing.B) {
		for b.Loop() {
			get(b, "/api/x", tr.AccessToken)
		}
	})
}
