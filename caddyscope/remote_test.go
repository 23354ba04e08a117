package caddyscope

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"github.com/caddyapigw/gateway/internal/oauthready"
)

// TestIssuerDiscovery: the metadata is found where RFC 8414 §3.1 puts it
// (the well-known suffix inserted before the issuer's path), or, when the
// server has none, where OpenID Connect Discovery §4 puts it (appended);
// jwks_url skips discovery. Each way, the issuer's tokens are accepted.
func TestIssuerDiscovery(t *testing.T) {
	tests := []struct {
		name, path, mode string
		jwksURL          bool
		wantMetadata     func(*testAS) string // path that must have been fetched
	}{
		{"RFC 8414 §3 issuer without a path", "", "oauth", false, (*testAS).oauthMetadataPath},
		{"RFC 8414 §3.1 issuer with a path: suffix inserted", "/tenant", "oauth", false, (*testAS).oauthMetadataPath},
		{"OpenID Connect discovery fallback", "/tenant", "oidc", false, (*testAS).oidcMetadataPath},
		{"jwks_url: no discovery", "/tenant", "none", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newTestAS(t, tt.path, tt.mode)
			h, _ := issuerHandler(t, nil, remoteScope(as, func(is *Issuer) {
				if tt.jwksURL {
					is.JWKSURL = as.srv.URL + as.jwksPath()
				}
			}))
			res := get(t, h, as.token(t, "user:read", nil))
			mustAccept(t, res)
			if got := res.nextHeader.Get("X-Client-Id"); got != "partner-app" {
				t.Errorf("X-Client-Id = %q", got)
			}
			if tt.wantMetadata != nil && as.count(tt.wantMetadata(as)) == 0 {
				t.Errorf("metadata not fetched from %s", tt.wantMetadata(as))
			}
			if tt.jwksURL && as.count(as.oauthMetadataPath())+as.count(as.oidcMetadataPath()) != 0 {
				t.Error("metadata fetched although jwks_url is set")
			}
		})
	}
}

func TestMetadataURLs(t *testing.T) {
	tests := []struct{ issuer, oauth, oidc string }{
		{"https://as.example", "https://as.example/.well-known/oauth-authorization-server", "https://as.example/.well-known/openid-configuration"},
		// RFC 8414 §3.1's example.
		{"https://example.com/issuer1", "https://example.com/.well-known/oauth-authorization-server/issuer1", "https://example.com/issuer1/.well-known/openid-configuration"},
		{"https://as.example:8443/a/b/", "https://as.example:8443/.well-known/oauth-authorization-server/a/b", "https://as.example:8443/a/b/.well-known/openid-configuration"},
	}
	for _, tt := range tests {
		got, err := metadataURLs(tt.issuer)
		if err != nil || got[0] != tt.oauth || got[1] != tt.oidc {
			t.Errorf("metadataURLs(%q) = %q, %v; want [%q %q]", tt.issuer, got, err, tt.oauth, tt.oidc)
		}
	}
}

// TestMetadataForAnotherIssuer: RFC 8414 §3.3: the metadata's issuer must
// be identical to the issuer it was fetched for, or it is not used.
func TestMetadataForAnotherIssuer(t *testing.T) {
	as := newTestAS(t, "", "oauth")
	as.metadata = map[string]any{"issuer": as.issuer + "/"}
	h, logs := issuerHandler(t, nil, remoteScope(as, nil))
	res := get(t, h, as.token(t, "user:read", nil))
	checkUnavailable(t, res)
	if !logged(logs, "token issuer unavailable", "RFC 8414 §3.3") {
		t.Errorf("log does not say why: %v", logs.All())
	}
}

// jwkJSON renders a public key as a JWK with the given members changed
// (nil deletes one).
func jwkJSON(t testing.TB, k *oauthjwt.Key, change map[string]any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(k.PublicJWK())
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return applyChanges(m, change)
}

func jwksJSON(keys ...map[string]any) string {
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return string(b)
}

// TestExternalTokenChecks: what a token from another issuer must pass,
// by the RFC each check comes from. Every case is a fresh token.
func TestExternalTokenChecks(t *testing.T) {
	as := newTestAS(t, "", "oauth")
	active := as.kr.Active()
	ec := active.Signer.(*ecdsa.PrivateKey)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signES := func(in string) []byte {
		sig, err := jwt.SigningMethodES256.Sign(in, ec)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	hdr := func(change map[string]any) map[string]any {
		return applyChanges(map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": active.ID}, change)
	}
	// The issuer's own public key, as HMAC secret: algorithm confusion.
	pubJWK, _ := json.Marshal(active.PublicJWK())

	h, _ := issuerHandler(t, nil, remoteScope(as, nil))
	tests := []struct {
		name   string
		token  string
		status int
		desc   string
	}{
		{"valid token (RFC 9068 §2)", as.token(t, "user:read", nil), http.StatusOK, ""},
		{"scope as an array", as.token(t, []string{"user:read"}, nil), http.StatusOK, ""},
		{"wrong scope: 403 (RFC 6750 §3.1)", as.token(t, "user:write", nil), http.StatusForbidden, "token lacks a required scope"},
		{"iss differs by a trailing slash (RFC 9068 §4: exact match)", as.token(t, "user:read", map[string]any{"iss": as.issuer + "/"}), http.StatusUnauthorized, "token issuer not accepted"},
		{"no iss", as.token(t, "user:read", map[string]any{"iss": ""}), http.StatusUnauthorized, "token lacks a required claim"},
		{"no exp (RFC 9068 §2.2)", as.token(t, "user:read", map[string]any{"exp": nil}), http.StatusUnauthorized, ""},
		{"expired", as.token(t, "user:read", map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}), http.StatusUnauthorized, "token expired"},
		{"other audience (RFC 9068 §4)", as.token(t, "user:read", map[string]any{"aud": "https://other.example"}), http.StatusUnauthorized, "token audience not accepted"},
		{"typ JWT, not at+jwt (RFC 9068 §4)", rawToken(hdr(map[string]any{"typ": "JWT"}), as.claims("user:read", nil), signES), http.StatusUnauthorized, "token is not an access token"},
		{"alg none (RFC 8725 §3.1)", rawToken(hdr(map[string]any{"alg": "none"}), as.claims("user:read", nil), func(string) []byte { return nil }), http.StatusUnauthorized, ""},
		{"HS256 keyed with the issuer's public JWK (RFC 8725 §2.1)", rawToken(hdr(map[string]any{"alg": "HS256"}), as.claims("user:read", nil), func(in string) []byte {
			m := hmac.New(sha256.New, pubJWK)
			m.Write([]byte(in))
			return m.Sum(nil)
		}), http.StatusUnauthorized, ""},
		{"header alg differs from the key's (RS256 under an ES256 kid)", rawToken(hdr(map[string]any{"alg": "RS256"}), as.claims("user:read", nil), func(in string) []byte {
			sig, _ := jwt.SigningMethodRS256.Sign(in, rsaKey)
			return sig
		}), http.StatusUnauthorized, "token signature invalid"},
		{"jku header (RFC 8725 §3.10)", rawToken(hdr(map[string]any{"jku": "https://evil.example/jwks"}), as.claims("user:read", nil), signES), http.StatusUnauthorized, "token signature invalid"},
		{"x5u header", rawToken(hdr(map[string]any{"x5u": "https://evil.example/cert"}), as.claims("user:read", nil), signES), http.StatusUnauthorized, "token signature invalid"},
		{"jwk header", rawToken(hdr(map[string]any{"jwk": json.RawMessage(pubJWK)}), as.claims("user:read", nil), signES), http.StatusUnauthorized, "token signature invalid"},
		{"x5c header", rawToken(hdr(map[string]any{"x5c": []string{"MIIB"}}), as.claims("user:read", nil), signES), http.StatusUnauthorized, "token signature invalid"},
		{"no kid", rawToken(hdr(map[string]any{"kid": nil}), as.claims("user:read", nil), signES), http.StatusUnauthorized, "token signed by an unknown key"},
		{"bad signature", as.token(t, "user:read", nil)[:50] + "A" + as.token(t, "user:read", nil)[51:], http.StatusUnauthorized, ""},
		{"signed by the local issuer's key, claiming the remote iss", newFixture(t).token(t, as.claims("user:read", nil)), http.StatusUnauthorized, "token signed by an unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, h, tt.token)
			if tt.status == http.StatusOK {
				mustAccept(t, res)
				return
			}
			code := errInvalidToken
			if tt.status == http.StatusForbidden {
				code = errInsufficientScope
			}
			body := checkRefused(t, res, tt.status, code)
			if tt.desc != "" && body.Description != tt.desc {
				t.Errorf("error_description = %q, want %q", body.Description, tt.desc)
			}
		})
	}
}

// TestJWKAlgorithmPinning: each JWKS key is pinned to one algorithm (RFC
// 7517 §4.4 alg); a key without alg is used only when the configuration or
// the metadata names exactly one algorithm; symmetric keys, private key
// material and encryption keys are never used.
func TestJWKAlgorithmPinning(t *testing.T) {
	k, _ := oauthjwt.GenerateKey(oauthjwt.ES256)
	tests := []struct {
		name     string
		jwk      map[string]any
		metaAlgs []string
		algs     []string
		header   map[string]any // token header changes
		ok       bool
	}{
		{"alg ES256 on the key", jwkJSON(t, k, nil), nil, nil, nil, true},
		{"no alg, several in metadata", jwkJSON(t, k, map[string]any{"alg": nil}), []string{"RS256", "ES256"}, nil, nil, false},
		{"no alg, none in metadata", jwkJSON(t, k, map[string]any{"alg": nil}), nil, nil, nil, false},
		{"no alg, exactly one in metadata", jwkJSON(t, k, map[string]any{"alg": nil}), []string{"ES256"}, nil, nil, true},
		{"no alg, exactly one configured", jwkJSON(t, k, map[string]any{"alg": nil}), []string{"RS256", "ES256"}, []string{"ES256"}, nil, true},
		{"no alg, metadata names another", jwkJSON(t, k, map[string]any{"alg": nil}), []string{"RS256"}, nil, nil, false},
		{"key alg not among the configured algorithms", jwkJSON(t, k, nil), nil, []string{"RS256"}, nil, false},
		{"use enc (RFC 7517 §4.2)", jwkJSON(t, k, map[string]any{"use": "enc"}), nil, nil, nil, false},
		{"key alg ES384 on a P-256 key", jwkJSON(t, k, map[string]any{"alg": "ES384"}), nil, nil, map[string]any{"alg": "ES384"}, false},
		{"private key material published", jwkJSON(t, k, map[string]any{"d": privateD(t, k)}), nil, nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newTestAS(t, "", "oauth")
			as.jwksBody = jwksJSON(tt.jwk)
			if tt.metaAlgs != nil {
				as.metadata = map[string]any{"id_token_signing_alg_values_supported": tt.metaAlgs}
			}
			h, logs := issuerHandler(t, nil, remoteScope(as, func(is *Issuer) { is.Algorithms = tt.algs }))
			header := applyChanges(map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": k.ID}, tt.header)
			tok := rawToken(header, as.claims("user:read", nil), func(in string) []byte {
				sig, _ := jwt.SigningMethodES256.Sign(in, k.Signer)
				return sig
			})
			res := get(t, h, tok)
			if tt.ok {
				mustAccept(t, res)
				return
			}
			checkRefused(t, res, http.StatusUnauthorized, errInvalidToken)
			if !logged(logs, "JWKS") && !logged(logs, "token issuer unavailable") {
				t.Errorf("refusal not explained in the log: %v", logs.All())
			}
		})
	}
}

// TestSymmetricJWKRefused: an "oct" key in the JWKS, however labelled,
// never verifies a token (HS256 with a key anyone can fetch).
func TestSymmetricJWKRefused(t *testing.T) {
	as := newTestAS(t, "", "oauth")
	secret := []byte("0123456789abcdef0123456789abcdef")
	as.jwksBody = jwksJSON(map[string]any{"kty": "oct", "kid": "sym", "alg": "HS256", "k": b64(secret)})
	h, _ := issuerHandler(t, nil, remoteScope(as, nil))
	tok := rawToken(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": "sym"}, as.claims("user:read", nil), func(in string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return m.Sum(nil)
	})
	checkRefused(t, get(t, h, tok), http.StatusUnauthorized, errInvalidToken)
}

// TestUnknownKidRefetch: a token with a kid the cached JWKS lacks makes
// keyfunc fetch the JWKS again, at most once per refetch floor.
func TestUnknownKidRefetch(t *testing.T) {
	as := newTestAS(t, "", "oauth")
	h, _ := issuerHandler(t, nil, remoteScope(as, func(is *Issuer) { is.JWKSRefetchFloor = caddy.Duration(time.Hour) }))
	mustAccept(t, get(t, h, as.token(t, "user:read", nil)))
	fetches := as.count(as.jwksPath())

	as.rotate(t)
	mustAccept(t, get(t, h, as.token(t, "user:read", nil))) // new kid: refetched
	if got := as.count(as.jwksPath()); got != fetches+1 {
		t.Fatalf("JWKS fetched %d times after a new kid, want %d", got, fetches+1)
	}
	as.rotate(t)
	res := get(t, h, as.token(t, "user:read", nil)) // another new kid within the floor
	checkRefused(t, res, http.StatusUnauthorized, errInvalidToken)
	if got := as.count(as.jwksPath()); got != fetches+1 {
		t.Fatalf("JWKS fetched again within the refetch floor (%d fetches)", got)
	}
}

// TestIssuerDown: with the issuer gone, tokens already seen and new tokens
// signed by cached keys keep working; a token with an unknown kid gets 503
// with Retry-After once the JWKS could not be fetched again (the key may be
// new: the token is not known to be bad), and the log says why.
func TestIssuerDown(t *testing.T) {
	as := newTestAS(t, "", "oauth")
	h, logs := issuerHandler(t, nil, remoteScope(as, func(is *Issuer) { is.JWKSRefetchFloor = caddy.Duration(time.Second) }))
	seen := as.token(t, "user:read", nil)
	unseen := as.token(t, "user:read", map[string]any{"jti": "unseen"})
	mustAccept(t, get(t, h, seen))
	as.rotate(t)
	newKid := as.token(t, "user:read", nil)
	as.srv.Close()

	mustAccept(t, get(t, h, seen))
	mustAccept(t, get(t, h, unseen))
	time.Sleep(1100 * time.Millisecond) // past the refetch floor: a refetch is tried
	res := get(t, h, newKid)
	checkUnavailable(t, res)
	if !logged(logs, "JWKS refresh failed", "connection refused") {
		t.Errorf("log does not say why: %v", logs.All())
	}
	mustAccept(t, get(t, h, unseen))
}

// TestIssuerDownAtStart: an issuer unreachable when the config loads does
// not stop the load; its tokens get 503 with the reason in the log, and
// once it answers (after the refetch floor) they are accepted.
func TestIssuerDownAtStart(t *testing.T) {
	as := newTestASUnstarted(t, "", "oauth")
	t.Cleanup(as.srv.Close)
	h, logs := issuerHandler(t, nil, remoteScope(as, func(is *Issuer) {
		is.JWKSRefetchFloor = caddy.Duration(time.Second)
		is.Timeout = caddy.Duration(time.Second)
	}))
	tok := as.token(t, "user:read", nil)
	// The listener is bound but nobody accepts: the fetch times out.
	res := get(t, h, tok)
	body := checkUnavailable(t, res)
	if body.Description != "token could not be checked with its issuer" {
		t.Errorf("error_description = %q", body.Description)
	}
	if !logged(logs, "token issuer unavailable", "metadata discovery") {
		t.Errorf("log does not say why: %v", logs.All())
	}
	as.srv.Start()
	deadline := time.Now().Add(5 * time.Second)
	for {
		res := get(t, h, tok)
		if res.calls == 1 {
			break
		}
		if res.rec.Code != http.StatusUnauthorized || time.Now().After(deadline) {
			t.Fatalf("issuer back, token still refused: %d %s", res.rec.Code, res.rec.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// privateD is the JWK d member of an EC private key (RFC 7518 §6.2.2.1).
func privateD(t testing.TB, k *oauthjwt.Key) string {
	t.Helper()
	d, err := k.Signer.(*ecdsa.PrivateKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b64(d)
}

// TestIssuerReadiness: an issuer is ready (the admin API's /oauth/ready)
// once its metadata was read and its keys fetched; one that cannot be
// reached is not, with the reason; its check goes away with the issuer.
// The calls are counted by kind and result (oauth_issuer_requests_total).
func TestIssuerReadiness(t *testing.T) {
	as := newTestAS(t, "", "oauth")
	h, _ := issuerHandler(t, nil, remoteScope(as, nil))
	ri := h.trust.all[0].remote
	deadline := time.Now().Add(5 * time.Second)
	for ri.readyCheck(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("a reachable issuer is not ready: %v", ri.readyCheck(context.Background()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, kind := range []string{"metadata", "jwks"} {
		if n := testutil.ToFloat64(scopeMetrics.issuer.WithLabelValues(as.issuer, kind, "ok")); n < 1 {
			t.Errorf("%s calls that succeeded: %v", kind, n)
		}
	}
	found := false
	for _, r := range oauthready.Run(context.Background()) {
		found = found || (r.Name == "issuer "+as.issuer && r.Ready)
	}
	if !found {
		t.Errorf("issuer %s not among the readiness checks: %+v", as.issuer, oauthready.Run(context.Background()))
	}

	down := newTestASUnstarted(t, "", "oauth")
	t.Cleanup(down.srv.Close)
	h2, _ := issuerHandler(t, nil, remoteScope(down, func(is *Issuer) { is.Timeout = caddy.Duration(200 * time.Millisecond) }))
	if err := h2.trust.all[0].remote.readyCheck(context.Background()); err == nil {
		t.Error("an unreachable issuer is ready")
	}
	if n := testutil.ToFloat64(scopeMetrics.issuer.WithLabelValues(down.issuer, "metadata", "error")); n < 1 {
		t.Errorf("failed metadata calls: %v", n)
	}
	_ = h2.Cleanup()
	for _, r := range oauthready.Run(context.Background()) {
		if r.Name == "issuer "+down.issuer {
			t.Errorf("check of a cleaned-up issuer still runs: %+v", r)
		}
	}
}
