package worker

import (
	"context"
	"time"

	"go.uber.org/zap"

	"leadrelay/crm"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/tracing"
)

// reconcileSettle is added to CRMTimeout for the least ReconcileAfter, so
// the earlier request cannot still be in flight on our side.
const reconcileSettle = time.Second

// lookUp asks the API version whether the CRM has the lead of an
// uncertain add, and counts the answer.
func (h *Handler) lookUp(ctx context.Context, r *run, a rdb.Attempt) (crm.Result, error) {
	r.lookUps++
	ctx, end := h.traceStep(ctx, tracing.SpanLookUp)
	res, err := h.api.LookUp(ctx, r.p, a)
	end(err)
	h.stats.reconcile(res, err)
	return res, err
}

// lookUpFirst looks up a lead whose earlier add is uncertain, once that
// add cannot commit any more. done means the run is over (delivered,
// postponed or dead: err says); otherwise the attempt record says
// "sending" again and the run sends.
func (h *Handler) lookUpFirst(ctx context.Context, r *run, a rdb.Attempt, hd *hold) (done bool, err error) {
	settleAt := a.SettleAt
	if settleAt.IsZero() {
		settleAt = a.SentAt.Add(h.o.ReconcileAfter)
	}
	if wait := settleAt.Sub(h.o.Clock()); wait > 0 {
		hd.release(ctx, hd.unsend)
		return true, &DelayError{Delay: wait, Reason: delivery.Reason{Code: delivery.LookUpWait}}
	}
	p := r.p
	res, err := h.lookUp(ctx, r, a)
	if err != nil {
		hd.release(ctx, rdb.Release{Mode: rdb.ReleaseKeep})
		return true, &lookupError{err}
	}
	r.log.Info("reconciled", zap.String("reconcile", res.Finding.String()), zap.Int64("crm_id", res.CRMID),
		zap.Int("sends", a.Sends), zap.String("crm_api", string(h.api.Version())))
	switch {
	case res.Finding == crm.Found:
		return true, h.delivered(ctx, r, rdb.Marker{CRMID: res.CRMID, LeadID: p.ID, Site: p.Site, Sum: p.Sum, Via: "reconcile"}, a.Dead, hd.lease)
	case res.Finding == crm.CannotTell && h.o.ReconcileUnknown == ReconcileDead:
		hd.release(ctx, rdb.Release{Mode: rdb.ReleaseKeep})
		return true, &deadError{reason: delivery.Reason{Code: delivery.LookUpUnknown}}
	}
	if wait := h.earlyBy(a); wait > 0 {
		r.log.Info("the look-up ran before the CRM could have committed the earlier add; it runs again before any resend",
			zap.Duration("wait", wait))
		hd.release(ctx, rdb.Release{Mode: rdb.ReleaseKeep})
		return true, &DelayError{Delay: wait, Reason: delivery.Reason{Code: delivery.LookUpWait}}
	}
	return h.resend(ctx, r, hd)
}

// earlyBy is how much too early a look-up that found nothing ran, 0 if
// not: an add that may still commit (its settle time lies beyond the CRM
// timeout from its send; an add answered within it, an HTTP 500, is over)
// is looked up again, not resent, until this worker's reconcile wait
// since the send has passed. The record's settle time let it run sooner
// when a worker with a shorter LEADRELAY_RECONCILE_AFTER wrote it (a
// rolling change of the setting), or one whose clock was off before it
// read Redis's (clock.go).
func (h *Handler) earlyBy(a rdb.Attempt) time.Duration {
	if a.SentAt.IsZero() || !a.SettleAt.After(a.SentAt.Add(h.o.CRMTimeout)) {
		return 0
	}
	return max(a.SentAt.Add(h.o.ReconcileAfter).Sub(h.o.Clock()), 0)
}

// resend writes the attempt record ahead of sending again, after a
// look-up found nothing (or could not tell, under the resend policy).
// done: the lead turned out delivered meanwhile, another run took it over,
// or the record could not be written.
func (h *Handler) resend(ctx context.Context, r *run, hd *hold) (done bool, err error) {
	m, err := h.store.MarkSending(ctx, r.p.ID, r.token, h.o.Clock(), h.o.DeliveredTTL, h.api.Watermark())
	switch {
	case err != nil:
		hd.release(ctx, rdb.Release{Mode: rdb.ReleaseKeep})
		return true, crm.StoreErr("record attempt", err)
	case m.Marker != nil:
		hd.release(ctx, rdb.Release{Mode: rdb.ReleaseKeep})
		h.duplicate(r.p.Site, m.Marker, r.log)
		return true, nil
	case m.Fence == rdb.Fenced:
		// Our lock expired during the look-up and another run took the
		// lead over: it decides, and this run must not send.
		hd.release(ctx, rdb.Release{Mode: rdb.ReleaseKeep})
		return true, &DelayError{Delay: h.o.LockTTL, Reason: delivery.Reason{Code: delivery.LockBusy}}
	}
	hd.sending()
	return false, nil
}

// lookUpNow follows an add that got a complete but unclear answer (HTTP
// 500 or 502, an error page): the CRM's request is over, so the lead is
// looked up in the same run instead of waiting. A look-up that finds it
// records the delivery; one that cannot tell leaves the lead uncertain for
// the next run. Where the API version says an error page may mean it is
// broken on this CRM, a preflight decides first.
func (h *Handler) lookUpNow(ctx context.Context, r *run, addErr error) error {
	if h.api.Caps().CheckErrorPages {
		if problem := h.health.preflightAfterError(ctx, h, addErr); !problem.IsZero() {
			return &DelayError{Delay: h.o.BreakerCooldown, Reason: problem, Err: addErr}
		}
	}
	hd, a, ok := h.relock(ctx, r)
	if !ok {
		return addErr // someone else has it, or it is no longer uncertain
	}
	defer hd.lease.stop()
	res, err := h.lookUp(ctx, r, a)
	if err == nil {
		r.log.Info("reconciled at once", zap.String("reconcile", res.Finding.String()), zap.Int64("crm_id", res.CRMID),
			zap.String("crm_api", string(h.api.Version())))
	}
	switch {
	case err != nil:
		// The look-up could not finish: the lead stays uncertain.
	case res.Finding == crm.Found:
		p := r.p
		return h.delivered(ctx, r, rdb.Marker{CRMID: res.CRMID, LeadID: p.ID, Site: p.Site, Sum: p.Sum, Via: "reconcile"}, a.Dead, hd.lease)
	case res.Finding == crm.NotFound:
		// Certainly not stored: the next run sends without a look-up.
		r.state = rdb.StateFailed
		hd.release(ctx, rdb.Release{Mode: rdb.ReleaseSet, State: rdb.StateFailed})
		return addErr
	}
	hd.release(ctx, rdb.Release{Mode: rdb.ReleaseKeep})
	return addErr
}

// relock takes the lead's lock again for a look-up at once. ok is false
// when another worker has it, or the lead is no longer uncertain.
func (h *Handler) relock(ctx context.Context, r *run) (hd *hold, a rdb.Attempt, ok bool) {
	b, err := h.store.Begin(ctx, rdb.BeginArgs{ID: r.p.ID, Token: r.token, Now: h.o.Clock(),
		LockTTL: h.o.LockTTL, RecordTTL: h.o.DeliveredTTL})
	if err != nil || !b.Locked || b.Send {
		if b.Locked {
			bctx, cancel := bookkeeping(ctx)
			defer cancel()
			_, _ = h.store.Release(bctx, r.p.ID, r.token, rdb.Release{Mode: rdb.ReleaseUnsend})
		}
		return nil, rdb.Attempt{}, false
	}
	lk := h.keepLock(ctx, r.p.ID, r.token, r.log)
	return &hold{h: h, r: r, lease: lk, unsend: rdb.Release{Mode: rdb.ReleaseKeep}}, b.Attempt, true
}
