package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// oauth2-proxy (https://github.com/oauth2-proxy/oauth2-proxy), the reverse
// proxy people put in front of a web app to make its visitors sign in, runs
// unchanged with the gateway of Caddyfile.example as its OpenID provider:
// it discovers the gateway from the issuer URL, sends the browser through
// the login and consent pages, redeems the code (client secret and PKCE),
// verifies the ID token, and signs out at the end_session_endpoint.

const (
	// oauth2ProxyModule is built from the Go module proxy at this pinned
	// version; it is not a dependency of any module of this repository.
	oauth2ProxyModule  = "github.com/oauth2-proxy/oauth2-proxy/v7"
	oauth2ProxyVersion = "v7.15.6"
	// oauth2ProxyExamplePort is where Caddyfile.example expects it (its
	// default, 127.0.0.1:4180); the test swaps in a free port.
	oauth2ProxyExamplePort = "4180"
)

// oauth2ProxyClient is the confidential client of Caddyfile.example that
// oauth2-proxy signs people in as.
var oauth2ProxyClient = demoClient{"oauth2-proxy", "oauth2-proxy-demo-secret-not-for-production"}

// oauth2ProxyBin returns the oauth2-proxy binary, built once per version
// (and Go toolchain) into the OS temp dir with `go install module@version`,
// so later runs start at once.
func oauth2ProxyBin(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "gateway-e2e-oauth2-proxy-"+oauth2ProxyVersion+"-"+runtime.Version())
	bin := filepath.Join(dir, "oauth2-proxy")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Built into a directory of its own, then renamed: a run that is
	// interrupted leaves no half-written binary at bin.
	gobin, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(gobin)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "install", oauth2ProxyModule+"@"+oauth2ProxyVersion)
	cmd.Dir = gobin // outside any module: the pinned version's own go.mod decides
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s@%s: %v\n%s", oauth2ProxyModule, oauth2ProxyVersion, err, out)
	}
	if err := os.Rename(filepath.Join(gobin, "oauth2-proxy"), bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built oauth2-proxy %s in %s", oauth2ProxyVersion, time.Since(start).Round(time.Second))
	return bin
}

// startOAuth2Proxy runs oauth2-proxy on 127.0.0.1:port in front of
// upstream, with g as its OIDC provider, and waits until it answers /ping.
// Its log is shown when the test fails.
func startOAuth2Proxy(t *testing.T, g *gateway, port int, upstream string) {
	t.Helper()
	bin := oauth2ProxyBin(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	logPath := filepath.Join(t.TempDir(), "oauth2-proxy.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cookieSecret := rand.Text()[:24] // 24 bytes: an AES-192 key
	cmd := exec.Command(bin,
		"--http-address=127.0.0.1:"+strconv.Itoa(port),
		"--provider=oidc",
		"--provider-display-name=Caddy API gateway",
		"--oidc-issuer-url="+g.url(""),
		// The gateway's certificate comes from Caddy's internal CA.
		"--provider-ca-file="+filepath.Join(g.home, "data", "caddy", "pki", "authorities", "local", "root.crt"),
		"--client-id="+oauth2ProxyClient.id,
		"--client-secret="+oauth2ProxyClient.secret,
		"--redirect-url="+base+"/oauth2/callback",
		"--scope=openid email profile",
		"--code-challenge-method=S256",
		"--email-domain=*",
		"--cookie-secret="+cookieSecret,
		"--cookie-secure=false", // plain http on loopback in this test
		"--upstream="+upstream,
		// Straight to the gateway's login page, no "Sign in with" button.
		"--skip-provider-button",
		// The sign-out's rd= goes to the gateway's end_session_endpoint.
		"--whitelist-domain=localhost:"+strconv.Itoa(g.ports.https),
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("oauth2-proxy log (tail):\n%s", b)
		}
	})
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("oauth2-proxy exited during start:\n%s", b)
		default:
		}
		if resp, err := client.Get(base + "/ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("oauth2-proxy did not answer /ping in 20s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestOAuth2ProxySignIn: headless Chromium opens an app behind oauth2-proxy,
// is sent to the gateway's login page, signs in as alice and consents,
// lands back at oauth2-proxy and reaches the app, which sees alice in the
// X-Forwarded-User and X-Forwarded-Email headers oauth2-proxy sets; then
// signs out through oauth2-proxy's /oauth2/sign_out and the gateway's
// end_session_endpoint, after which the app sends the browser to the login
// page again.
func TestOAuth2ProxySignIn(t *testing.T) {
	p := newPorts(t)
	proxyPort := freePorts(t, 1)[0]
	cfg := exampleCaddyfile(t, p)
	if !strings.Contains(cfg, "127.0.0.1:"+oauth2ProxyExamplePort+"/") {
		t.Fatal("Caddyfile.example no longer registers oauth2-proxy at 127.0.0.1:" + oauth2ProxyExamplePort)
	}
	cfg = strings.ReplaceAll(cfg, "127.0.0.1:"+oauth2ProxyExamplePort+"/", fmt.Sprintf("127.0.0.1:%d/", proxyPort))
	g := startGateway(t, p, cfg, "")

	// The protected app: it shows whom oauth2-proxy says it serves.
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>app</title><p id="app">app says hello to user=%s email=%s</p>`,
			html.EscapeString(r.Header.Get("X-Forwarded-User")), html.EscapeString(r.Header.Get("X-Forwarded-Email")))
	}))
	t.Cleanup(app.Close)
	if host, _, _ := net.SplitHostPort(app.Listener.Addr().String()); host != "127.0.0.1" {
		t.Fatalf("the app listens on %s, want 127.0.0.1", host)
	}
	startOAuth2Proxy(t, g, proxyPort, app.URL)
	base := fmt.Sprintf("http://127.0.0.1:%d", proxyPort)

	ctx := newBrowser(t)

	// The app's address sends the browser to the gateway's login page.
	var loginAt, consentText string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`#username`, chromedp.ByID),
		chromedp.Location(&loginAt),
		chromedp.SendKeys(`#username`, demoUser, chromedp.ByID),
		chromedp.SendKeys(`#password`, demoPassword, chromedp.ByID),
		chromedp.Click(`#sign-in`, chromedp.ByID),
		chromedp.WaitVisible(`#allow`, chromedp.ByID),
		chromedp.Text(`main`, &consentText, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("login: %v", err)
	}
	if !strings.HasPrefix(loginAt, g.url("/oauth2/authorize?")) {
		t.Errorf("the app sent the browser to %s, want the gateway's authorization endpoint", loginAt)
	}
	if q := mustParseURL(t, loginAt).Query(); q.Get("client_id") != oauth2ProxyClient.id || q.Get("code_challenge_method") != "S256" || q.Get("redirect_uri") != base+"/oauth2/callback" {
		t.Errorf("oauth2-proxy's authorization request %s: want client_id %s, PKCE S256 and its callback", loginAt, oauth2ProxyClient.id)
	}
	for _, want := range []string{"oauth2-proxy", "Alice Example", "Sign you in with your account here", "See your e-mail address"} {
		if !strings.Contains(consentText, want) {
			t.Errorf("consent page lacks %q: %s", want, consentText)
		}
	}

	// Allow: oauth2-proxy redeems the code, checks the ID token, sets its
	// session cookie and proxies to the app.
	var appText string
	if err := chromedp.Run(ctx,
		chromedp.Click(`#allow`, chromedp.ByID),
		chromedp.WaitVisible(`#app`, chromedp.ByID),
		waitURLPrefix(base+"/"),
		chromedp.Text(`#app`, &appText, chromedp.ByID),
	); err != nil {
		t.Fatalf("back at oauth2-proxy: %v", err)
	}
	if want := "app says hello to user=alice email=alice@example.com"; appText != want {
		t.Errorf("the app says %q, want %q", appText, want)
	}
	// Signed in: the app is reached directly now.
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/again"),
		chromedp.WaitVisible(`#app`, chromedp.ByID),
		chromedp.Text(`#app`, &appText, chromedp.ByID),
	); err != nil || !strings.Contains(appText, "user=alice") {
		t.Fatalf("second visit: %v %q", err, appText)
	}

	// Sign out: oauth2-proxy clears its cookie and sends the browser to the
	// gateway's end_session_endpoint. oauth2-proxy's rd= is a fixed
	// address, without id_token_hint, so the gateway does not take the
	// request for the person's own (RP-Initiated Logout §2): it shows the
	// account page, whose button signs out.
	endSession := g.url("/oauth2/end_session?" + url.Values{
		"client_id":                {oauth2ProxyClient.id},
		"post_logout_redirect_uri": {base + "/"},
	}.Encode())
	var signedOut, accountAt string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/oauth2/sign_out?"+url.Values{"rd": {endSession}}.Encode()),
		chromedp.WaitVisible(`#sign-out`, chromedp.ByID),
		chromedp.Location(&accountAt),
		chromedp.Click(`#sign-out`, chromedp.ByID),
		chromedp.WaitVisible(`#signed-out`, chromedp.ByID),
		chromedp.Text(`#signed-out`, &signedOut, chromedp.ByID),
	); err != nil {
		t.Fatalf("sign-out: %v", err)
	}
	if accountAt != g.url("/oauth2/account") || signedOut != "Signed out" {
		t.Errorf("sign-out went to %s and ended at %q, want the gateway's account page and Signed out", accountAt, signedOut)
	}

	// Signed out of both: the app's address leads to the login page again,
	// not to the app.
	var loginAgain string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`#password`, chromedp.ByID),
		chromedp.Location(&loginAgain),
	); err != nil {
		t.Fatalf("after sign-out: %v", err)
	}
	if !strings.HasPrefix(loginAgain, g.url("/oauth2/authorize?")) {
		t.Errorf("after sign-out the app sent the browser to %s, want the gateway's login", loginAgain)
	}
}

func mustParseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
