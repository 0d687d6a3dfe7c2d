package redistest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy on 127.0.0.1 in front of a server, for partition
// tests: Freeze holds what clients send (the bytes stay in the proxy,
// not lost), Release delivers them late, Drop cuts every connection as a
// dead host would. The zero value is not usable; start one with
// StartProxy.
type Proxy struct {
	// Addr is where clients connect instead of the server.
	Addr string

	target string
	ln     net.Listener
	mu     sync.Mutex
	gate   *sync.Cond
	frozen bool
	drop   bool
	held   int // chunks waiting at the gate
	conns  []net.Conn
}

// StartProxy proxies 127.0.0.1:<free port> to target until the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln}
	p.gate = sync.NewCond(&p.mu)
	go p.accept()
	t.Cleanup(func() { p.Drop(); _ = ln.Close() })
	return p
}

// Freeze holds, from now on, everything clients send; the server's answers
// already on their way still arrive.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = true
}

// Release sends what Freeze held, in order, and forwards again.
func (p *Proxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = false
	p.gate.Broadcast()
}

// Held is how many chunks of client bytes the proxy holds now.
func (p *Proxy) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// Drop closes every connection, discarding what is held, and refuses new
// ones: the client's host is gone.
func (p *Proxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.gate.Broadcast()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		p.mu.Lock()
		if err != nil || p.drop {
			p.mu.Unlock()
			_ = c.Close()
			if s != nil {
				_ = s.Close()
			}
			continue
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.forward(c, s)
		go func() { _, _ = io.Copy(c, s); _ = c.Close() }()
	}
}

// forward copies what the client sends to the server through the gate;
// bytes read before the client went away are still delivered.
func (p *Proxy) forward(c, s net.Conn) {
	defer s.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 && !p.pass() {
			return
		}
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// pass waits while the proxy is frozen; false when it was dropped.
func (p *Proxy) pass() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held++
	for p.frozen && !p.drop {
		p.gate.Wait()
	}
	p.held--
	return !p.drop
}
