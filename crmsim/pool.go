package crmsim

import (
	"context"
	"sync"
	"time"
)

// phpPool is the PHP server's fixed set of workers (Faults.PHPWorkers).
// Waiters are served first come, first served, as the server's accept
// queue would. A limit of 0 never makes anyone wait.
type phpPool struct {
	mu      sync.Mutex
	limit   int
	busy    int
	waiters []*poolWaiter
}

type poolWaiter struct {
	ready   chan struct{}
	granted bool // set under phpPool.mu when a worker was handed over
}

// setLimit changes the pool size and hands freed room to waiters.
func (p *phpPool) setLimit(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limit = n
	p.handOff()
}

func (p *phpPool) free() bool { return p.limit == 0 || p.busy < p.limit }

// handOff gives free workers to the longest waiters; callers hold p.mu.
func (p *phpPool) handOff() {
	for len(p.waiters) > 0 && p.free() {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		w.granted = true
		p.busy++
		close(w.ready)
	}
}

// acquire takes a worker. When none is free it waits until one is, ctx is
// done, or timeout (> 0) passes; waited reports whether it had to wait. Only
// when ok is true must release follow.
func (p *phpPool) acquire(ctx context.Context, timeout time.Duration) (ok, waited bool) {
	p.mu.Lock()
	if len(p.waiters) == 0 && p.free() {
		p.busy++
		p.mu.Unlock()
		return true, false
	}
	w := &poolWaiter{ready: make(chan struct{})}
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()

	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-w.ready:
		return true, true
	case <-ctx.Done():
	case <-expired:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if w.granted { // handed over while giving up: keep it
		return true, true
	}
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			break
		}
	}
	return false, true
}

// release gives a worker back.
func (p *phpPool) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.busy--
	p.handOff()
}

// counts returns busy workers and waiting requests.
func (p *phpPool) counts() (busy, waiting int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busy, len(p.waiters)
}
