package caddyoauth

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestOpenAPIDescription: docs/openapi.json is the description the admin
// API serves; every route the admin module registers has a path in it;
// and for every path, exactly the methods it lists are served (each other
// method is 405), so the description and the handlers cannot drift apart.
// The description itself is validated by @seriousme/openapi-schema-validator
// in e2e/openapi_test.go.
func TestOpenAPIDescription(t *testing.T) {
	docs, err := os.ReadFile("../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docs, openAPIDoc) {
		t.Fatal("docs/openapi.json differs from caddyoauth/openapi.json (the one served): copy it over")
	}
	var spec struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	// An operation's example request bodies.
	type operation struct {
		RequestBody struct {
			Content map[string]struct {
				Examples map[string]struct {
					Value json.RawMessage `json:"value"`
				} `json:"examples"`
			} `json:"content"`
		} `json:"requestBody"`
	}
	if err := json.Unmarshal(openAPIDoc, &spec); err != nil || !strings.HasPrefix(spec.OpenAPI, "3.1") {
		t.Fatalf("openapi.json: %v (openapi %q)", err, spec.OpenAPI)
	}

	cfg := flowConfig(t)
	cfg.Registration = regPolicy()
	a := newApp(t, cfg)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	if status, _, raw := adminDo(t, "POST", "/oauth/clients", `{"client_id":"doc","scope":"a"}`); status != http.StatusCreated {
		t.Fatalf("setup: %d %s", status, raw)
	}

	routes := adminAPI{}.Routes()
	// handler finds the route serving path as Caddy's admin mux would
	// (http.ServeMux: exact, else the longest pattern ending in / that
	// prefixes it).
	handler := func(path string) caddy.AdminHandler {
		var best caddy.AdminRoute
		for _, rt := range routes {
			if rt.Pattern == path || strings.HasSuffix(rt.Pattern, "/") && strings.HasPrefix(path, rt.Pattern) && len(rt.Pattern) > len(best.Pattern) {
				if rt.Pattern == path {
					return rt.Handler
				}
				best = rt
			}
		}
		return best.Handler
	}
	for _, rt := range routes {
		covered := false
		for p := range spec.Paths {
			covered = covered || p == rt.Pattern || strings.HasSuffix(rt.Pattern, "/") && strings.HasPrefix(p, rt.Pattern)
		}
		if !covered {
			t.Errorf("route %s is not in openapi.json", rt.Pattern)
		}
	}
	fill := strings.NewReplacer("{client_id}", "doc", "{id}", strings.Repeat("0", 64), "{username}", aliceUser)
	for p, item := range spec.Paths {
		if _, public := item["servers"]; public {
			continue // TestOpenAPIPublicEndpoints
		}
		path := fill.Replace(p)
		h := handler(path)
		if h == nil {
			t.Errorf("%s: no admin route serves it", p)
			continue
		}
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
			_, listed := item[strings.ToLower(m)]
			rec := httptest.NewRecorder()
			err := h.ServeHTTP(rec, httptest.NewRequest(m, path, strings.NewReader("{}")))
			status, msg := rec.Code, ""
			if err != nil {
				status, msg = apiStatus(err), err.Error()
			}
			served := status != http.StatusMethodNotAllowed && !strings.Contains(msg, "no such endpoint")
			if listed != served {
				t.Errorf("%s %s: listed in openapi.json %v, served %v (%d %s)", m, p, listed, served, status, msg)
			}
			if !listed {
				continue
			}
			// The description's example requests are taken as they are.
			var op operation
			_ = json.Unmarshal(item[strings.ToLower(m)], &op)
			for ct, media := range op.RequestBody.Content {
				for name, ex := range media.Examples {
					r := httptest.NewRequest(m, path, bytes.NewReader(ex.Value))
					r.Header.Set("Content-Type", ct)
					if err := h.ServeHTTP(httptest.NewRecorder(), r); apiStatus(err) == http.StatusBadRequest {
						t.Errorf("%s %s: example %q refused: %v", m, p, name, err)
					}
				}
			}
		}
	}
}

// TestOpenAPIPublicEndpoints: every endpoint oauth_server serves (each
// path it is provisioned with, registration and sign-up on) is in
// openapi.json with its own servers (the issuer), and each such path lists
// exactly the methods served: a listed method is answered (not passed on,
// not 405), any other is 405.
func TestOpenAPIPublicEndpoints(t *testing.T) {
	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &spec); err != nil {
		t.Fatal(err)
	}
	b, _ := newFlow(t, func(a *App) {
		a.Registration = regPolicy()
		a.Signup = new(SignupConfig)
	})
	s := b.s
	sv := reflect.ValueOf(s).Elem()
	for i := range sv.NumField() {
		f := sv.Type().Field(i)
		if !strings.HasSuffix(f.Name, "Path") || f.Type.Kind() != reflect.String {
			continue
		}
		p := sv.Field(i).String()
		if item, ok := spec.Paths[p]; !ok || item["servers"] == nil {
			t.Errorf("oauth_server serves %s (%s), which openapi.json does not list as a public path", p, f.Name)
		}
	}
	if _, ok := spec.Paths[s.registerPath+"/{client_id}"]; !ok {
		t.Errorf("%s/{client_id} (RFC 7592) is not in openapi.json", s.registerPath)
	}
	for p, item := range spec.Paths {
		if item["servers"] == nil {
			continue
		}
		path := strings.ReplaceAll(p, "{client_id}", "someone")
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
			_, listed := item[strings.ToLower(m)]
			rec := httptest.NewRecorder()
			next := false
			err := s.ServeHTTP(rec, httptest.NewRequest(m, path, strings.NewReader("")), caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
				next = true
				return nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			served := !next && rec.Code != http.StatusMethodNotAllowed
			if listed != served {
				t.Errorf("%s %s: listed in openapi.json %v, served %v (%d, passed on %v)", m, p, listed, served, rec.Code, next)
			}
		}
	}
}
