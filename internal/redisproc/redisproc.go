// Package redisproc runs a private redis program (redis-server,
// redis-sentinel) on a loopback address: it starts the program with its
// output in a log file, waits until it answers PING, and kills it. The test
// kit internal/redistest and the bench (tools/bench) start their servers
// through it, so both wait, retry and report alike.
//
//	port, _ := redisproc.FreePort()
//	addr := "127.0.0.1:" + strconv.Itoa(port)
//	p, err := redisproc.Start(ctx, "redis-server", []string{"--port", strconv.Itoa(port)}, addr, logPath)
//	defer p.Kill()
package redisproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrExited is Start's error when the program exited before it answered:
// typically its port, free a moment before, was taken meanwhile, and
// another port may be tried.
var ErrExited = errors.New("exited before it was ready")

// Proc is a running redis program.
type Proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it exited
}

// Start starts bin with args, its output appended to logPath, and waits
// (at most 10s, or until ctx ends) until it answers PING on addr. It
// returns ErrExited, wrapped with the log's last lines, when the program
// died first.
func Start(ctx context.Context, bin string, args []string, addr, logPath string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	name := filepath.Base(bin)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 500 * time.Millisecond})
		err := c.Ping(ctx).Err()
		c.Close()
		if err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s on %s %w: %s", name, addr, ErrExited, LastLines(logPath, 5))
		case <-ctx.Done():
			p.Kill()
			return nil, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("%s on %s not ready after 10s: %v; its log: %s", name, addr, err, LastLines(logPath, 5))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill kills p (SIGKILL) and waits, at most 10s, for it to exit; false
// when it did not. A nil p is not running.
func (p *Proc) Kill() bool {
	if p == nil {
		return true
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// LastLines returns the last n lines of a file (a program's log), joined
// for an error message.
func LastLines(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
