package redistest

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"leadrelay/internal/redisproc"
)

func TestRestartKeepsData(t *testing.T) {
	s := Start(t)
	ctx := t.Context()
	c := s.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// appendfsync everysec: force the write out before the kill.
	if err := c.Do(ctx, "BGREWRITEAOF").Err(); err != nil {
		t.Fatal(err)
	}
	if got := s.Info("aof_enabled"); got != "1" {
		t.Fatalf("aof_enabled = %q", got)
	}
	waitRewrite(t, s)
	s.Restart()
	if got, err := s.Client().Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("after restart Get = %q, %v", got, err)
	}
}

func waitRewrite(t *testing.T, s *Server) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if s.Info("aof_rewrite_in_progress") == "0" && s.Info("aof_rewrite_scheduled") == "0" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("AOF rewrite did not finish")
}

// TestStartOnTakenPort: a server whose port is taken exits at once, and
// start says so (Start then tries another port) instead of waiting 10s.
func TestStartOnTakenPort(t *testing.T) {
	if Binary() == "" {
		t.Skip("redis-server not on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := &Server{program: program{Addr: l.Addr().String(), t: t, name: "redis-server", log: "redis.log", bin: Binary(), dir: t.TempDir()}}
	t.Cleanup(s.Stop)
	if err := s.start(); !errors.Is(err, redisproc.ErrExited) {
		t.Fatalf("start on a taken port = %v, want redisproc.ErrExited", err)
	}
}

// TestSentinelFailover: the group starts in sync, a failover client writes
// through it, and after kill -9 of the primary the sentinels promote the
// replica, which holds what was written and takes writes.
func TestSentinelFailover(t *testing.T) {
	g := StartSentinel(t, 1, 3)
	ctx := t.Context()
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: MasterName, SentinelAddrs: g.SentinelAddrs()})
	t.Cleanup(func() { c.Close() })
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v", n, err)
	}
	old := g.CurrentPrimary()
	if old != g.Primary.Addr {
		t.Fatalf("sentinels name %s as primary, want %s", old, g.Primary.Addr)
	}
	start := time.Now()
	g.Primary.Stop()
	now := g.WaitFailover(old, 30*time.Second)
	t.Logf("failover %s -> %s took %s", old, now, time.Since(start).Round(time.Millisecond))
	if now != g.Replicas[0].Addr {
		t.Fatalf("new primary %s, want the replica %s", now, g.Replicas[0].Addr)
	}
	var got string
	var err error
	for i := 0; i < 100; i++ { // the client learns of the switch within a few tries
		if got, err = c.Get(ctx, "k").Result(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got != "v" {
		t.Fatalf("after failover GET k = %q, %v", got, err)
	}
	if err := c.Set(ctx, "k2", "v2", 0).Err(); err != nil {
		t.Fatalf("write after failover: %v", err)
	}
}

// TestCluster: three primaries share the slots, and a cluster client reaches
// keys in every one of them.
func TestCluster(t *testing.T) {
	cl := StartCluster(t, 3)
	ctx := t.Context()
	c := cl.Client()
	for _, k := range []string{"a", "b", "c", "{x}1", "{x}2", "leadrelay:breaker"} {
		if err := c.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	perNode := map[string]int64{}
	var mu sync.Mutex // ForEachMaster calls in parallel
	err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		k, err := n.DBSize(ctx).Result()
		mu.Lock()
		perNode[n.Options().Addr] = k
		mu.Unlock()
		return err
	})
	if err != nil || len(perNode) != 3 {
		t.Fatalf("masters: %v %v", perNode, err)
	}
	if err := c.Eval(ctx, "return redis.call('MSET', KEYS[1], 1, KEYS[2], 2)", []string{"{x}1", "{x}2"}).Err(); err != nil {
		t.Fatalf("script over one hash tag: %v", err)
	}
	t.Logf("%s: keys per node %v", cl, perNode)
}
