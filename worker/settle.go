package worker

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
	"leadrelay/tracing"
)

// DeadLetters keeps dead leads where asynq's archive cannot trim them (it
// drops the oldest beyond 10,000 tasks or 90 days). The deadletter
// package's store, adapted in internal/app, is the one the binary uses;
// nil leaves asynq's archive as the only dead-letter queue.
type DeadLetters interface {
	// Put records a dead lead and why it died.
	Put(ctx context.Context, p lead.Payload, d Death) error
	// Forget drops a lead's record once it is delivered after all (an
	// operator re-ran it). Unknown ids are a no-op.
	Forget(ctx context.Context, leadID string) error
}

// Death is why and when a lead died.
type Death struct {
	// Reason is why: the failure itself, or delivery.RetriesExhausted
	// naming the last failure.
	Reason delivery.Reason
	// Outcome is the outcome of the run that ended it (delivery.Final, or
	// the outcome of the failure that spent the last attempt).
	Outcome delivery.Outcome
	// Attempt counts the lead's attempts, this run included, from 1: every
	// run that spent an attempt, across re-runs by operators.
	Attempt int
}

// run is one delivery run of one lead: what settle needs to know.
type run struct {
	p     lead.Payload
	log   *zap.Logger
	token string
	state string // the attempt record's state when the lead dies

	// What the run did, for its timeline entry (recordRun).
	start         time.Time
	adds, lookUps int
	crmID         int64 // the CRM's id of the lead this run delivered
	// task is the id of the asynq task the run serves, whose result
	// Finish writes ("" not run by an asynq server); recorded says Finish
	// put the run on the timeline, resultKept that it kept the result.
	task                 string
	recorded, resultKept bool
}

// settle is the one place that ends a failed run: judge says what the
// error means, delivery.Decide what becomes of the lead, and settle
// records the reason and returns what asynq must do: the error itself to
// retry with backoff, a *DelayError to postpone without spending an
// attempt, or a *deadError (asynq.SkipRetry) once the lead is in the
// dead-letter store.
//
// A run whose context asynq ended (its lease expired: the worker was cut
// off from Redis or stalled; or its deadline passed) has no verdict to
// give: asynq no longer reads what it returns and runs the lead again
// itself. Deciding anyway dead-lettered, on a last attempt, a lead the
// next run delivered (issue 17).
func (h *Handler) settle(ctx context.Context, r *run, err error) error {
	if ctx.Err() != nil {
		r.log.Info("run ended by asynq (its lease expired, or its deadline passed): asynq runs the lead again",
			zap.NamedError("run_error", err), zap.NamedError("cause", context.Cause(ctx)))
		return err
	}
	f := judge(err)
	retried, _ := asynq.GetRetryCount(ctx)
	runs, ok := asynq.GetMaxRetry(ctx)
	if !ok {
		runs = h.o.MaxRetry + 1
	}
	budget := runs - 1 // the spare run is kept for postponements (lead.TaskOptions)
	switch delivery.Decide(f.out, retried, budget) {
	case delivery.DeadLetter:
		return h.dead(ctx, r, f, delivery.DeathReason(f.out, f.reason), err)
	case delivery.Retry:
		h.record(ctx, r, f.reason, true, err)
		return err
	}
	out := postponed(h, f, err)
	if !unrecorded[f.reason.Code] {
		h.record(ctx, r, f.reason, false, out)
	}
	return out
}

// postponed is what settle returns to postpone a run: err itself when it
// says its own delay, else a *DelayError after the wait f's failure asks.
func postponed(h *Handler, f failure, err error) error {
	var de *DelayError
	if errors.As(err, &de) {
		return err
	}
	d := backpressureDelay
	if f.out == delivery.Paused {
		d = h.o.BreakerCooldown
	} else if ra, ok := crmclient.RetryAfter(err); ok {
		d = ra
	}
	return &DelayError{Delay: d, Reason: f.reason, Err: err}
}

// unrecorded are postponements too short and too frequent to be worth a
// write to the lead's record: while a lead waits its turn, LeadRelay's
// own limiter refuses it every few hundred milliseconds.
var unrecorded = map[delivery.Code]bool{delivery.RateLimit: true, delivery.ConcurrencyCap: true}

// backpressureDelay is the wait after a failure of LeadRelay's own Redis
// bookkeeping or an unfinished look-up.
const backpressureDelay = 5 * time.Second

// record keeps the run's reason in the lead's attempt record, and counts
// the run when it spent an attempt; it returns the lead's attempts so far
// (0 when unknown). The same script puts the run on its timeline as
// ending in out, what settle returns (recordRun's entry), so a failed run
// costs one round trip. A record that cannot be written costs only what
// a status shows.
func (h *Handler) record(ctx context.Context, r *run, reason delivery.Reason, spent bool, out error) int {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	var entry *delivery.Run
	if e, ok := h.runEntry(ctx, r, out); ok {
		entry = &e
	}
	n, fence, err := h.store.FailedRun(bctx, r.p.ID, r.token, reason, spent, h.o.DeliveredTTL, entry)
	if err != nil {
		r.log.Warn("the run's reason was not recorded", zap.Error(err))
		return 0
	}
	r.recorded = entry != nil
	if fence == rdb.Fenced {
		return 0 // another run holds the lead: the record is its
	}
	return n
}

// dead dead-letters the lead and tells asynq to archive it.
func (h *Handler) dead(ctx context.Context, r *run, f failure, reason delivery.Reason, err error) error {
	out := &deadError{reason: reason, err: err}
	ctx, end := h.traceStep(ctx, tracing.SpanDeadLetter)
	defer end(nil)
	attempt := h.record(ctx, r, reason, true, out)
	if attempt == 0 {
		retried, _ := asynq.GetRetryCount(ctx)
		attempt = retried + 1
	}
	if h.o.DeadLetters != nil {
		d := Death{Reason: reason, Outcome: f.out, Attempt: attempt}
		if perr := putDead(ctx, h.o.DeadLetters, r.p, d); perr != nil {
			r.log.Error("dead lead not kept in the dead-letter store yet; the dead-letter sweep records it from asynq's archive", zap.Error(perr))
		}
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	switch fence, merr := h.store.MarkDead(bctx, h.o.Queue, r.p.ID, r.token, r.p.Site, r.state, h.o.DeliveredTTL); {
	case merr != nil:
		r.log.Warn("dead flag not recorded; a later delivery may leave a stale dead-letter record", zap.Error(merr))
	case fence == rdb.Fenced:
		r.log.Warn("another run holds the lead, or delivered it; its state was left to it")
	}
	return out
}

// deadPutTries bounds the dead-letter writes of a dying lead, all within
// one bookkeepingTimeout: a Redis failover or restart fails a write or two.
const deadPutTries = 3

// putDead puts the dead letter, trying again after a short wait when the
// write fails, up to deadPutTries times within bookkeepingTimeout. What
// still fails is left to the dead-letter sweep (internal/app), which
// records a lead found in asynq's archive with no record.
func putDead(ctx context.Context, dl DeadLetters, p lead.Payload, d Death) error {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	wait := 100 * time.Millisecond
	var err error
	for try := 1; ; try++ {
		if err = dl.Put(bctx, p, d); err == nil || try == deadPutTries {
			return err
		}
		select {
		case <-bctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// logFields are the fields that describe a failure in a log line: its
// outcome, reason code and text, and the CRM's code or HTTP status.
func logFields(f failure) []zap.Field {
	fields := []zap.Field{zap.String("class", f.out.String()), zap.String("reason_code", string(f.reason.Code)),
		zap.String("reason", f.reason.Text(delivery.Operators))}
	switch {
	case f.reason.CRMCode != 0:
		fields = append(fields, zap.Int("crm_code", f.reason.CRMCode))
	case f.reason.HTTPStatus != 0:
		fields = append(fields, zap.Int("crm_code", f.reason.HTTPStatus))
	}
	return fields
}
