package caddyoauth

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"go.uber.org/zap"
)

// TestSecretKinds: every documented way of registering a client secret
// authenticates the right secret with both client_secret_basic and
// client_secret_post (RFC 6749 §2.3.1) and refuses wrong ones.
func TestSecretKinds(t *testing.T) {
	const secret = "the-right-secret-0123456789"
	t.Setenv("CADDYOAUTH_TEST_PLAIN_SECRET", secret)

	bcryptH := bcryptHash(t, secret)
	argonH := argon2idHash(secret)
	// The argon2id format must be the one caddy's own comparer reads.
	if ok, err := (caddyauth.Argon2idHash{}).Compare([]byte(argonH), []byte(secret)); err != nil || !ok {
		t.Fatalf("test argon2id hash not accepted by caddyauth: %v %v", ok, err)
	}

	tests := []struct {
		name   string
		client Client
	}{
		{"secret_hash sha256", Client{SecretHash: sha256Hex(secret)}},
		{"secret_hash sha256, upper-case hex", Client{SecretHash: "sha256:" + strings.ToUpper(strings.TrimPrefix(sha256Hex(secret), "sha256:"))}},
		{"secret from {env.*}", Client{Secret: "{env.CADDYOAUTH_TEST_PLAIN_SECRET}"}},
		{"secret literal", Client{Secret: secret}},
		{"secret_hash bcrypt $2a$", Client{SecretHash: bcryptH}},
		{"secret_hash bcrypt $2b$", Client{SecretHash: "$2b$" + strings.TrimPrefix(bcryptH, "$2a$")}},
		{"secret_hash bcrypt $2y$", Client{SecretHash: "$2y$" + strings.TrimPrefix(bcryptH, "$2a$")}},
		{"secret_hash argon2id", Client{SecretHash: argonH}},
		{"secret_hash base64(bcrypt)", Client{SecretHash: base64.StdEncoding.EncodeToString([]byte(bcryptH))}},
		{"secret_hash base64(argon2id)", Client{SecretHash: base64.StdEncoding.EncodeToString([]byte(argonH))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.client
			c.ID, c.Scopes = "c1", []string{"a"}
			s := newTestServer(t, &App{Issuer: testIssuer, Clients: []*Client{&c}})

			decodeTokenResponse(t, basicToken(t, s, "c1", secret, ccForm()))
			decodeTokenResponse(t, postToken(t, s, ccForm("client_id", "c1", "client_secret", secret)))
			for _, wrong := range []string{"", secret + "x", secret[:len(secret)-1], strings.ToUpper(secret), " " + secret, secret + "\n"} {
				assertOAuthError(t, basicToken(t, s, "c1", wrong, ccForm()), http.StatusUnauthorized, "invalid_client")
				if wrong != "" {
					assertOAuthError(t, postToken(t, s, ccForm("client_id", "c1", "client_secret", wrong)), http.StatusBadRequest, "invalid_client")
				}
			}
			// After failures, the right secret still works (nothing locks).
			decodeTokenResponse(t, basicToken(t, s, "c1", secret, ccForm()))
		})
	}
}

// TestSecretCaddyHashPasswordOutput: hashes exactly as `caddy
// hash-password` prints them are accepted. Caddy's FakeHash values are its
// own output for the plaintext "antitiming" (see caddyauth/bcrypt.go and
// argon2id.go). The bcrypt one (cost 14) is only parsed here: verifying it
// takes seconds, tens of seconds under -race.
func TestSecretCaddyHashPasswordOutput(t *testing.T) {
	const plaintext = "antitiming"
	argon := string(caddyauth.Argon2idHash{}.FakeHash())
	bc := string(caddyauth.BcryptHash{}.FakeHash())

	c := &Client{ClientSettings: ClientSettings{ID: "a", Scopes: []string{"a"}}, SecretHash: argon}
	b := &Client{ClientSettings: ClientSettings{ID: "b", Scopes: []string{"a"}}, SecretHash: bc}
	s := newTestServer(t, &App{Issuer: testIssuer, Clients: []*Client{c, b}})
	decodeTokenResponse(t, basicToken(t, s, "a", plaintext, ccForm()))
	assertOAuthError(t, basicToken(t, s, "a", plaintext+"!", ccForm()), http.StatusUnauthorized, "invalid_client")
	if _, ok := b.secret.(*slowHashChecker); !ok {
		t.Fatalf("bcrypt hash gave checker %T, want a slow-hash checker", b.secret)
	}
}

// countingComparer is a caddyauth.Comparer that counts its calls.
type countingComparer struct {
	calls  atomic.Int32
	secret string
	err    error
}

func (c *countingComparer) Compare(hashed, plaintext []byte) (bool, error) {
	c.calls.Add(1)
	if c.err != nil {
		return false, c.err
	}
	return string(plaintext) == c.secret, nil
}

// TestSlowHashCacheRemembersOnlySuccess: a verified secret is remembered so
// the slow hash runs once; a wrong secret always runs it and never
// succeeds, even right after the right one; the memory expires.
func TestSlowHashCacheRemembersOnlySuccess(t *testing.T) {
	cmp := &countingComparer{secret: "right"}
	s := &slowHashChecker{hash: []byte("$2a$unused"), comparer: cmp}
	steps := []struct {
		presented string
		want      bool
		calls     int32
	}{
		{"wrong", false, 1}, // nothing cached yet
		{"wrong", false, 2}, // failures are not remembered
		{"right", true, 3},  // slow hash once
		{"right", true, 3},  // then from the cache
		{"wrong", false, 4}, // a wrong secret after a right one still fails, at full cost
		{"right", true, 4},  // and does not evict the right one
		{"righ", false, 5},  // a prefix is wrong
		{"right\x00", false, 6},
		{"", false, 7},
	}
	for i, st := range steps {
		if got := s.check(st.presented); got != st.want {
			t.Fatalf("step %d: check(%q) = %v, want %v", i, st.presented, got, st.want)
		}
		if got := cmp.calls.Load(); got != st.calls {
			t.Fatalf("step %d: comparer called %d times, want %d", i, got, st.calls)
		}
	}

	// The memory lasts secretCacheTTL: once it is over, the hash runs again.
	s.mu.Lock()
	if until := time.Until(s.expiry); until <= 0 || until > secretCacheTTL {
		t.Errorf("cache expiry in %v, want within (0, %v]", until, secretCacheTTL)
	}
	s.expiry = time.Now().Add(-time.Second)
	s.mu.Unlock()
	if !s.check("right") || cmp.calls.Load() != 8 {
		t.Fatalf("after expiry: comparer calls = %d, want 8", cmp.calls.Load())
	}

	// A comparer error is a failure, never a success.
	bad := &slowHashChecker{hash: []byte("x"), comparer: &countingComparer{secret: "right", err: errors.New("boom")}}
	if bad.check("right") {
		t.Fatal("comparer error treated as success")
	}
}

// TestSlowHashCacheEndToEnd: through the token endpoint with a real bcrypt
// hash, a wrong secret after a right one still fails.
func TestSlowHashCacheEndToEnd(t *testing.T) {
	const secret = "bcrypt-secret-0123456789"
	c := &Client{ClientSettings: ClientSettings{ID: "b", Scopes: []string{"a"}}, SecretHash: bcryptHash(t, secret)}
	s := newTestServer(t, &App{Issuer: testIssuer, Clients: []*Client{c}})
	decodeTokenResponse(t, basicToken(t, s, "b", secret, ccForm()))
	assertOAuthError(t, basicToken(t, s, "b", "wrong-"+secret, ccForm()), http.StatusUnauthorized, "invalid_client")
	assertOAuthError(t, basicToken(t, s, "b", secret[:len(secret)-1], ccForm()), http.StatusUnauthorized, "invalid_client")
	decodeTokenResponse(t, basicToken(t, s, "b", secret, ccForm()))
}

// TestDigestCheckerExact: the SHA-256 comparison (constant-time by
// construction, which a test cannot time) accepts exactly the secret.
func TestDigestCheckerExact(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	chk, err := parseSecretHash(sha256Hex(secret))
	if err != nil {
		t.Fatal(err)
	}
	if !chk.check(secret) {
		t.Fatal("right secret refused")
	}
	for _, wrong := range []string{"", secret[:31], secret + "0", "1" + secret[1:], secret[:31] + "e", strings.ToUpper(secret), sha256Hex(secret)} {
		if chk.check(wrong) {
			t.Errorf("check(%q) accepted", wrong)
		}
	}
	var none Client
	if none.checkSecret("") || none.checkSecret(secret) {
		t.Error("a client without a secret checker authenticated")
	}
	fake := newFakeClient()
	for _, s := range []string{"", secret, "\x00no client has this secret"[1:]} {
		if fake.checkSecret(s) {
			t.Errorf("fake client accepted %q", s)
		}
	}
}

// TestParseSecretHash: accepted and refused secret_hash forms.
func TestParseSecretHash(t *testing.T) {
	bc := bcryptHash(t, "some-secret-0123456789")
	argon := argon2idHash("some-secret-0123456789")
	tests := []struct {
		name    string
		in      string
		wantErr string // "" when accepted
	}{
		{"sha256", sha256Hex("x"), ""},
		{"bcrypt", bc, ""},
		{"argon2id", argon, ""},
		{"base64 bcrypt", base64.StdEncoding.EncodeToString([]byte(bc)), ""},
		{"sha256 too short", "sha256:abcd", "sha256"},
		{"sha256 too long", sha256Hex("x") + "00", "sha256"},
		{"sha256 not hex", "sha256:" + strings.Repeat("zz", 32), "sha256"},
		{"sha256 empty", "sha256:", "sha256"},
		{"bcrypt truncated", bc[:20], "bcrypt"},
		{"bcrypt bad cost", "$2a$99$" + bc[7:], "bcrypt"},
		{"argon2i is not argon2id", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5", "not a recognized hash"},
		{"argon2id garbled", "$argon2id$v=19$m=x,t=1,p=1$c2FsdA$a2V5", "argon2id"},
		{"argon2id wrong version", strings.Replace(argon, "v=19", "v=16", 1), "argon2id"},
		{"md5 crypt", "$1$salt$hash", "not a recognized hash"},
		{"plain text", "hunter2hunter2hunter2", "not a recognized hash"},
		{"base64 of garbage", base64.StdEncoding.EncodeToString([]byte("garbage")), "not a recognized hash"},
		{"base64 of sha256 form", base64.StdEncoding.EncodeToString([]byte(sha256Hex("x"))), "not a recognized hash"},
		{"base64 of bad bcrypt", base64.StdEncoding.EncodeToString([]byte(bc[:20])), "bcrypt"},
		{"empty", "", "not a recognized hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chk, err := parseSecretHash(tt.in)
			if tt.wantErr == "" {
				if err != nil || chk == nil {
					t.Fatalf("parseSecretHash(%q) = %v, %v; want accepted", tt.in, chk, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("parseSecretHash(%q) accepted", tt.in)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

// TestSlowHashBounded: when every slow-hash slot is busy (a flood of wrong
// secrets), a further comparison gives up after slowHashWait instead of
// queuing without bound, while a secret already verified is still accepted
// from the cache.
func TestSlowHashBounded(t *testing.T) {
	chk, err := parseSecretHash(bcryptHash(t, "a-secret-for-the-slot-test"))
	if err != nil {
		t.Fatal(err)
	}
	if !chk.check("a-secret-for-the-slot-test") {
		t.Fatal("right secret refused")
	}
	held := 0
	for acquireSlowHashSlot() {
		held++
		if held > 1024 {
			t.Fatal("slots are not bounded")
		}
	}
	defer func() {
		for range held {
			releaseSlowHashSlot()
		}
	}()
	if held != cap(slowHashSlots) {
		t.Fatalf("held %d slots, capacity %d", held, cap(slowHashSlots))
	}
	start := time.Now()
	if chk.check("a-wrong-secret-while-busy") {
		t.Fatal("wrong secret accepted")
	}
	if waited := time.Since(start); waited < slowHashWait/2 {
		t.Errorf("gave up after %v, before waiting for a slot", waited)
	}
	if !chk.check("a-secret-for-the-slot-test") {
		t.Error("cached right secret refused while slots are busy")
	}
	other, _ := parseSecretHash(bcryptHash(t, "another-secret-never-cached"))
	if other.check("another-secret-never-cached") {
		t.Error("a slow comparison ran without a slot")
	}
}

// TestDemoSecretsOnlyOnLocalhost: the demo secrets the README publishes
// work with a localhost issuer and are refused with any other, so a copied
// example cannot hand out tokens to whoever read the README.
func TestDemoSecretsOnlyOnLocalhost(t *testing.T) {
	for _, tt := range []struct {
		issuer string
		ok     bool
	}{
		{"https://localhost:8443", true},
		{"http://127.0.0.1:9000", true},
		{"https://api.example.com", false},
		{"https://gateway.localhost.example.com", false},
	} {
		for _, h := range demoSecretHashes {
			a := &App{Issuer: tt.issuer, Clients: []*Client{{ClientSettings: ClientSettings{ID: "demo", Scopes: []string{"s"}}, SecretHash: h[:7] + strings.ToUpper(h[7:])}}}
			err := a.provision(context.Background(), newStorage(t), zap.NewNop())
			if tt.ok && err != nil {
				t.Errorf("%s: demo secret refused: %v", tt.issuer, err)
			}
			if !tt.ok && (err == nil || !strings.Contains(err.Error(), "secret_hash") || !strings.Contains(err.Error(), "demo secret")) {
				t.Errorf("%s: demo secret accepted or error does not say why: %v", tt.issuer, err)
			}
		}
	}
}

// TestDemoSecretsMatchExample keeps demoSecretHashes in step with the
// secret hashes of Caddyfile.example.
func TestDemoSecretsMatchExample(t *testing.T) {
	b, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		directive string
		list      []string
	}{{"secret_hash", demoSecretHashes}, {"password_hash", demoPasswordHashes}} {
		found := 0
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && f[0] == tc.directive {
				found++
				if !slices.Contains(tc.list, f[1]) {
					t.Errorf("Caddyfile.example %s %s is not in the demo list", tc.directive, f[1])
				}
			}
		}
		if found != len(tc.list) {
			t.Errorf("Caddyfile.example has %d %s lines, the demo list %d", found, tc.directive, len(tc.list))
		}
	}
}

// TestDemoPasswordOnlyOnLocalhost: the README's demo password works only
// with a loopback issuer, like the demo secrets.
func TestDemoPasswordOnlyOnLocalhost(t *testing.T) {
	for _, tt := range []struct {
		issuer string
		ok     bool
	}{{"https://localhost:8443", true}, {"https://api.example.com", false}} {
		a := &App{Issuer: tt.issuer, Users: []*User{{Username: "alice", PasswordHash: demoPasswordHashes[0]}}}
		err := a.provision(context.Background(), newStorage(t), zap.NewNop())
		if tt.ok != (err == nil) || !tt.ok && !strings.Contains(err.Error(), "demo password") {
			t.Errorf("%s: %v", tt.issuer, err)
		}
	}
}

// blockingComparer is countingComparer that holds each comparison until
// release is closed, so that checks overlap.
type blockingComparer struct {
	countingComparer
	started chan struct{}
	release chan struct{}
}

func (c *blockingComparer) Compare(hashed, plaintext []byte) (bool, error) {
	c.started <- struct{}{}
	<-c.release
	return c.countingComparer.Compare(hashed, plaintext)
}

// TestSlowHashConcurrentChecksShareOne: checks of the same secret that
// arrive while its slow hash runs wait for that one answer (the memory of
// a verified secret expiring under load must not start one bcrypt per
// request, which ran the slot queue dry); a different secret arriving
// meanwhile still gets its own comparison, and its own answer.
func TestSlowHashConcurrentChecksShareOne(t *testing.T) {
	cmp := &blockingComparer{countingComparer: countingComparer{secret: "right"},
		started: make(chan struct{}, 16), release: make(chan struct{})}
	s := &slowHashChecker{hash: []byte("$2a$unused"), comparer: cmp}

	const n = 8
	results := make(chan bool, n)
	go func() { results <- s.check("right") }()
	<-cmp.started // the first comparison is running
	for range n - 1 {
		go func() { results <- s.check("right") }()
	}
	wrong := make(chan bool, 1)
	go func() { wrong <- s.check("wrong") }()
	<-cmp.started // the wrong secret's own comparison
	// Let the waiters reach the running check before it ends.
	for deadline := time.Now().Add(5 * time.Second); ; {
		s.mu.Lock()
		inFlight := len(s.inFlight)
		s.mu.Unlock()
		if inFlight == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(cmp.release)
	for range n {
		if !<-results {
			t.Fatal("a check of the right secret failed")
		}
	}
	if <-wrong {
		t.Fatal("the wrong secret was accepted")
	}
	if got := cmp.calls.Load(); got != 2 {
		t.Fatalf("comparer ran %d times for %d concurrent checks of one secret and one other; want 2", got, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.inFlight) != 0 {
		t.Fatalf("%d checks left in flight", len(s.inFlight))
	}
}
