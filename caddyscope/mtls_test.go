package caddyscope

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyapigw/gateway/internal/bearer"
	"github.com/caddyapigw/gateway/internal/dpop/dpoptest"
	"github.com/caddyapigw/gateway/internal/mtls"
	"github.com/caddyapigw/gateway/internal/mtls/mtlstest"
)

// certGet sends GET /api/notes with authz on a connection in state st
// (nil: no TLS) and the given DPoP proofs.
func certGet(t testing.TB, h *Scope, authz string, st *tls.ConnectionState, proofs ...string) result {
	t.Helper()
	r, _ := newRequest(http.MethodGet, "/api/notes", authz)
	r.TLS = st
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return serve(t, h, r)
}

func testCerts(t testing.TB) (good, other *mtlstest.Client) {
	t.Helper()
	ca, err := mtlstest.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	if good, err = ca.Issue(mtlstest.Names{DNS: []string{"good.example"}}); err != nil {
		t.Fatal(err)
	}
	if other, err = ca.Issue(mtlstest.Names{DNS: []string{"other.example"}}); err != nil {
		t.Fatal(err)
	}
	return good, other
}

// TestCertBoundResourceRFC8705: RFC 8705 §3: a token whose cnf carries
// x5t#S256 is accepted only on a connection with that certificate,
// whether or not its chain was validated; a token without cnf is not
// affected by the connection's certificate.
func TestCertBoundResourceRFC8705(t *testing.T) {
	f := newFixture(t)
	good, other := testCerts(t)
	bound := f.token(t, claims("notes:read", map[string]any{"cnf": map[string]any{"x5t#S256": mtls.Thumbprint(good.Cert)}}))
	plain := f.token(t, claims("notes:read", nil))
	h := newHandler(t, f, &Scope{})
	cases := []struct {
		name   string
		token  string
		st     *tls.ConnectionState
		status int
		desc   string
	}{
		{"§3: the bound certificate, chain validated", bound, good.State(true), 200, ""},
		{"§3: the bound certificate, chain not validated", bound, good.State(false), 200, ""},
		{"§3: another certificate from the same CA", bound, other.State(true), 401, mtls.OtherCertificate},
		{"§3: TLS without a client certificate", bound, &tls.ConnectionState{HandshakeComplete: true}, 401, mtls.NoCertificate},
		{"§3: no TLS", bound, nil, 401, mtls.NoCertificate},
		{"an unbound token with a certificate", plain, other.State(true), 200, ""},
		{"an unbound token without one", plain, nil, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := certGet(t, h, "Bearer "+tc.token, tc.st)
			if tc.status == 200 {
				mustAccept(t, res)
				return
			}
			body := checkRefused(t, res, tc.status, "invalid_token")
			if body.Description != tc.desc {
				t.Errorf("error_description %q, want %q", body.Description, tc.desc)
			}
			if refusalReason(&bearer.Error{Status: tc.status, Code: bearer.InvalidToken, Desc: tc.desc}) != "cert_binding" {
				t.Errorf("refusal not counted as cert_binding")
			}
		})
	}
}

// TestCertAndDPoPBound: a token bound to both a DPoP key and a
// certificate needs both (RFC 9449 §7 and RFC 8705 §3).
func TestCertAndDPoPBound(t *testing.T) {
	f := newFixture(t)
	good, other := testCerts(t)
	key := mustDPoPKey(t)
	tok := f.token(t, claims("notes:read", map[string]any{"cnf": map[string]any{"jkt": key.JKT, "x5t#S256": mtls.Thumbprint(good.Cert)}}))
	h := newHandler(t, f, &Scope{})
	// On a TLS connection the URL the proof names is https.
	proof := func() string {
		return key.Proof("GET", "https://example.com/api/notes", dpoptest.Options{AccessToken: tok})
	}
	mustAccept(t, certGet(t, h, "DPoP "+tok, good.State(true), proof()))
	res := certGet(t, h, "DPoP "+tok, other.State(true), proof())
	checkRefused(t, res, 401, "invalid_token")
	if ch := challenges(res); !strings.Contains(ch["DPoP"], `error="invalid_token"`) {
		t.Errorf("a DPoP request refused for its certificate: challenges %v, want the error on the DPoP one", ch)
	}
	checkRefused(t, certGet(t, h, "DPoP "+tok, good.State(true)), 401, "invalid_dpop_proof")
}

// TestCertBoundIntrospected: RFC 8705 §3.2: a resource server that
// introspects reads cnf from the answer and checks the certificate the
// same way.
func TestCertBoundIntrospected(t *testing.T) {
	good, other := testCerts(t)
	as := newTestAS(t, "", "none")
	as.answer("opaque-bound", activeAnswer(as, "user:read", time.Now().Add(time.Hour), map[string]any{"cnf": map[string]any{"x5t#S256": mtls.Thumbprint(good.Cert)}}))
	h, _ := issuerHandler(t, nil, introspectingScope(as, nil))
	r, _ := newRequest(http.MethodGet, "/", "Bearer opaque-bound")
	r.TLS = good.State(true)
	mustAccept(t, serve(t, h, r))
	r, _ = newRequest(http.MethodGet, "/", "Bearer opaque-bound")
	r.TLS = other.State(true)
	checkRefused(t, serve(t, h, r), 401, "invalid_token")
}
