package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"leadrelay/internal/rdb"
)

// bookkeepingTimeout bounds each Redis write after the CRM call.
const bookkeepingTimeout = 5 * time.Second

// bookkeeping is the context of a Redis write after the CRM call: it runs
// even when the task's context is done, since the CRM's answer must be
// recorded, within bookkeepingTimeout.
func bookkeeping(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
}

// hold is a lead's lock as a run holds it: the lease keeps it alive until
// the run releases it or records the delivery.
type hold struct {
	h     *Handler
	r     *run
	lease *lease
	// unsend is how a run that ends without an add leaves the attempt
	// record: as Begin found it, or, once it says "sending", undone.
	unsend rdb.Release
}

// hold keeps the lock Begin took for the run.
func (h *Handler) hold(ctx context.Context, r *run, b rdb.Begun) *hold {
	hd := &hold{h: h, r: r, lease: h.keepLock(ctx, r.p.ID, r.token, r.log), unsend: rdb.Release{Mode: rdb.ReleaseKeep}}
	r.state = b.Attempt.State
	if b.Send {
		hd.sending()
	}
	return hd
}

// sending notes that the attempt record says "sending": a run that ends
// without an add undoes it, and a lead that dies now died failed.
func (hd *hold) sending() {
	hd.unsend.Mode = rdb.ReleaseUnsend
	hd.r.state = rdb.StateFailed
}

// release stops the lease, leaves the attempt record as rel says and drops
// the lock.
func (hd *hold) release(ctx context.Context, rel rdb.Release) {
	hd.lease.stop()
	bctx, cancel := bookkeeping(ctx)
	defer cancel()
	switch f, err := hd.h.store.Release(bctx, hd.r.p.ID, hd.r.token, rel); {
	case err != nil:
		hd.r.log.Warn("lock release failed; it expires by itself", zap.Error(err))
	case f == rdb.Fenced:
		hd.r.log.Warn("another run took the lead over; this run's record was left to it")
	}
}

// lease keeps a held lock alive until stopped: the CRM call may outlast
// LockTTL, and a lock that expired mid-call would let a second worker in.
type lease struct {
	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}
	lost     atomic.Bool
}

func (h *Handler) keepLock(ctx context.Context, id, token string, log *zap.Logger) *lease {
	l := &lease{stopCh: make(chan struct{}), done: make(chan struct{})}
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer close(l.done)
		t := time.NewTicker(h.o.LockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-l.stopCh:
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(ctx, h.o.LockTTL/3)
				ok, err := h.store.Renew(rctx, id, token, h.o.LockTTL)
				cancel()
				switch {
				case err != nil:
					log.Warn("lock renewal failed", zap.Error(err))
				case !ok:
					// Another worker may take over, but it waits
					// ReconcileAfter after our send before it looks up.
					l.lost.Store(true)
					log.Warn("lock lost during delivery")
					return
				}
			}
		}
	}()
	return l
}

// stop ends the renewal and waits for it; safe to call twice.
func (l *lease) stop() {
	l.stopOnce.Do(func() { close(l.stopCh) })
	<-l.done
}
