// Package testredis starts a real redis-server for tests: on 127.0.0.1, a
// free port, no persistence, stopped when the test ends. Tests that claim
// Redis behaviour run against it, never against a mock.
package testredis

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a running redis-server.
type Server struct {
	Addr       string // host:port
	cmd        *exec.Cmd
	dir        string
	port       int
	persistent bool
}

// URL is the redis:// URL of the server's database db.
func (s *Server) URL(db int) string { return fmt.Sprintf("redis://%s/%d", s.Addr, db) }

// Start runs redis-server for the test. With REDIS_SERVER set, that binary
// is used; otherwise redis-server from PATH (Debian package redis-server,
// which .ci/run installs). A missing binary fails the test: nothing stands
// in for Redis.
func Start(t testing.TB) *Server { return start(t, false) }

// StartPersistent is Start with an append-only file synced on every write,
// so Stop and Restart keep the data, as a production Redis would.
func StartPersistent(t testing.TB) *Server { return start(t, true) }

func start(t testing.TB, persistent bool) *Server {
	t.Helper()
	bin := os.Getenv("REDIS_SERVER")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			t.Fatal("redis-server not found: install Debian's redis-server (.ci/run does) or set REDIS_SERVER")
		}
	}
	s := &Server{dir: t.TempDir(), persistent: persistent}
	for attempt := 0; attempt < 5; attempt++ {
		s.port = freePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		if err := s.start(bin); err == nil {
			t.Cleanup(s.Stop)
			return s
		} else if attempt == 4 {
			t.Fatal(err)
		}
	}
	return nil
}

func (s *Server) start(bin string) error {
	aof := []string{"--appendonly", "no"}
	if s.persistent {
		aof = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	args := append([]string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port),
		"--save", "", "--dir", s.dir}, aof...)
	s.cmd = exec.Command(bin, append(args,
		"--protected-mode", "yes", "--daemonize", "no", "--loglevel", "warning",
		"--logfile", filepath.Join(s.dir, "redis.log"))...)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s.ping() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return fmt.Errorf("redis-server on %s did not answer PING: %s", s.Addr, log)
}

// Restart starts the server again on the same port after Stop.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.start(s.cmd.Path); err != nil {
		t.Fatal(err)
	}
}

// Stop ends the server, paused or not; calling it twice is fine.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	// A paused (SIGSTOPped) server receives the SIGTERM only when it runs.
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// Kill ends the server with SIGKILL, as a crash or the OOM killer would:
// it writes nothing more, and only what its append-only file already
// holds (StartPersistent) comes back with Restart.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// PID is the process id of the running redis-server.
func (s *Server) PID() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Pause stops the server process with SIGSTOP, as a long fork, a swapped-out
// host or a frozen VM would: connections stay open and the kernel still
// accepts what clients send, but nothing is read, run or answered until
// Resume. Everything sent meanwhile runs then, in one burst, including
// commands whose client has given up on them. Stop ends a paused server too.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGSTOP)
	// The signal is asynchronous: wait until the process is stopped, so
	// that whatever the test sends next is sent to a stopped server.
	stat := fmt.Sprintf("/proc/%d/stat", s.PID())
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(stat)
		if err != nil { // no /proc: give the signal a moment
			time.Sleep(50 * time.Millisecond)
			return
		}
		// pid (comm) state ...: the state follows the last ')'.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not stop: %s", s.Addr, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Resume continues a server stopped by Pause (SIGCONT).
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGCONT)
}

func (s *Server) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if s.cmd == nil || s.cmd.Process == nil || s.cmd.ProcessState != nil {
		t.Fatalf("redis-server on %s is not running", s.Addr)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%v to redis-server: %v", sig, err)
	}
}

func (s *Server) ping() bool {
	c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// freePort picks a loopback port below the ephemeral range (so outgoing
// connections cannot take it before the server binds it).
func freePort(t testing.TB) int {
	t.Helper()
	base := 32000 - (os.Getpid()*7+int(time.Now().UnixNano()%997))%8000
	for p := base; p > 20000; p-- {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free port for redis-server")
	return 0
}

// StartClient starts a redis-server for the test or benchmark and returns
// a client of its database 0, closed when the test ends.
func StartClient(tb testing.TB) *redis.Client {
	srv := Start(tb)
	opts, err := redis.ParseURL(srv.URL(0))
	if err != nil {
		tb.Fatal(err)
	}
	client := redis.NewClient(opts)
	tb.Cleanup(func() { client.Close() })
	return client
}
