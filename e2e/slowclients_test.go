package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rssKB reads a process's resident set size.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestSlowBodyClientsCutOff: clients that send a token request's headers
// and then trickle its body (over TLS, as an attacker would) are answered
// 408 and disconnected after the token endpoint's 10 s form timeout rather
// than holding their connections open; the gateway's memory stays bounded
// while they wait; other clients are served throughout.
func TestSlowBodyClientsCutOff(t *testing.T) {
	g := startExample(t)
	pem, err := os.ReadFile(g.rootCertPath())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	before := rssKB(t, g.cmd.Process.Pid)

	// 3,000 connections, as the fault study asked: each holds a
	// TLS session, buffers and a goroutine in the gateway while it waits.
	const clients = 3000
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	start := time.Now()
	for range clients {
		wg.Go(func() {
			conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(g.ports.https), &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
			if err != nil {
				mu.Lock()
				statuses[-1]++
				mu.Unlock()
				return
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /oauth2/token HTTP/1.1\r\nHost: localhost:%d\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=", g.ports.https)
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			code := 0
			if err == nil {
				code = resp.StatusCode
				resp.Body.Close()
			}
			mu.Lock()
			statuses[code]++
			mu.Unlock()
		})
	}
	// The highest RSS while they wait, sampled until the last is cut off.
	done := make(chan struct{})
	peak := make(chan int, 1)
	go func() {
		most := 0
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if r := rssKB(t, g.cmd.Process.Pid); r > most {
				most = r
			}
			select {
			case <-done:
				peak <- most
				return
			case <-tick.C:
			}
		}
	}()
	time.Sleep(2 * time.Second)
	// Served meanwhile.
	if status, _, body := g.do("GET", "/health", "", nil); status != http.StatusOK {
		t.Errorf("health while slow clients wait: %d %s", status, body)
	}
	wg.Wait()
	close(done)
	during := <-peak
	took := time.Since(start)
	t.Logf("%d slow clients: %v in %v; RSS %d kB before, at most %d kB while they waited", clients, statuses, took.Round(time.Millisecond), before, during)
	if statuses[http.StatusRequestTimeout] != clients {
		t.Errorf("answers %v, want %d × 408", statuses, clients)
	}
	if grew := during - before; grew > 400*1024 {
		t.Errorf("RSS grew by %d kB with %d slow clients", grew, clients)
	}
}
