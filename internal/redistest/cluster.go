package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"leadrelay/internal/redisproc"
)

// Cluster is a Redis Cluster of private redis-server processes (primaries
// only), its slots spread by redis-cli --cluster create.
type Cluster struct {
	// Nodes are the cluster's primaries.
	Nodes []*Server
	t     testing.TB
}

// CLIBinary returns the redis-cli executable, or "".
func CLIBinary() string {
	if b, err := exec.LookPath("redis-cli"); err == nil {
		return b
	}
	return ""
}

// StartCluster starts primaries cluster-enabled redis-servers on free
// loopback ports, joins them into one cluster with all 16384 slots assigned,
// waits (bounded) until every node reports cluster_state:ok, and stops them
// at cleanup. It skips (fails under CI) without redis-server or redis-cli.
func StartCluster(t testing.TB, primaries int) *Cluster {
	t.Helper()
	cli := CLIBinary()
	need(t, cli, "redis-cli", "redis-tools")
	c := &Cluster{t: t}
	for i := 0; i < primaries; i++ {
		c.Nodes = append(c.Nodes, startServer(t, []string{
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000",
		}, clusterPort))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.Nodes {
		for {
			info := n.clusterInfo()
			if info["cluster_state"] == "ok" && info["cluster_slots_ok"] == "16384" && info["cluster_known_nodes"] == strconv.Itoa(primaries) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster node %s not ready within 30s: %v; its log: %s", n.Addr, info, redisproc.LastLines(n.Log(), 10))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return c
}

// clusterPort is a free port whose cluster bus port (port+10000) is free
// too, as redis-server needs both.
func clusterPort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		p := FreePort(t)
		if p+10000 > 65535 {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	t.Fatal("redistest: no free port pair for a cluster node after 100 tries")
	return 0
}

// clusterInfo returns CLUSTER INFO as fields.
func (s *Server) clusterInfo() map[string]string {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer c.Close()
	txt, err := c.ClusterInfo(context.Background()).Result()
	out := map[string]string{}
	if err != nil {
		out["error"] = err.Error()
		return out
	}
	for _, line := range strings.Split(txt, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out
}

// Addrs are the nodes' host:port.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

// Seeds is the cluster as LEADRELAY_REDIS_CLUSTER: "h1:p1,h2:p2,h3:p3".
func (c *Cluster) Seeds() string { return strings.Join(c.Addrs(), ",") }

// URL is the cluster as LEADRELAY_REDIS_URL: redis-cluster://h1:p1,h2:p2,h3:p3.
func (c *Cluster) URL() string { return "redis-cluster://" + c.Seeds() }

// Client returns a go-redis cluster client for the cluster, closed at cleanup.
func (c *Cluster) Client() *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	c.t.Cleanup(func() { cc.Close() })
	return cc
}

// String names the cluster for test logs.
func (c *Cluster) String() string { return fmt.Sprintf("redis-cluster@%s", c.Seeds()) }
