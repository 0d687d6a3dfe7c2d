package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is the private redis-server the bench runs against.
type redisServer struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedis runs bin on a free loopback port with a temporary data
// directory; aof turns on appendonly everysec, as deploy/redis.conf has it.
func startRedis(ctx context.Context, bin string, aof bool) (*redisServer, error) {
	dir, err := os.MkdirTemp("", "leadrelay-bench-redis-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 5 { // a port free a moment ago may be taken by the time redis binds it
		port, err := freePort()
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		s := &redisServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir}
		appendonly := "no"
		if aof {
			appendonly = "yes"
		}
		s.cmd = exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
			"--save", "", "--appendonly", appendonly, "--appendfsync", "everysec",
			"--protected-mode", "yes", "--loglevel", "warning", "--daemonize", "no")
		if err := s.cmd.Start(); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("start %s: %w", bin, err)
		}
		s.done = make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		if lastErr = s.waitReady(ctx); lastErr == nil {
			return s, nil
		}
		s.kill()
	}
	_ = os.RemoveAll(dir)
	return nil, fmt.Errorf("redis-server did not start: %w", lastErr)
}

func (s *redisServer) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1, DialTimeout: time.Second})
		err := c.Ping(ctx).Err()
		_ = c.Close()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return errors.New("redis-server exited before it was ready")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after 10s: %w", err)
		}
	}
}

func (s *redisServer) kill() {
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
}

// stop kills the server and removes its data directory.
func (s *redisServer) stop() {
	s.kill()
	_ = os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// info returns the named numeric fields of one INFO section.
func info(ctx context.Context, rdb *redis.Client, section string, fields ...string) (map[string]float64, error) {
	txt, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, f := range fields {
		want[f] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(txt))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok || !want[k] {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[k] = f
		}
	}
	for _, f := range fields {
		if _, ok := out[f]; !ok {
			return nil, fmt.Errorf("INFO %s has no %s", section, f)
		}
	}
	return out, nil
}

// dataMemory is INFO memory used_memory without what connections and the
// script cache hold (FLUSHALL keeps scripts, so the first run of a script
// would otherwise be charged to the leads), in bytes.
func dataMemory(ctx context.Context, rdb *redis.Client) (float64, error) {
	m, err := info(ctx, rdb, "memory", "used_memory", "mem_clients_normal", "used_memory_scripts")
	if err != nil {
		return 0, err
	}
	return m["used_memory"] - m["mem_clients_normal"] - m["used_memory_scripts"], nil
}

// commandsProcessed is INFO stats total_commands_processed.
func commandsProcessed(ctx context.Context, rdb *redis.Client) (float64, error) {
	m, err := info(ctx, rdb, "stats", "total_commands_processed")
	if err != nil {
		return 0, err
	}
	return m["total_commands_processed"], nil
}

// field returns one field of INFO text.
func field(infoText, name string) string {
	sc := bufio.NewScanner(strings.NewReader(infoText))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok && k == name {
			return v
		}
	}
	return ""
}
