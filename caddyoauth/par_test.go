package caddyoauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyapigw/gateway/internal/dpop/dpoptest"
)

// pushAs posts form to the PAR endpoint with HTTP Basic credentials of
// id (none when id is "") and optional DPoP proofs.
func pushAs(t testing.TB, s *Server, id, secret string, form url.Values, proofs ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/oauth2/par", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		r.Header.Set("Authorization", basicAuth(id, secret))
	}
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	rec, next := serve(t, s, r)
	if next {
		t.Fatal("PAR request passed on")
	}
	return rec
}

// webRequest is an authorization request of the confidential web client.
func webRequest(challenge string) url.Values {
	return url.Values{
		"response_type": {"code"}, "client_id": {webID}, "redirect_uri": {webRedirect},
		"scope": {"notes:read"}, "state": {"s1"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
}

// requestURI decodes a 201 PAR answer (RFC 9126 §2.2).
func requestURI(t testing.TB, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if rec.Code != http.StatusCreated {
		t.Fatalf("PAR: %d %s", rec.Code, rec.Body)
	}
	var p struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || !strings.HasPrefix(p.RequestURI, "urn:ietf:params:oauth:request_uri:") || p.ExpiresIn <= 0 || p.ExpiresIn > 600 {
		t.Fatalf("PAR answer %s (RFC 9126 §2.2)", rec.Body)
	}
	assertNoStore(t, rec.Header())
	return p.RequestURI
}

// TestPARFlow: RFC 9126, a pushed request is used by reference at the
// authorization endpoint, yields a code the client redeems, and cannot be
// used for a second code.
func TestPARFlow(t *testing.T) {
	b, _ := newFlow(t, nil)
	_, challenge := pkce()
	ref := requestURI(t, pushAs(t, b.s, webID, webSecret, webRequest(challenge)))
	u := b.approve(url.Values{"client_id": {webID}, "request_uri": {ref}}.Encode())
	if u.Query().Get("code") == "" || u.Query().Get("state") != "s1" || !strings.HasPrefix(u.String(), webRedirect) {
		t.Fatalf("redirect %s: want a code and the pushed state", u)
	}
	// §4: one code per request_uri.
	rec := b.do(http.MethodGet, "/oauth2/authorize?"+url.Values{"client_id": {webID}, "request_uri": {ref}}.Encode(), nil)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("second use of request_uri: %d, want an error page", rec.Code)
	}
}

// TestPARRefusals: RFC 9126 §2.1 and §2.3, what the PAR endpoint refuses,
// and §4/§6 what the authorization endpoint refuses.
func TestPARRefusals(t *testing.T) {
	b, _ := newFlow(t, func(a *App) {
		for _, c := range a.Clients {
			if c.ID == webID {
				c.RequirePushedAuthorizationRequests = true
			}
		}
	})
	_, challenge := pkce()
	t.Run("§2.1: client authentication required", func(t *testing.T) {
		// 400, not 401: no Basic credentials were tried (RFC 6749 §5.2).
		assertOAuthError(t, pushAs(t, b.s, "", "", webRequest(challenge)), http.StatusBadRequest, errInvalidClient)
	})
	t.Run("§2.1: wrong secret", func(t *testing.T) {
		assertOAuthError(t, pushAs(t, b.s, webID, "wrong-secret-wrong-secret", webRequest(challenge)), http.StatusUnauthorized, errInvalidClient)
	})
	t.Run("§2.1: request_uri must not be pushed", func(t *testing.T) {
		f := webRequest(challenge)
		f.Set("request_uri", "urn:ietf:params:oauth:request_uri:x")
		assertOAuthError(t, pushAs(t, b.s, webID, webSecret, f), http.StatusBadRequest, errInvalidRequest)
	})
	t.Run("§2.3: a request the authorization endpoint would refuse", func(t *testing.T) {
		f := webRequest(challenge)
		f.Set("redirect_uri", "https://evil.example/cb")
		rec := pushAs(t, b.s, webID, webSecret, f)
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("unregistered redirect_uri pushed: %d %s", rec.Code, rec.Body)
		}
		f = webRequest(challenge)
		f.Set("scope", "admin")
		assertOAuthError(t, pushAs(t, b.s, webID, webSecret, f), http.StatusBadRequest, errInvalidScope)
	})
	t.Run("§2.1: client_id of another client than the authenticated one", func(t *testing.T) {
		f := webRequest(challenge)
		f.Set("client_id", spaID)
		rec := pushAs(t, b.s, webID, webSecret, f)
		if rec.Code == http.StatusCreated {
			t.Fatalf("pushed a request naming another client: %s", rec.Body)
		}
	})
	t.Run("§6: a client that must push cannot send its request in the URL", func(t *testing.T) {
		u := b.approve(webRequest(challenge).Encode())
		if u.Query().Get("error") != errInvalidRequest || u.Query().Get("code") != "" {
			t.Fatalf("plain request of a PAR client: %s", u)
		}
	})
	t.Run("§4: request_uri of another client", func(t *testing.T) {
		ref := requestURI(t, pushAs(t, b.s, webID, webSecret, webRequest(challenge)))
		rec := b.do(http.MethodGet, "/oauth2/authorize?"+url.Values{"client_id": {spaID}, "request_uri": {ref}}.Encode(), nil)
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("request_uri used with another client_id: %d", rec.Code)
		}
	})
	t.Run("§4: parameters beside request_uri are ignored", func(t *testing.T) {
		ref := requestURI(t, pushAs(t, b.s, webID, webSecret, webRequest(challenge)))
		q := url.Values{"client_id": {webID}, "request_uri": {ref}, "redirect_uri": {"https://evil.example/cb"}, "state": {"changed"}}
		u := b.approve(q.Encode())
		if !strings.HasPrefix(u.String(), webRedirect) || u.Query().Get("state") != "s1" {
			t.Fatalf("URL parameters overrode the pushed request: %s", u)
		}
	})
	t.Run("§2.2: request_uri expires", func(t *testing.T) {
		ref := requestURI(t, pushAs(t, b.s, webID, webSecret, webRequest(challenge)))
		ms := b.s.app.store.(*MemoryStore)
		b.advance(ms, parLifetime+time.Second)
		rec := b.do(http.MethodGet, "/oauth2/authorize?"+url.Values{"client_id": {webID}, "request_uri": {ref}}.Encode(), nil)
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("expired request_uri: %d", rec.Code)
		}
	})
	t.Run("OpenID Connect Core §6.2: another request_uri is still unsupported", func(t *testing.T) {
		q := webRequest(challenge)
		q.Set("client_id", spaID)
		q.Set("redirect_uri", spaRedirect)
		q.Set("request_uri", "https://rp.example/request.jwt")
		u := b.approve(q.Encode())
		if u.Query().Get("error") != errRequestURINotSupp {
			t.Fatalf("request object by reference: %s", u)
		}
	})
}

// TestPARMetadata: RFC 9126 §5, the metadata names the endpoint and the
// server-wide requirement.
func TestPARMetadata(t *testing.T) {
	cfg := baseConfig()
	cfg.RequirePushedAuthorizationRequests = true
	s := newTestServer(t, cfg)
	m := fetchMetadata(t, s, "/.well-known/oauth-authorization-server")
	if m["pushed_authorization_request_endpoint"] != testIssuer+"/oauth2/par" || m["require_pushed_authorization_requests"] != true {
		t.Fatalf("metadata: %v %v", m["pushed_authorization_request_endpoint"], m["require_pushed_authorization_requests"])
	}
}

// TestPARWithDPoP: RFC 9449 §10.1, a proof at the PAR endpoint binds the
// code to its key: redeemed only with a proof by that key.
func TestPARWithDPoP(t *testing.T) {
	b, _ := newFlow(t, nil)
	k, other := dpopKey(t), dpopKey(t)
	verifier, challenge := pkce()
	ref := requestURI(t, pushAs(t, b.s, webID, webSecret, webRequest(challenge), k.Proof("POST", "http://example.com/oauth2/par", dpoptest.Options{})))
	code := b.approve(url.Values{"client_id": {webID}, "request_uri": {ref}}.Encode()).Query().Get("code")
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {verifier}, "client_id": {webID}, "client_secret": {webSecret}}
	assertOAuthError(t, dpopRequest(t, b.s, f, other.Proof("POST", tokenURLOf, dpoptest.Options{})), http.StatusBadRequest, errInvalidDPoPProof)
}
