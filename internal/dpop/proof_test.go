package dpop_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caddyapigw/gateway/internal/dpop"
	"github.com/caddyapigw/gateway/internal/dpop/dpoptest"
)

const tokenURL = "https://as.example/oauth2/token"

func mustKey(t testing.TB, alg string) *dpoptest.Key {
	t.Helper()
	k, err := dpoptest.NewKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestCheckRFC9449 walks RFC 9449 §4.3's list of checks: each case breaks
// one of them and must be refused; the good proofs must pass with the
// key's thumbprint.
func TestCheckRFC9449(t *testing.T) {
	now := time.Now()
	es := mustKey(t, "ES256")
	ed := mustKey(t, "EdDSA")
	rs := mustKey(t, "RS256")
	other := mustKey(t, "ES256")
	want := dpop.Expect{Method: "POST", URL: tokenURL, Now: now}
	withToken := want
	withToken.AccessToken = "the.access.token"
	cases := []struct {
		name   string
		proof  string
		expect dpop.Expect
		ok     bool
		desc   string // part of the refusal's description
	}{
		{"good ES256", es.Proof("POST", tokenURL, dpoptest.Options{}), want, true, ""},
		{"good EdDSA", ed.Proof("POST", tokenURL, dpoptest.Options{}), want, true, ""},
		{"good RS256", rs.Proof("POST", tokenURL, dpoptest.Options{}), want, true, ""},
		{"§4.3 item 9: htu normalised (case, default port, query dropped)", es.Proof("POST", "HTTPS://AS.example:443/oauth2/token?x=1", dpoptest.Options{}), want, true, ""},
		{"§4.3 item 12: ath matches", es.Proof("POST", tokenURL, dpoptest.Options{AccessToken: "the.access.token"}), withToken, true, ""},
		{"§4.3 item 1: missing", "", want, false, "missing"},
		{"§4.3 item 2: not a JWT", "abc.def", want, false, "not a signed JWT"},
		{"§4.3 item 2: garbage header", "!!.e30.sig", want, false, "malformed"},
		{"§4.3 item 3: no jwk", es.Proof("POST", tokenURL, dpoptest.Options{Header: map[string]any{"jwk": nil}}), want, false, "no jwk"},
		{"§4.3 item 3: no jti", es.Proof("POST", tokenURL, dpoptest.Options{Claims: map[string]any{"jti": nil}}), want, false, "lacks"},
		{"§4.3 item 3: no iat", es.Proof("POST", tokenURL, dpoptest.Options{Claims: map[string]any{"iat": nil}}), want, false, "lacks"},
		{"§4.3 item 4: typ JWT", es.Proof("POST", tokenURL, dpoptest.Options{Typ: "JWT"}), want, false, "typ"},
		{"§4.3 item 5: alg none", noneProof(es), want, false, "algorithm"},
		{"§4.3 item 5: HS256", es.Proof("POST", tokenURL, dpoptest.Options{Header: map[string]any{"alg": "HS256"}}), want, false, "algorithm"},
		{"§4.3 item 5: alg not allowed here", ed.Proof("POST", tokenURL, dpoptest.Options{}), dpop.Expect{Method: "POST", URL: tokenURL, Now: now, Algs: []string{"ES256"}}, false, "algorithm"},
		{"§4.3 item 5: jwk of another type than alg", es.Proof("POST", tokenURL, dpoptest.Options{Header: map[string]any{"alg": "RS256"}}), want, false, "does not fit"},
		{"RFC 7515 §4.1.11: crit not understood", es.Proof("POST", tokenURL, dpoptest.Options{Header: map[string]any{"crit": []string{"exp"}}}), want, false, "does not accept"},
		{"RFC 7515 §4.1.2: jku never fetched", es.Proof("POST", tokenURL, dpoptest.Options{Header: map[string]any{"jku": "https://evil.example/jwks"}}), want, false, "does not accept"},
		{"RFC 7517 §4.4: jwk alg differs from the header's", es.Proof("POST", tokenURL, dpoptest.Options{Header: map[string]any{"jwk": withMember(es, "alg", "ES384")}}), want, false, "does not fit"},
		{"RFC 7517 §4.2: jwk for encryption", es.Proof("POST", tokenURL, dpoptest.Options{Header: map[string]any{"jwk": withMember(es, "use", "enc")}}), want, false, "does not fit"},
		{"point not on the curve", es.Proof("POST", tokenURL, dpoptest.Options{Header: map[string]any{"jwk": withMember(es, "y", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")}}), want, false, "does not fit"},
		{"§4.3 item 6: signature by another key", swapKey(es, other), want, false, "signature"},
		{"§4.3 item 7: private key in jwk", es.Proof("POST", tokenURL, dpoptest.Options{Header: map[string]any{"jwk": map[string]any{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"}}}), want, false, "public key"},
		{"§4.3 item 7: symmetric jwk", es.Proof("POST", tokenURL, dpoptest.Options{Header: map[string]any{"jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}}}), want, false, "public key"},
		{"§4.3 item 8: htm GET for POST", es.Proof("GET", tokenURL, dpoptest.Options{}), want, false, "htm"},
		{"§4.3 item 8: htm case differs", es.Proof("post", tokenURL, dpoptest.Options{}), want, false, "htm"},
		{"§4.3 item 9: another path", es.Proof("POST", "https://as.example/oauth2/other", dpoptest.Options{}), want, false, "htu"},
		{"§4.3 item 9: another host", es.Proof("POST", "https://evil.example/oauth2/token", dpoptest.Options{}), want, false, "htu"},
		{"§4.3 item 9: http for https", es.Proof("POST", "http://as.example/oauth2/token", dpoptest.Options{}), want, false, "htu"},
		{"§4.3 item 9: relative htu", es.Proof("POST", "/oauth2/token", dpoptest.Options{}), want, false, "htu"},
		{"§4.3 item 11: iat too old", es.Proof("POST", tokenURL, dpoptest.Options{IAT: now.Add(-2 * time.Minute)}), want, false, "window"},
		{"§4.3 item 11: iat in the future", es.Proof("POST", tokenURL, dpoptest.Options{IAT: now.Add(2 * time.Minute)}), want, false, "window"},
		{"§4.3 item 12: ath missing", es.Proof("POST", tokenURL, dpoptest.Options{}), withToken, false, "ath"},
		{"§4.3 item 12: ath of another token", es.Proof("POST", tokenURL, dpoptest.Options{AccessToken: "another.token"}), withToken, false, "ath"},
		{"too large", strings.Repeat("a", dpop.MaxProofSize+1), want, false, "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := dpop.Check(tc.proof, tc.expect)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused a good proof: %v", err)
				}
				if p.JKT == "" || p.JTI == "" {
					t.Fatalf("proof without jkt or jti: %+v", p)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted a bad proof")
			}
			if !strings.Contains(err.Error(), tc.desc) {
				t.Fatalf("refusal %q does not say %q", err, tc.desc)
			}
		})
	}
}

// TestThumbprintIsTheKeys checks that Proof.JKT is the RFC 7638 thumbprint
// of the proof's key (what a bound token's cnf.jkt names, §6.1), and
// differs for another key.
func TestThumbprintIsTheKeys(t *testing.T) {
	k, other := mustKey(t, "ES256"), mustKey(t, "ES256")
	p, err := dpop.Check(k.Proof("POST", tokenURL, dpoptest.Options{}), dpop.Expect{Method: "POST", URL: tokenURL, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if p.JKT != k.JKT || p.JKT == other.JKT {
		t.Fatalf("jkt %s, key %s, other %s", p.JKT, k.JKT, other.JKT)
	}
}

// TestSameURL checks htu comparison (§4.3 item 9, RFC 3986 §6.2.2-6.2.3).
func TestSameURL(t *testing.T) {
	cases := []struct {
		a, b string
		same bool
	}{
		{"https://h.example/a", "https://h.example/a", true},
		{"https://H.Example/a", "https://h.example/a", true},
		{"https://h.example:443/a", "https://h.example/a", true},
		{"http://h.example:80/a", "http://h.example/a", true},
		{"https://h.example", "https://h.example/", true},
		{"https://h.example/%7euser", "https://h.example/~user", true},
		{"https://h.example/a%2fb", "https://h.example/a%2Fb", true},
		{"https://h.example/a/./b/../c", "https://h.example/a/c", true},
		{"https://h.example/a?q=1#f", "https://h.example/a", true},
		{"https://h.example/a%2Fb", "https://h.example/a/b", false},
		{"https://h.example:8443/a", "https://h.example/a", false},
		{"https://h.example/A", "https://h.example/a", false},
		{"http://h.example/a", "https://h.example/a", false},
		{"ftp://h.example/a", "ftp://h.example/a", false},
		{"https://u@h.example/a", "https://h.example/a", false},
		{"https://h.example/%zz", "https://h.example/%zz", false},
		{"/a", "/a", false},
	}
	for _, tc := range cases {
		if got := dpop.SameURL(tc.a, tc.b); got != tc.same {
			t.Errorf("SameURL(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

// TestNonces checks server nonces (§8): current and previous period
// accepted, older and made-up ones refused, another key's refused.
func TestNonces(t *testing.T) {
	n := dpop.NewNonces([]byte("0123456789abcdef0123456789abcdef"), time.Minute)
	now := time.Unix(1_800_000_000, 0)
	cur := n.Current(now)
	if !n.Valid(cur, now) || !n.Valid(cur, now.Add(time.Minute)) {
		t.Fatal("current nonce refused within its two periods")
	}
	if n.Valid(cur, now.Add(2*time.Minute)) {
		t.Fatal("a nonce two periods old accepted")
	}
	if n.Valid("", now) || n.Valid(strings.Repeat("A", len(cur)), now) {
		t.Fatal("made-up nonce accepted")
	}
	other := dpop.NewNonces([]byte("another key, 32 bytes long......"), time.Minute)
	if other.Valid(cur, now) {
		t.Fatal("nonce of another key accepted")
	}
	if n.Current(now.Add(time.Minute)) == cur {
		t.Fatal("nonce did not rotate")
	}
}

// TestMemoryReplay checks jti replay detection (§11.1) and that a full
// cache refuses rather than forgets.
func TestMemoryReplay(t *testing.T) {
	m := dpop.NewMemoryReplay(2)
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	if ok, err := m.Claim(ctx, "k1", "a", until); !ok || err != nil {
		t.Fatal("fresh jti refused", err)
	}
	if ok, _ := m.Claim(ctx, "k1", "a", until); ok {
		t.Fatal("replayed jti accepted")
	}
	if ok, _ := m.Claim(ctx, "k2", "a", until); !ok {
		t.Fatal("same jti of another key refused")
	}
	if _, err := m.Claim(ctx, "k3", "b", until); err == nil {
		t.Fatal("full replay cache accepted a proof")
	}
	if ok, _ := m.Claim(ctx, "k1", "a", until); ok {
		t.Fatal("replay accepted once the cache was full")
	}
}

func noneProof(k *dpoptest.Key) string {
	p := k.Proof("POST", tokenURL, dpoptest.Options{Header: map[string]any{"alg": "none"}})
	return p
}

// swapKey returns a proof by signer whose header names other's key.
func swapKey(signer, other *dpoptest.Key) string {
	good := signer.Proof("POST", tokenURL, dpoptest.Options{})
	o := other.Proof("POST", tokenURL, dpoptest.Options{})
	return o[:strings.IndexByte(o, '.')] + good[strings.IndexByte(good, '.'):]
}

// withMember is k's public JWK with one member set.
func withMember(k *dpoptest.Key, name, value string) map[string]any {
	j := k.PublicJWK()
	m := map[string]any{"kty": j.Kty, "crv": j.Crv, "x": j.X, "y": j.Y}
	m[name] = value
	return m
}
