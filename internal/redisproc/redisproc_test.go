package redisproc

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestStart: a redis-server started on a free port answers until killed;
// one whose port another program holds is ErrExited, so a caller tries
// another port.
func TestStart(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no redis-server on PATH")
		}
		t.Skip("no redis-server on PATH")
	}
	ctx, dir := t.Context(), t.TempDir()
	start := func(addr, log string) (*Proc, error) {
		_, port, _ := net.SplitHostPort(addr)
		return Start(ctx, bin, []string{"--bind", "127.0.0.1", "--port", port, "--dir", dir, "--save", "", "--daemonize", "no"},
			addr, filepath.Join(dir, log))
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p, err := start(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "free.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	if !p.Kill() {
		t.Error("Kill: the server did not exit")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if q, err := start(l.Addr().String(), "taken.log"); !errors.Is(err, ErrExited) {
		q.Kill()
		t.Errorf("a server on the taken %s: %v, want ErrExited", l.Addr(), err)
	}
}
