package caddyscope

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// TestIssuerConfigRefusals: a configuration that cannot work is refused
// at provision with the field named.
func TestIssuerConfigRefusals(t *testing.T) {
	f := newFixture(t)
	ok := "https://idp.example"
	tests := []struct {
		name string
		s    Scope
		auth bool
		want string
	}{
		{"http issuer not on loopback", Scope{Issuers: []Issuer{{Issuer: "http://idp.example", Audience: []string{"a"}}}}, false, `issuers[0] (http://idp.example): issuer: "http://idp.example" must use https`},
		{"issuer with a query (RFC 8414 §2)", Scope{Issuers: []Issuer{{Issuer: ok + "?x=1", Audience: []string{"a"}}}}, false, "must not have a query"},
		{"issuer with a fragment", Scope{Issuers: []Issuer{{Issuer: ok + "#f", Audience: []string{"a"}}}}, false, "fragment"},
		{"relative issuer", Scope{Issuers: []Issuer{{Issuer: "idp.example", Audience: []string{"a"}}}}, false, "not an absolute URL"},
		{"no audience (RFC 9068 §4)", Scope{Issuers: []Issuer{{Issuer: ok}}}, false, "audience: required"},
		{"jwks_url over http", Scope{Issuers: []Issuer{{Issuer: ok, Audience: []string{"a"}, JWKSURL: "http://idp.example/jwks"}}}, false, "jwks_url:"},
		{"introspection without client_id", Scope{Issuers: []Issuer{{Issuer: ok, IntrospectionURL: ok + "/introspect"}}}, false, "client_id: required with introspection_url"},
		{"client_id without a secret", Scope{Issuers: []Issuer{{Issuer: ok, IntrospectionURL: ok + "/introspect", ClientID: "gw"}}}, false, "client_secret: required"},
		{"secret from an unset variable", Scope{Issuers: []Issuer{{Issuer: ok, IntrospectionURL: ok + "/introspect", ClientID: "gw", ClientSecret: "{env.CADDYSCOPE_TEST_UNSET}"}}}, false, "client_secret: required"},
		{"client_secret without client_id", Scope{Issuers: []Issuer{{Issuer: ok, Audience: []string{"a"}, ClientSecret: "x"}}}, false, "client_secret: given without client_id"},
		{"client_id with jwks_url and no introspection_url", Scope{Issuers: []Issuer{{Issuer: ok, Audience: []string{"a"}, JWKSURL: ok + "/jwks", ClientID: "gw", ClientSecret: "x"}}}, false, "introspection_url: required with client_id"},
		{"unknown algorithm", Scope{Issuers: []Issuer{{Issuer: ok, Audience: []string{"a"}, Algorithms: []string{"HS256"}}}}, false, "algorithms:"},
		{"alg none", Scope{Issuers: []Issuer{{Issuer: ok, Audience: []string{"a"}, Algorithms: []string{"none"}}}}, false, "algorithms:"},
		{"timeout out of range", Scope{Issuers: []Issuer{{Issuer: ok, Audience: []string{"a"}, Timeout: caddy.Duration(time.Hour)}}}, false, "timeout:"},
		{"refetch floor too short", Scope{Issuers: []Issuer{{Issuer: ok, Audience: []string{"a"}, JWKSRefetchFloor: caddy.Duration(time.Millisecond)}}}, false, "jwks_refetch_floor:"},
		{"cache size too small", Scope{Issuers: []Issuer{{Issuer: ok, Audience: []string{"a"}, IntrospectionCacheSize: 3}}}, false, "introspection_cache_size:"},
		{"missing CA file", Scope{Issuers: []Issuer{{Issuer: ok, Audience: []string{"a"}, TLSTrustedCACerts: []string{"/nonexistent/ca.pem"}}}}, false, "tls_trusted_ca_certs:"},
		{"issuer listed twice", Scope{Issuers: []Issuer{{Issuer: ok, Audience: []string{"a"}}, {Issuer: ok, Audience: []string{"b"}}}}, false, "issuers[1] (https://idp.example): issuer: listed twice"},
		{"local without the oauth app", Scope{Issuers: []Issuer{{Issuer: LocalIssuer}}}, false, "needs the `oauth` global option"},
		{"local with options", Scope{Issuers: []Issuer{{Issuer: LocalIssuer, Audience: []string{"a"}}}}, true, "the local issuer takes no options"},
		{"the local app's issuer as an external one", Scope{Issuers: []Issuer{{Issuer: testIssuer, Audience: []string{"a"}}}}, true, "write `issuer local`"},
		{"two issuers introspect", Scope{Issuers: []Issuer{
			{Issuer: ok, IntrospectionURL: ok + "/i", ClientID: "gw", ClientSecret: "x"},
			{Issuer: "https://idp2.example", IntrospectionURL: "https://idp2.example/i", ClientID: "gw", ClientSecret: "x"},
		}}, false, "issuers[1] (https://idp2.example): client_id: only one issuer of a route may introspect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var auth oauthjwt.Authority
			if tt.auth {
				auth = f.auth
			}
			s := tt.s
			err := s.provision(auth, zap.NewNop())
			_ = s.Cleanup()
			if err == nil {
				t.Fatalf("provision accepted %+v", tt.s)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestIssuerPoolSharedAndReleased: identical issuer settings on two routes
// share one running issuer; it is released with the last route.
func TestIssuerPoolSharedAndReleased(t *testing.T) {
	as := newTestAS(t, "", "oauth")
	a, _ := issuerHandler(t, nil, remoteScope(as, nil))
	b, _ := issuerHandler(t, nil, remoteScope(as, nil))
	if a.trust.all[0].remote != b.trust.all[0].remote {
		t.Fatal("identical issuers on two routes run twice")
	}
	key := a.trust.all[0].poolKey
	_ = a.Cleanup()
	if refs, ok := issuerPool.References(key); !ok || refs != 1 {
		t.Fatalf("after one cleanup: %d references, present %v", refs, ok)
	}
	_ = b.Cleanup()
	if _, ok := issuerPool.References(key); ok {
		t.Fatal("issuer still pooled after the last route went")
	}
	if a.trust.all != nil || b.trust.all != nil {
		t.Fatal("cleanup kept references")
	}
}
