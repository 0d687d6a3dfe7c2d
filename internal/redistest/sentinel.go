package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"leadrelay/internal/redisproc"
)

// MasterName is the name the sentinels of a SentinelGroup monitor.
const MasterName = "mymaster"

// DownAfter is how long the sentinels of a SentinelGroup wait for a primary
// that does not answer before they fail it over. Production runs 5-30s; a
// test wants a quick failover, but not a spurious one when the machine is
// so busy that a healthy primary answers late (CI runs every package at once).
const DownAfter = 3 * time.Second

// SentinelGroup is a primary, its replicas and the redis-sentinel processes
// that watch them, all private to one test. Failover is tuned for tests: a
// primary is down after DownAfter without an answer.
type SentinelGroup struct {
	// Primary is the server that was primary when the group started; after a
	// failover it is a replica (or dead). Ask CurrentPrimary for the live one.
	Primary *Server
	// Replicas replicate Primary at the start.
	Replicas []*Server
	// Sentinels watch the group; a quorum of 2 decides a failover.
	Sentinels []*Sentinel
	t         testing.TB
}

// Sentinel is one private redis-sentinel process.
type Sentinel struct {
	program
	args []string
}

// SentinelBinary returns the program and leading arguments that run a
// sentinel: redis-sentinel on PATH, else redis-server --sentinel (the same
// program in Debian), else nil.
func SentinelBinary() []string {
	if b, err := exec.LookPath("redis-sentinel"); err == nil {
		return []string{b}
	}
	if b := Binary(); b != "" {
		return []string{b, "--sentinel"}
	}
	return nil
}

// StartSentinel starts a primary with replicas replicas and sentinels
// redis-sentinel processes on free loopback ports, waits (bounded) until the
// replicas are in sync and every sentinel knows every other one and every
// replica, and stops them all at cleanup. It skips (fails under CI) when
// redis-server or redis-sentinel is missing.
func StartSentinel(t testing.TB, replicas, sentinels int) *SentinelGroup {
	t.Helper()
	sb := SentinelBinary()
	need(t, strings.Join(sb, " "), "redis-sentinel", "redis-sentinel")
	g := &SentinelGroup{t: t, Primary: Start(t)}
	_, pport, _ := net.SplitHostPort(g.Primary.Addr)
	for i := 0; i < replicas; i++ {
		g.Replicas = append(g.Replicas, StartReplica(t, g.Primary))
	}
	for i := 0; i < sentinels; i++ {
		g.Sentinels = append(g.Sentinels, startSentinel(t, sb, pport))
	}
	// Sentinels find each other and the replicas through the primary's hello
	// channel, every 2s or so: wait until each sees the whole group.
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range g.Sentinels {
		for {
			m, err := s.master()
			if err == nil && m["num-other-sentinels"] == strconv.Itoa(sentinels-1) && m["num-slaves"] == strconv.Itoa(replicas) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: sentinel %s did not see the group within 30s: %v %v; its log: %s", s.Addr, m, err, redisproc.LastLines(s.Log(), 10))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return g
}

// StartReplica starts a redis-server replicating primary and waits (at most
// 30s) until its link is up.
func StartReplica(t testing.TB, primary *Server) *Server {
	t.Helper()
	_, pport, _ := net.SplitHostPort(primary.Addr)
	// The default waits 5s for more replicas before a full sync.
	if err := primary.Client().ConfigSet(context.Background(), "repl-diskless-sync-delay", "0").Err(); err != nil {
		t.Fatalf("redistest: %s: %v", primary, err)
	}
	// Promoted in a failover, it must not keep its own replicas waiting either.
	r := startServer(t, []string{"--replicaof", "127.0.0.1", pport, "--repl-diskless-sync-delay", "0"}, FreePort)
	r.waitInfo(30*time.Second, "master_link_status", "up")
	return r
}

func startSentinel(t testing.TB, bin []string, primaryPort string) *Sentinel {
	t.Helper()
	s := &Sentinel{program: program{t: t, name: "redis-sentinel", log: "sentinel.log", bin: bin[0], dir: t.TempDir()}, args: bin[1:]}
	t.Cleanup(s.Stop)
	onFreePort(t, FreePort, func(addr string) error {
		s.Addr = addr
		_, port, _ := net.SplitHostPort(addr)
		// The sentinel rewrites its configuration file: it must be its own.
		conf := strings.Join([]string{
			"port " + port,
			"bind 127.0.0.1",
			"dir " + s.dir,
			"daemonize no",
			"loglevel notice",
			"sentinel monitor " + MasterName + " 127.0.0.1 " + primaryPort + " 2",
			"sentinel down-after-milliseconds " + MasterName + " " + strconv.FormatInt(DownAfter.Milliseconds(), 10),
			"sentinel failover-timeout " + MasterName + " 10000",
			"sentinel parallel-syncs " + MasterName + " 1",
		}, "\n") + "\n"
		path := filepath.Join(s.dir, "sentinel.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		var err error
		s.proc, err = redisproc.Start(context.Background(), s.bin, append([]string{path}, s.args...), s.Addr, s.Log())
		return err
	})
	return s
}

// master returns SENTINEL MASTER's fields for the group.
func (s *Sentinel) master() (map[string]string, error) {
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer c.Close()
	return c.Master(context.Background(), MasterName).Result()
}

// URL is the group as LEADRELAY_REDIS_URL:
// redis-sentinel://h1:p1,h2:p2,h3:p3/0?master=mymaster.
func (g *SentinelGroup) URL() string {
	return "redis-sentinel://" + strings.Join(g.SentinelAddrs(), ",") + "/0?master=" + MasterName
}

// SentinelAddrs are the sentinels' host:port.
func (g *SentinelGroup) SentinelAddrs() []string {
	out := make([]string, len(g.Sentinels))
	for i, s := range g.Sentinels {
		out[i] = s.Addr
	}
	return out
}

// Servers are the primary and the replicas the group started with.
func (g *SentinelGroup) Servers() []*Server { return append([]*Server{g.Primary}, g.Replicas...) }

// CurrentPrimary asks the sentinels which server is primary now; "" when
// none answers.
func (g *SentinelGroup) CurrentPrimary() string {
	for _, s := range g.Sentinels {
		if s.proc == nil {
			continue
		}
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
		hp, err := c.GetMasterAddrByName(context.Background(), MasterName).Result()
		c.Close()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1])
		}
	}
	return ""
}

// Server returns the group's server at addr, or nil.
func (g *SentinelGroup) Server(addr string) *Server {
	for _, s := range g.Servers() {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// WaitFailover waits (at most d) until the sentinels name a primary other
// than old and that server answers as a primary, and returns its address.
// It fails the test with the sentinels' logs otherwise.
func (g *SentinelGroup) WaitFailover(old string, d time.Duration) string {
	g.t.Helper()
	deadline := time.Now().Add(d)
	for {
		if now := g.CurrentPrimary(); now != "" && now != old {
			if s := g.Server(now); s != nil && s.Info("role") == "master" {
				return now
			}
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, s := range g.Sentinels {
				fmt.Fprintf(&logs, "\n  %s: %s", s.Addr, redisproc.LastLines(s.Log(), 15))
			}
			g.t.Fatalf("redistest: no failover away from %s within %s; sentinel logs:%s", old, d, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RestartReplicaOf starts a stopped server again on its port and data
// directory as a replica of primary (host:port), as a failed primary comes
// back after a failover, and waits (at most 30s) until it is in sync.
func (s *Server) RestartReplicaOf(primary string) {
	s.t.Helper()
	host, port, _ := net.SplitHostPort(primary)
	s.Stop()
	s.extra = append(s.extra, "--replicaof", host, port)
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart as a replica: %v", err)
	}
	s.waitInfo(30*time.Second, "master_link_status", "up")
}

// waitInfo waits (at most d) until INFO field has value want, or fails the
// test quoting the server's log.
func (s *Server) waitInfo(d time.Duration, field, want string) {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := s.Info(field)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redistest: %s: INFO %s = %q after %s, want %q; its log: %s", s, field, got, d, want, redisproc.LastLines(s.Log(), 10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
