package e2e

import (
	"bytes"
	"os"
	"sync"
	"testing"
)

// secrets are strings no gateway log may ever contain: the demo secrets
// and password, and every token the tests obtained. Each gateway's log is
// searched for all of them when the gateway stops (logMustNotLeak), so by
// the end of the suite every line every gateway wrote has been checked.
var secrets = struct {
	sync.Mutex
	list []string
}{list: []string{
	"reports-demo-secret-not-for-production",
	"provisioning-demo-secret-not-for-production",
	"partner-demo-secret-not-for-production",
	"notes-web-demo-secret-not-for-production",
	"oauth2-proxy-demo-secret-not-for-production",
	"alice-demo-password",
	"e2e-introspection-secret",
}}

// rememberSecret adds s (a token, a code) to what no log may contain.
func rememberSecret(s string) {
	if len(s) < 16 {
		return
	}
	secrets.Lock()
	secrets.list = append(secrets.list, s)
	secrets.Unlock()
}

// logMustNotLeak fails t if the gateway's log holds a secret. A JWT is
// looked for by its signature, the part that makes it usable.
func (g *gateway) logMustNotLeak(t interface{ Errorf(string, ...any) }) {
	b, err := os.ReadFile(g.logPath)
	if err != nil {
		return
	}
	secrets.Lock()
	defer secrets.Unlock()
	for _, s := range secrets.list {
		needle := s
		if i := bytes.LastIndexByte([]byte(s), '.'); i > 0 && i < len(s)-16 {
			needle = s[i+1:]
		}
		if bytes.Contains(b, []byte(needle)) {
			t.Errorf("the gateway log %s contains a secret or token (%.12s…)", g.logPath, s)
		}
	}
}

// errorCounter counts Errorf calls, to test a check that reports with it.
type errorCounter struct{ n int }

func (e *errorCounter) Errorf(string, ...any) { e.n++ }

// TestLogScanFindsLeaks: the log scan finds a remembered token by its
// signature, and passes a clean log.
func TestLogScanFindsLeaks(t *testing.T) {
	const tok = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW9mLWEtdGVzdC10b2tlbi0xMjM0NTY3ODk"
	rememberSecret(tok)
	path := t.TempDir() + "/caddy.log"
	g := &gateway{logPath: path}
	for _, tc := range []struct {
		log  string
		want int
	}{
		{`{"msg":"handled request","status":200}`, 0},
		{`{"msg":"oops","authorization":"Bearer ` + tok + `"}`, 1},
		{`{"msg":"oops","secret":"reports-demo-secret-not-for-production"}`, 1},
	} {
		if err := os.WriteFile(path, []byte(tc.log), 0o600); err != nil {
			t.Fatal(err)
		}
		var ec errorCounter
		g.logMustNotLeak(&ec)
		if ec.n != tc.want {
			t.Errorf("log %q: %d reports, want %d", tc.log, ec.n, tc.want)
		}
	}
}
