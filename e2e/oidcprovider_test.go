package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// oidcProviderDir is the Node project of the OpenID provider: panva's
// oidc-provider, pinned in its package.json and package-lock.json, and
// server.js, which configures it.
const oidcProviderDir = "oidc-provider"

// npmMu serialises npmInstall, so that tests never run npm ci in the same
// folder at once.
var npmMu sync.Mutex

// npmInstall makes sure node_modules holds the pinned oidc-provider.
func npmInstall(t *testing.T) { npmInstallIn(t, oidcProviderDir, "oidc-provider") }

// npmInstallIn makes sure dir/node_modules holds the version of pkg that
// dir/package.json pins: when it is missing, or another version (a
// checkout that moved to another pin), it runs npm ci from the lockfile
// once. It installs nothing else: node and npm must be on the PATH (.ci/run
// sees to that on CI), and their absence fails the test rather than
// skipping it.
func npmInstallIn(t *testing.T, dir, pkg string) {
	t.Helper()
	npmMu.Lock()
	defer npmMu.Unlock()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not on the PATH (%v): this test runs %s with Node.js", err, dir)
	}
	var pj struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pj); err != nil {
		t.Fatalf("%s/package.json: %v", dir, err)
	}
	want := pj.Dependencies[pkg]
	var installed struct{ Version string }
	if b, err := os.ReadFile(filepath.Join(dir, "node_modules", pkg, "package.json")); err == nil {
		_ = json.Unmarshal(b, &installed)
	}
	if want != "" && installed.Version == want {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm is not on the PATH (%v): it installs %s/node_modules from the lockfile", err, dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	t.Logf("npm ci in %s (%s %s): %v", dir, pkg, want, time.Since(start).Round(time.Millisecond))
}

// oidcProvider is a running oidc-provider process.
type oidcProvider struct {
	t             *testing.T
	issuer        string
	clientID      string
	clientSecret  string
	tokenEndpoint string // from its discovery document
	logPath       string
	cmd           *exec.Cmd
	done          chan struct{}
}

// startOIDCProvider runs server.js on a free loopback port with one
// client for the client_credentials grant and the given resources (RFC
// 8707), for which it issues JWT access tokens. It returns once the
// provider's discovery document answers; the process ends with the test.
func startOIDCProvider(t *testing.T, resources ...string) *oidcProvider {
	t.Helper()
	npmInstall(t)
	port := freePorts(t, 1)[0]
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	op := &oidcProvider{
		t:            t,
		issuer:       fmt.Sprintf("http://127.0.0.1:%d", port),
		clientID:     "e2e-oidc-client",
		clientSecret: hex.EncodeToString(secret),
		logPath:      filepath.Join(t.TempDir(), "oidc-provider.log"),
		done:         make(chan struct{}),
	}
	logFile, err := os.Create(op.logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"server.js", "--port", strconv.Itoa(port), "--client-id", op.clientID, "--client-secret", op.clientSecret}
	for _, r := range resources {
		args = append(args, "--resource", r)
	}
	op.cmd = exec.Command("node", args...)
	op.cmd.Dir = oidcProviderDir
	op.cmd.Stdout, op.cmd.Stderr = logFile, logFile
	start := time.Now()
	if err := op.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatal(err)
	}
	go func() {
		_ = op.cmd.Wait()
		logFile.Close()
		close(op.done)
	}()
	t.Cleanup(func() {
		op.stop()
		if t.Failed() {
			op.dumpLog()
		}
	})
	op.waitReady()
	t.Logf("oidc-provider at %s answered its discovery document after %v", op.issuer, time.Since(start).Round(time.Millisecond))
	return op
}

// waitReady polls the OpenID Connect discovery document until it answers
// for this issuer, for 30 s at most.
func (op *oidcProvider) waitReady() {
	op.t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-op.done:
			op.dumpLog()
			op.t.Fatal("oidc-provider exited during start")
		default:
		}
		resp, err := client.Get(op.issuer + "/.well-known/openid-configuration")
		if err == nil {
			var md struct {
				Issuer        string `json:"issuer"`
				TokenEndpoint string `json:"token_endpoint"`
			}
			err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&md)
			resp.Body.Close()
			switch {
			case err != nil:
				last = err.Error()
			case resp.StatusCode != http.StatusOK:
				last = resp.Status
			case md.Issuer != op.issuer || md.TokenEndpoint == "":
				op.t.Fatalf("discovery document names issuer %q and token endpoint %q; want issuer %q", md.Issuer, md.TokenEndpoint, op.issuer)
			default:
				op.tokenEndpoint = md.TokenEndpoint
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	op.dumpLog()
	op.t.Fatalf("oidc-provider did not answer its discovery document in 30s (last: %s)", last)
}

// stop ends the process: SIGTERM, then a kill after 5 s.
func (op *oidcProvider) stop() {
	select {
	case <-op.done:
		return
	default:
	}
	_ = op.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-op.done:
	case <-time.After(5 * time.Second):
		_ = op.cmd.Process.Kill()
		<-op.done
	}
}

func (op *oidcProvider) dumpLog() {
	b, err := os.ReadFile(op.logPath)
	if err != nil {
		return
	}
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	op.t.Logf("oidc-provider log (tail):\n%s", b)
}

// token gets an access token from the provider's token endpoint with
// x/oauth2's client credentials flow (client_secret_basic), for resource
// when it is not "" (RFC 8707).
func (op *oidcProvider) token(resource string, scopes ...string) string {
	op.t.Helper()
	cc := &clientcredentials.Config{
		ClientID:     op.clientID,
		ClientSecret: op.clientSecret,
		TokenURL:     op.tokenEndpoint,
		Scopes:       scopes,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	if resource != "" {
		cc.EndpointParams = url.Values{"resource": {resource}}
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: 10 * time.Second})
	tok, err := cc.Token(ctx)
	if err != nil {
		op.t.Fatalf("token for resource %q, scopes %q: %v", resource, scopes, err)
	}
	return tok.AccessToken
}

// jwtParts decodes the JOSE header and the claims of a compact JWS,
// without verifying it: what the provider put in its tokens.
func jwtParts(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	segs := strings.Split(tok, ".")
	if len(segs) != 3 {
		t.Fatalf("not a compact JWS (%d segments): %.20q…", len(segs), tok)
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(segs[i])
		if err != nil {
			t.Fatalf("JWT segment %d: %v", i, err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatalf("JWT segment %d: %v", i, err)
		}
	}
	return header, claims
}

// TestOIDCProviderInterop: a real OpenID provider that nobody here wrote,
// the npm oidc-provider (the version e2e/oidc-provider pins), issues the
// tokens; a real Caddy from Caddyfile.example has a route trusting it as
// `issuer http://127.0.0.1:<port> { audience <resource> }`, finding its
// keys through the provider's own discovery document (it serves OpenID
// Connect discovery, not RFC 8414's document, so the fallback is what is
// used). Its RFC 9068 JWT access tokens for that resource pass with their
// scopes; no token gets 401 with a Bearer challenge, too few scopes 403
// insufficient_scope, a token for another resource and one of the
// provider's opaque tokens 401 invalid_token.
func TestOIDCProviderInterop(t *testing.T) {
	needBinary(t)
	p := newPorts(t)
	// Resource indicators (RFC 8707) are the APIs' URLs at the gateway:
	// the partner API that the new route serves, and the notes API as the
	// other resource whose tokens the route must refuse.
	resource := fmt.Sprintf("https://localhost:%d/api/partner", p.https)
	otherResource := fmt.Sprintf("https://localhost:%d/api/notes", p.https)
	op := startOIDCProvider(t, resource, otherResource)

	cfg := insertRoute(t, exampleCaddyfile(t, p), partnerRoute(p, op.issuer,
		fmt.Sprintf("\t\t\t\taudience %s\n\t\t\t\ttimeout 2s", resource)))
	g := startGateway(t, p, cfg, "")

	full := op.token(resource, "user:read", "user:write")
	readOnly := op.token(resource, "user:read")
	forOther := op.token(otherResource, "user:read", "user:write")
	opaque := op.token("", "user:read")

	// What the test relies on from the provider: its tokens for a
	// resource are RFC 9068 JWTs whose aud is that resource.
	header, claims := jwtParts(t, full)
	if header["typ"] != "at+jwt" || header["kid"] == nil {
		t.Fatalf("provider's token header %v: want typ at+jwt and a kid", header)
	}
	if claims["iss"] != op.issuer || claims["aud"] != resource || claims["client_id"] != op.clientID ||
		claims["scope"] != "user:read user:write" || claims["sub"] == nil || claims["jti"] == nil || claims["iat"] == nil {
		t.Fatalf("provider's token claims %v", claims)
	}
	if _, c := jwtParts(t, forOther); c["aud"] != otherResource {
		t.Fatalf("token for the other resource has aud %v", c["aud"])
	}
	if strings.Count(opaque, ".") == 2 {
		t.Fatalf("without a resource the provider issued a JWT, not its default opaque token: %.40q…", opaque)
	}

	t.Run("its token for the resource is accepted", func(t *testing.T) {
		status, _, body := g.do("GET", "/api/partner/42", full, nil)
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, body)
		}
		echo := decodeEcho(t, body)
		if !slices.Equal(echo.ClientID, []string{op.clientID}) || echo.UserID != claims["sub"] ||
			echo.Scope != "user:read user:write" || echo.Method != "GET" || echo.Path != "/partner/42" {
			t.Fatalf("upstream got %+v", echo)
		}
		status, _, body = g.do("POST", "/api/partner", full, nil)
		if status != http.StatusOK {
			t.Fatalf("POST with user:write: status %d: %s", status, body)
		}
		if echo := decodeEcho(t, body); echo.Method != "POST" {
			t.Fatalf("upstream got %+v", echo)
		}
	})

	t.Run("no token: 401 with a Bearer challenge", func(t *testing.T) {
		status, h, body := g.do("GET", "/api/partner", "", nil)
		if status != http.StatusUnauthorized {
			t.Fatalf("status %d: %s", status, body)
		}
		if ch := h.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer") {
			t.Errorf("WWW-Authenticate = %q", ch)
		}
	})

	t.Run("too few scopes: 403 insufficient_scope", func(t *testing.T) {
		if status, _, body := g.do("GET", "/api/partner", readOnly, nil); status != http.StatusOK {
			t.Fatalf("GET with user:read: status %d: %s", status, body)
		}
		status, h, body := g.do("POST", "/api/partner", readOnly, nil)
		expectBearerError(t, "POST with user:read only", status, h, body, http.StatusForbidden, "insufficient_scope")
		if ch := h.Get("WWW-Authenticate"); !strings.Contains(ch, `scope="user:write"`) {
			t.Errorf("WWW-Authenticate = %q: does not name the scope needed", ch)
		}
	})

	t.Run("token for another resource: 401 invalid_token", func(t *testing.T) {
		status, h, body := g.do("GET", "/api/partner", forOther, nil)
		expectBearerError(t, "aud of another resource", status, h, body, http.StatusUnauthorized, "invalid_token")
		if ch := h.Get("WWW-Authenticate"); !strings.Contains(ch, "audience") {
			t.Errorf("WWW-Authenticate = %q: does not say the audience is wrong", ch)
		}
	})

	t.Run("its opaque token (no resource asked for): 401 invalid_token", func(t *testing.T) {
		status, h, body := g.do("GET", "/api/partner", opaque, nil)
		expectBearerError(t, "opaque token", status, h, body, http.StatusUnauthorized, "invalid_token")
	})
}
