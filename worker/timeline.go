package worker

import (
	"context"
	"os"
	"strconv"

	"go.uber.org/zap"

	"leadrelay/delivery"
)

// recordRun puts the run on its lead's timeline (rdb.Store.RecordRun):
// when it began, on which worker, how it ended and why (read from what
// ProcessTask returns to asynq, as settle decided it), what the CRM
// answered, how long it took, and its adds and look-ups. The short
// postponements settle does not record either (unrecorded: the limiter's
// refusals every few hundred milliseconds) would crowd out the runs that
// matter. A timeline that cannot be written costs only what a status
// shows. A delivering run's entry goes with its Finish, and a failed
// run's with its reason (record), in the same script: recordRun writes
// only what those did not (duplicates, interrupted runs, a failed write).
func (h *Handler) recordRun(ctx context.Context, r *run, err error) {
	e, ok := h.runEntry(ctx, r, err)
	if !ok {
		return
	}
	bctx, cancel := bookkeeping(ctx)
	defer cancel()
	if _, werr := h.store.RecordRun(bctx, r.p.ID, r.token, e, h.o.DeliveredTTL); werr != nil {
		r.log.Warn("the run was not put on the lead's timeline", zap.Error(werr))
	}
}

// runEntry is run r's timeline entry when ProcessTask returns err; false
// for a postponement left unrecorded.
func (h *Handler) runEntry(ctx context.Context, r *run, err error) (delivery.Run, bool) {
	e := delivery.Run{At: r.start, Worker: h.name, Duration: h.o.Clock().Sub(r.start),
		Adds: r.adds, LookUps: r.lookUps, CRMID: r.crmID}
	f := judge(err)
	e.Reason = f.reason
	switch {
	case err == nil && r.crmID != 0:
		e.End = delivery.RunDelivered
	case err == nil:
		e.End = delivery.RunDuplicate
	case ctx.Err() != nil:
		e.End = delivery.RunInterrupted
	case f.out == delivery.Final:
		e.End = delivery.RunDead
	case f.out.Postpones():
		if unrecorded[f.reason.Code] {
			return e, false
		}
		e.End = delivery.RunPostponed
	default:
		e.End = delivery.RunRetry
	}
	return e, true
}

// processName names this process as asynq names its servers: host:pid.
func processName() string {
	host, _ := os.Hostname()
	return host + ":" + strconv.Itoa(os.Getpid())
}
