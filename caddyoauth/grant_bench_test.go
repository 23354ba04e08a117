package caddyoauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyapigw/gateway/internal/oauthstore"
	"github.com/caddyapigw/gateway/internal/testredis"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// BenchmarkGrantsByStore measures token requests through the handler with
// each persistent store: client credentials (which must not touch the
// store, so both stores should match), the authorization code exchange
// (one code taken, a refresh family and token written, a use marker) and
// the refresh grant (a rotation). Run with
//
//	go test -run NONE -bench BenchmarkGrantsByStore ./caddyoauth
func BenchmarkGrantsByStore(b *testing.B) {
	client := testredis.StartClient(b)
	for _, be := range []struct {
		name  string
		store Store
	}{
		{"caddy", NewCaddyStore(&certmagic.FileStorage{Path: b.TempDir()}, storePrefix, zap.NewNop())},
		{"redis", NewRedisStore(client, DefaultRedisKeyPrefix)},
	} {
		cfg := flowConfig(b)
		cfg.store = be.store
		if err := cfg.provision(context.Background(), newStorage(b), zap.NewNop()); err != nil {
			b.Fatal(err)
		}
		s := &Server{}
		if err := s.provision(cfg, zap.NewNop()); err != nil {
			b.Fatal(err)
		}
		post := func(b *testing.B, form url.Values, authz string) *httptest.ResponseRecorder {
			r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if authz != "" {
				r.Header.Set("Authorization", authz)
			}
			w := httptest.NewRecorder()
			next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
			if err := s.ServeHTTP(w, r, next); err != nil || w.Code != http.StatusOK {
				b.Fatalf("status %d, err %v: %s", w.Code, err, w.Body)
			}
			return w
		}
		b.Run(be.name+"/client_credentials", func(b *testing.B) {
			form, authz := ccForm("scope", "user:read"), basicAuth(svcID, svcSecret)
			b.ReportAllocs()
			for b.Loop() {
				post(b, form, authz)
			}
		})
		verifier, challenge := pkce()
		sess := &session{Session: &oauthstore.Session{User: aliceUser, AuthTime: 1}}
		b.Run(be.name+"/authorization_code", func(b *testing.B) {
			req, aerr := s.parseAuthorizeRequest(context.Background(), authorizeQuery(challenge))
			if aerr != nil {
				b.Fatal(aerr.desc)
			}
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				code, err := s.issueCode(context.Background(), req, sess)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				post(b, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
					"redirect_uri": {spaRedirect}, "client_id": {spaID}}, "")
			}
		})
		b.Run(be.name+"/refresh_token", func(b *testing.B) {
			req, _ := s.parseAuthorizeRequest(context.Background(), authorizeQuery(challenge))
			code, _ := s.issueCode(context.Background(), req, sess)
			rt := decodeRefresh(b, post(b, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
				"redirect_uri": {spaRedirect}, "client_id": {spaID}}, ""))
			b.ReportAllocs()
			for b.Loop() {
				rt = decodeRefresh(b, post(b, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {spaID}}, ""))
			}
		})
	}
}

func decodeRefresh(b *testing.B, w *httptest.ResponseRecorder) string {
	tok := decodeUserTokens(b, w, w.Body.Bytes())
	return tok.RefreshToken
}
