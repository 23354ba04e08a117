package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// nodeRP is a program of oidc-rp (openid-client: a relying party nobody
// here wrote) run against a gateway, whose CA it trusts. It speaks JSON
// lines: it prints one JSON value per line, and reads a line (the URL the
// person's browser was sent back to) when it waits for one.
type nodeRP struct {
	t      *testing.T
	script string
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr strings.Builder
}

// startNodeRP runs `node script args...` in oidcRPDir for at most a
// minute. The test's cleanup closes its input and waits for it.
func startNodeRP(t *testing.T, g *gateway, script string, args ...string) *nodeRP {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 60*time.Second)
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Dir = oidcRPDir
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+g.rootCertPath())
	rp := &nodeRP{t: t, script: script}
	cmd.Stderr = &rp.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
		cancel()
	})
	rp.stdin = stdin
	rp.lines = bufio.NewScanner(stdout)
	rp.lines.Buffer(make([]byte, 1<<20), 1<<20)
	return rp
}

// next reads the program's next line, a JSON value, into v.
func (rp *nodeRP) next(v any) {
	rp.t.Helper()
	if !rp.lines.Scan() {
		rp.t.Fatalf("%s ended: %v\n%s", rp.script, rp.lines.Err(), rp.stderr.String())
	}
	if err := json.Unmarshal(rp.lines.Bytes(), v); err != nil {
		rp.t.Fatalf("%s said %s: %v", rp.script, rp.lines.Bytes(), err)
	}
}

// send writes line to the program's input.
func (rp *nodeRP) send(line string) {
	rp.t.Helper()
	if _, err := io.WriteString(rp.stdin, line+"\n"); err != nil {
		rp.t.Fatal(err)
	}
}
