package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"leadrelay/internal/redisproc"
)

// redisServer is the private redis-server the bench runs against.
type redisServer struct {
	addr string
	dir  string
	proc *redisproc.Proc
}

// startRedis runs bin on a free loopback port with a temporary data
// directory; aof turns on appendonly everysec, as deploy/redis.conf has it.
func startRedis(ctx context.Context, bin string, aof bool) (*redisServer, error) {
	dir, err := os.MkdirTemp("", "leadrelay-bench-redis-")
	if err != nil {
		return nil, err
	}
	appendonly := "no"
	if aof {
		appendonly = "yes"
	}
	var lastErr error
	for range 5 { // a port free a moment ago may be taken by the time redis binds it
		port, err := redisproc.FreePort()
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		s := &redisServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir}
		args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
			"--save", "", "--appendonly", appendonly, "--appendfsync", "everysec",
			"--protected-mode", "yes", "--loglevel", "warning", "--daemonize", "no"}
		if s.proc, lastErr = redisproc.Start(ctx, bin, args, s.addr, filepath.Join(dir, "redis.log")); lastErr == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	_ = os.RemoveAll(dir)
	return nil, fmt.Errorf("redis-server did not start: %w", lastErr)
}

// stop kills the server and removes its data directory.
func (s *redisServer) stop() {
	s.proc.Kill()
	_ = os.RemoveAll(s.dir)
}

// load is what Redis has done so far: requests read, commands run and
// CPU seconds spent (user and system).
type load struct{ reads, cmds, cpu float64 }

// redisLoad reads Redis's load counters (INFO stats and cpu).
func redisLoad(ctx context.Context, rdb *redis.Client) (load, error) {
	st, err := info(ctx, rdb, "stats", "total_reads_processed", "total_commands_processed")
	if err != nil {
		return load{}, err
	}
	cpu, err := info(ctx, rdb, "cpu", "used_cpu_sys", "used_cpu_user")
	if err != nil {
		return load{}, err
	}
	return load{reads: st["total_reads_processed"], cmds: st["total_commands_processed"],
		cpu: cpu["used_cpu_sys"] + cpu["used_cpu_user"]}, nil
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
