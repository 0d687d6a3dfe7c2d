// Package redistest starts real, private redis-server processes for tests,
// and embedded miniredis instances for fast unit tests. Each test gets its own
// server on a free loopback port, stopped by t.Cleanup, so packages can test
// in parallel without sharing keys.
//
// Real-Redis tests skip with a clear message when redis-server is not on
// PATH, except under CI (CI=true), where they fail: CI must never skip them.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"leadrelay/internal/redisproc"
)

// Server is a private redis-server process with append-only persistence in a
// temporary directory, so a Restart keeps what was written.
type Server struct {
	program
	// extra are more redis-server arguments (replicaof, cluster mode); later
	// arguments win over the defaults.
	extra []string
}

// program is what a server and a sentinel of a test have alike: the
// redis program running on Addr, its directory and its log.
type program struct {
	// Addr is host:port of the program, on 127.0.0.1.
	Addr string
	t    testing.TB
	name string // redis-server or redis-sentinel, for messages
	log  string // its log's file name in dir
	bin  string
	dir  string
	proc *redisproc.Proc
}

// Log is the path of the program's log file.
func (p *program) Log() string { return filepath.Join(p.dir, p.log) }

// Stop kills the program (SIGKILL: what survives of a server is what its
// AOF holds) and waits for it to exit. Safe to call twice.
func (p *program) Stop() {
	if !p.proc.Kill() {
		p.t.Errorf("redistest: %s %s did not exit", p.name, p.Addr)
	}
	p.proc = nil
}

// Binary returns the redis-server executable tests use: $LEADRELAY_TEST_REDIS_SERVER,
// else redis-server on PATH, else "".
func Binary() string {
	if b := os.Getenv("LEADRELAY_TEST_REDIS_SERVER"); b != "" {
		return b
	}
	for _, p := range []string{"redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server"} {
		if b, err := exec.LookPath(p); err == nil {
			return b
		}
	}
	return ""
}

// Start runs a fresh redis-server for the test, or skips the test when none
// is installed (fails under CI).
func Start(t testing.TB) *Server {
	t.Helper()
	return startServer(t, nil, FreePort)
}

// StartWith is Start with extra redis-server arguments, which override the
// defaults (append-only file on, no snapshots): StartWith(t,
// "--maxmemory-policy", "allkeys-lru") or StartWith(t, "--appendonly", "no").
func StartWith(t testing.TB, args ...string) *Server {
	t.Helper()
	return startServer(t, args, FreePort)
}

// need skips the test, or fails it under CI, when a Redis program is missing.
func need(t testing.TB, bin, program, pkg string) {
	t.Helper()
	if bin != "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("redistest: %s is not installed; CI must run the real-Redis tests (apt-get install %s)", program, pkg)
	}
	t.Skipf("redistest: %s not on PATH; install it (apt-get install %s) to run the real-Redis tests", program, pkg)
}

// startServer runs a redis-server with extra arguments on a port from port.
func startServer(t testing.TB, extra []string, port func(testing.TB) int) *Server {
	t.Helper()
	bin := Binary()
	need(t, bin, "redis-server", "redis-server")
	s := &Server{program: program{t: t, name: "redis-server", log: "redis.log", bin: bin, dir: t.TempDir()}, extra: extra}
	t.Cleanup(s.Stop)
	onFreePort(t, port, func(addr string) error {
		s.Addr = addr
		return s.start()
	})
	return s
}

// onFreePort calls start with addresses on 127.0.0.1 and ports from port
// until one works. A port that was free a moment ago may be taken by the
// time the program binds it (parallel tests open many sockets): then it
// exits at once (redisproc.ErrExited), and another port is tried, five at most.
func onFreePort(t testing.TB, port func(testing.TB) int, start func(addr string) error) {
	t.Helper()
	for try := 1; ; try++ {
		err := start("127.0.0.1:" + strconv.Itoa(port(t)))
		if err == nil {
			return
		}
		if !errors.Is(err, redisproc.ErrExited) || try == 5 {
			t.Fatalf("redistest: %v", err)
		}
		t.Logf("redistest: %v; trying another port", err)
	}
}

// start runs the server on s.Addr and waits until it answers PING.
func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	args := append([]string{
		"--bind", "127.0.0.1", "--port", port, "--dir", s.dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
		"--protected-mode", "yes", "--loglevel", "warning", "--daemonize", "no"}, s.extra...)
	var err error
	s.proc, err = redisproc.Start(context.Background(), s.bin, args, s.Addr, s.Log())
	return err
}

// Restart stops the server and starts it again on the same port and data
// directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

// URL returns the server as a redis:// URL for LEADRELAY_REDIS_URL.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Client returns a go-redis client for the server, closed at cleanup.
func (s *Server) Client() *redis.Client { return NewClient(s.t, s.Addr) }

// NewClient returns a go-redis client of the Redis at addr, closed when t
// ends.
func NewClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// MiniClient starts Mini and returns a client of it; both close when t
// ends.
func MiniClient(t testing.TB) *redis.Client {
	t.Helper()
	return NewClient(t, Mini(t).Addr())
}

// Mini starts an embedded miniredis for fast unit tests. It is no proof of
// behaviour against real Redis; tests that matter use Start.
func Mini(t testing.TB) *miniredis.Miniredis {
	t.Helper()
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		t.Fatalf("redistest: miniredis: %v", err)
	}
	t.Cleanup(m.Close)
	return m
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := redisproc.FreePort()
	if err != nil {
		t.Fatalf("redistest: free port: %v", err)
	}
	return port
}

// Info returns one field of INFO from the server, e.g. "aof_enabled".
func (s *Server) Info(field string) string {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	txt, err := c.Info(context.Background()).Result()
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(strings.NewReader(txt))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == field {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Dump is everything s holds, to search for a value anywhere in Redis
// (a lead's field kept where it should not be): every key name, every
// value as read by its type, and every value's DUMP (redis-server's own
// encoding, which a search must see through too: start the server with
// --rdbcompression no for that).
func (s *Server) Dump(t testing.TB) []byte {
	t.Helper()
	ctx := context.Background()
	c := s.Client()
	var all bytes.Buffer
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		all.WriteString(k + "\n")
		d, _ := c.Dump(ctx, k).Result()
		all.WriteString(d)
		var v any
		switch typ, _ := c.Type(ctx, k).Result(); typ {
		case "string":
			v, _ = c.Get(ctx, k).Result()
		case "hash":
			v, _ = c.HGetAll(ctx, k).Result()
		case "list":
			v, _ = c.LRange(ctx, k, 0, -1).Result()
		case "set":
			v, _ = c.SMembers(ctx, k).Result()
		case "zset":
			v, _ = c.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "stream":
			v, _ = c.XRange(ctx, k, "-", "+").Result()
		}
		fmt.Fprintf(&all, "%v\n", v)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return all.Bytes()
}

// Dir is the server's data directory.
func (s *Server) Dir() string { return filepath.Clean(s.dir) }

// String names the server for test logs.
func (s *Server) String() string { return fmt.Sprintf("redis-server@%s", s.Addr) }

// CommandCalls returns the calls of each command a Redis server ran since
// it started (INFO commandstats: "get", "evalsha", "config|resetstat"...),
// asked through c. Commands a script runs count as calls of their own, as
// Redis counts them; the INFO that reads them counts as one "info" call.
// Read twice through one c, the difference is what others ran meanwhile
// (a new connection of c's would add its handshake).
func CommandCalls(ctx context.Context, c redis.UniversalClient) (map[string]int64, error) {
	txt, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	calls := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(txt))
	for sc.Scan() {
		name, stats, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "cmdstat_"), ":")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		for _, kv := range strings.Split(stats, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("redistest: commandstats %q: %w", sc.Text(), err)
				}
				calls[name] = n
			}
		}
	}
	return calls, sc.Err()
}
