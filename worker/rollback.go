package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"leadrelay/crm"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
)

// A Redis that rolls back (issue 17, point 7): restarted from an older
// snapshot, or a lagging replica promoted, it forgets the delivered
// markers and "sending" records it had acknowledged, and hands their
// tasks out again; sent again, each lead is in the CRM twice. Each worker
// counts the fleet epoch on every epochEvery and remembers its count; a
// Begin or a check that reads a lower one (or none) records the rollback
// for the fleet. A restart or failover that kept every count (an
// append-only file, a replica in step) is no rollback: nothing is looked
// up, and the loss of less than one count goes unseen. For
// RollbackGuard after it, every lead received before it is looked up at
// the CRM before it is added (the look-up an uncertain add takes), so a
// lead delivered in the forgotten time is recorded, not sent again.

// RollbackGuard is how long after a rollback the leads received before it
// are looked up before any add: a lead the old data holds may wait for
// its next retry up to LEADRELAY_RETRY_MAX_DELAY, and the backlog drains
// well within a day.
const RollbackGuard = 24 * time.Hour

// epochEvery is how often a worker counts the fleet epoch on.
const epochEvery = 2 * time.Second

// receivedSkew is the margin for intake's clock against Redis's when a
// lead's receipt is compared with the rollback.
const receivedSkew = time.Minute

// rollbackWatch is a worker's view of the fleet epoch.
type rollbackWatch struct {
	count atomic.Int64 // the epoch this worker counted last; 0 none yet
	since atomic.Int64 // Unix ms of the rollback being guarded, 0 none
	floor atomic.Int64 // the highest CRM id the old data recorded (0: unknown)
	mu    sync.Mutex   // one check at a time
	runID string       // Redis's run id at the last check
}

// guarded reports whether a lead received at received must be looked up
// before an add: it came in before a rollback guarded now.
func (w *rollbackWatch) guarded(received, now time.Time) bool {
	ms := w.since.Load()
	if ms == 0 {
		return false
	}
	since := time.UnixMilli(ms)
	return now.Before(since.Add(RollbackGuard)) && received.Before(since.Add(receivedSkew))
}

// take guards rb from now; true when it was not guarded yet.
func (w *rollbackWatch) take(rb rdb.Rollback) bool {
	w.floor.Store(rb.Floor)
	return w.since.Swap(rb.At.UnixMilli()) != rb.At.UnixMilli()
}

// checkEpoch counts the fleet epoch on and takes in a rollback found, by
// this worker or another.
func (h *Handler) checkEpoch(ctx context.Context) error {
	w := &h.rollback
	w.mu.Lock()
	defer w.mu.Unlock()
	id, err := h.store.RunID(ctx)
	if err != nil {
		return err
	}
	restarted := w.runID != "" && id != w.runID
	e, err := h.store.EpochCheck(ctx, w.count.Load(), h.o.Clock(), RollbackGuard)
	if err != nil {
		return err
	}
	w.runID = id
	w.count.Store(e.Count)
	if rb := e.Rollback; !rb.At.IsZero() && h.rollback.take(rb) {
		h.log.Error("Redis came back with older data (restored from an older snapshot, or a lagging replica took over): "+
			"leads received before now are looked up at the CRM before any add",
			zap.Time("since", e.Rollback.At), zap.Int64("crm_floor", e.Rollback.Floor), zap.Bool("found_here", e.Found), zap.Bool("redis_restarted", restarted),
			zap.Duration("guard", RollbackGuard))
	}
	if e.Found && h.o.OnRollback != nil {
		h.o.OnRollback(e.Rollback.At)
	}
	return nil
}

// keepEpoch checks the fleet epoch now and every epochEvery while ctx
// lives.
func (h *Handler) keepEpoch(ctx context.Context) {
	check := func() {
		cctx, cancel := context.WithTimeout(ctx, bookkeepingTimeout)
		defer cancel()
		if err := h.checkEpoch(cctx); err != nil && ctx.Err() == nil {
			h.log.Debug("fleet epoch not checked", zap.Error(err))
		}
	}
	check()
	go every(ctx, epochEvery, check)
}

// sawEpoch takes in what Begin read: a rollback another worker found, or
// an epoch lower than this worker counted before it (Redis forgot
// writes), for which the check runs now, before this run may add.
func (h *Handler) sawEpoch(ctx context.Context, before int64, b rdb.Begun) {
	if !b.Rollback.At.IsZero() {
		h.rollback.take(b.Rollback)
	}
	if before == 0 || b.Epoch >= before {
		return
	}
	if err := h.checkEpoch(ctx); err != nil {
		// Redis answered Begin but not the check: guard from now anyway.
		h.rollback.since.CompareAndSwap(0, h.o.Clock().UnixMilli())
		h.log.Warn("fleet epoch lower than counted; guarding this worker's leads", zap.Error(err))
	}
}

// lookUpRolledBack looks up, before its add, a lead received before a
// rollback of Redis, which may have forgotten its delivery. done means
// the run is over (found and recorded, or the look-up failed).
func (h *Handler) lookUpRolledBack(ctx context.Context, r *run, a rdb.Attempt, hd *hold) (done bool, err error) {
	// Its record may be gone with the rollback: look back to its receipt,
	// down to the highest CRM id the old data recorded (an add since the
	// snapshot made a higher one).
	a.FirstAt, a.Watermark = r.p.ReceivedAt, h.rollback.floor.Load()
	res, err := h.lookUp(ctx, r, a)
	if err != nil {
		hd.release(ctx, hd.unsend)
		return true, &lookupError{err}
	}
	r.log.Info("looked up after a Redis rollback", zap.String("reconcile", res.Finding.String()), zap.Int64("crm_id", res.CRMID))
	switch {
	case res.Finding == crm.Found:
		p := r.p
		return true, h.delivered(ctx, r, rdb.Marker{CRMID: res.CRMID, LeadID: p.ID, Site: p.Site, Sum: p.Sum, Via: "reconcile"}, a.Dead, hd.lease)
	case res.Finding == crm.CannotTell && h.o.ReconcileUnknown == ReconcileDead:
		hd.release(ctx, hd.unsend)
		return true, &deadError{reason: delivery.Reason{Code: delivery.LookUpUnknown}}
	}
	return false, nil
}
