package rdb

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// groupMax bounds the scripts one round trip carries.
const groupMax = 128

// group commits the scripts that concurrent callers of one Store run on
// a single primary, as a database commits concurrent transactions: a
// call that finds no round trip of the group in flight is sent at once,
// alone, so a lone call waits for nothing; calls that arrive while one is
// in flight queue, and the next round trip carries them all, one pipeline
// of EVALSHAs. Under load a worker's concurrent runs then share their
// Begin and Finish round trips instead of making one each.
//
// Each script stays its own: it runs atomically on its own keys with its
// own arguments (the run's token among them: every write stays fenced),
// and answers or fails alone, so one lead's error fails no other lead of
// its round trip.
type group struct {
	c     redis.UniversalClient
	mu    sync.Mutex
	queue []*groupCall
	busy  bool // a round trip is in flight, or being sent
}

// groupCall is one script call waiting in a group.
type groupCall struct {
	ctx  context.Context
	s    *redis.Script
	keys []string
	args []any
	cmd  *redis.Cmd
	done chan struct{}
}

// run runs script s as s.Run would, in the group's next round trip.
func (g *group) run(ctx context.Context, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	c := &groupCall{ctx: ctx, s: s, keys: keys, args: args, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if !g.busy {
		// Nothing in flight, so nothing queued but c: send it now.
		g.busy = true
		batch := g.take()
		g.mu.Unlock()
		g.send(batch)
		g.handOn()
		return g.answer(c)
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return g.answer(c)
	case <-ctx.Done():
		// The call may still be sent (or be on its way): like a call cut
		// off mid-round-trip, its writes may or may not happen.
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(ctx.Err())
		return cmd
	}
}

// take removes the next round trip's calls from the queue; g.mu held.
func (g *group) take() []*groupCall {
	n := min(len(g.queue), groupMax)
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	if len(g.queue) == 0 {
		g.queue = nil
	}
	return batch
}

// handOn sends, in the background, the calls that queued while a round
// trip was in flight, until none are left.
func (g *group) handOn() {
	g.mu.Lock()
	if len(g.queue) == 0 {
		g.busy = false
		g.mu.Unlock()
		return
	}
	batch := g.take()
	g.mu.Unlock()
	go func() {
		for {
			g.send(batch)
			g.mu.Lock()
			if len(g.queue) == 0 {
				g.busy = false
				g.mu.Unlock()
				return
			}
			batch = g.take()
			g.mu.Unlock()
		}
	}()
}

// send runs the calls of batch whose callers still wait in one pipeline,
// and tells each it is done.
func (g *group) send(batch []*groupCall) {
	live := batch[:0:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.cmd = redis.NewCmd(c.ctx)
			c.cmd.SetErr(err)
			close(c.done)
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := groupContext(live)
	defer cancel()
	_, _ = g.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, c := range live {
			c.cmd = c.s.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	for _, c := range live {
		close(c.done)
	}
}

// groupContext is the context of a round trip: no caller's cancellation
// cuts it short for the others; it ends at the latest of their deadlines,
// if they all have one.
func groupContext(calls []*groupCall) (context.Context, context.CancelFunc) {
	ctx := context.WithoutCancel(calls[0].ctx)
	var last time.Time
	for _, c := range calls {
		d, ok := c.ctx.Deadline()
		if !ok {
			return ctx, func() {}
		}
		if d.After(last) {
			last = d
		}
	}
	return context.WithDeadline(ctx, last)
}

// answer is c's reply; a server that did not know the script (its cache
// is empty after a restart or failover, and a pipeline cannot fall back
// to EVAL) runs it again on its own, with EVAL, which caches it.
func (g *group) answer(c *groupCall) *redis.Cmd {
	if isNoScript(c.cmd.Err()) {
		return c.s.Eval(c.ctx, g.c, c.keys, c.args...)
	}
	return c.cmd
}

// pending counts the calls waiting for the next round trip (tests).
func (g *group) pending() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// eval runs script s as s.Run would: on a single primary in the store's
// group (concurrent calls share a round trip); on a Cluster, whose
// pipelines split by slot anyway, on its own.
func (s *Store) eval(ctx context.Context, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	if s.cluster {
		return sc.Run(ctx, s.c, keys, args...)
	}
	return s.g.run(ctx, sc, keys, args...)
}
