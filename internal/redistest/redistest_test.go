package redistest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestRestartKeepsData(t *testing.T) {
	s := Start(t)
	ctx := context.Background()
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
	s := &Server{t: t, bin: Binary(), dir: t.TempDir(), Addr: l.Addr().String()}
	t.Cleanup(s.Stop)
	if err := s.start(); !errors.Is(err, errExited) {
		t.Fatalf("start on a taken port = %v, want errExited", err)
	}
}
