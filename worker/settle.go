package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"leadrelay/crmclient"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// Outcome is what the end of one delivery run means for the lead; outcomeOf
// decides it, settle acts on it.
type Outcome int

// The outcomes of a run.
const (
	// OutcomeNone: no error, the lead is delivered (or was already).
	OutcomeNone Outcome = iota
	// OutcomeRetry: transient; retry with backoff, spending an attempt.
	OutcomeRetry
	// OutcomeUncertain: the CRM may have stored the lead; the next run
	// looks it up before it sends again. Spends an attempt.
	OutcomeUncertain
	// OutcomeDead: retrying cannot help; dead-letter now.
	OutcomeDead
	// OutcomePause: the CRM configuration is wrong, not the lead; retry
	// later without spending an attempt.
	OutcomePause
	// OutcomeBackpressure: an open circuit, a rate limit, a busy lock or a
	// look-up that could not finish; retry later without spending an
	// attempt.
	OutcomeBackpressure
)

// String returns the outcome's name as logged in the class field.
func (o Outcome) String() string {
	switch o {
	case OutcomeNone:
		return "none"
	case OutcomeRetry:
		return "retry"
	case OutcomeUncertain:
		return "uncertain"
	case OutcomeDead:
		return "dead"
	case OutcomePause:
		return "pause"
	case OutcomeBackpressure:
		return "backpressure"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// counted reports whether the outcome spends one of the lead's attempts.
func (o Outcome) counted() bool { return o == OutcomeRetry || o == OutcomeUncertain }

// DelayError asks for another run after Delay without spending an
// attempt: IsFailure reports it as no failure, and RetryDelay waits Delay.
type DelayError struct {
	// Delay is how long to wait before the next run.
	Delay time.Duration
	// Reason says why, for logs and the task's last error.
	Reason string
	// Problem, when set, says the wait is a CRM configuration problem and
	// what to fix (a pause, not backpressure).
	Problem string
	// Err is the cause, if any.
	Err error
}

// Error reports the reason and the cause.
func (e *DelayError) Error() string {
	s := "postponed " + e.Delay.Round(time.Millisecond).String() + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *DelayError) Unwrap() error { return e.Err }

// storeError is a failure of LeadRelay's own Redis bookkeeping: never the
// lead's fault.
type storeError struct {
	op  string
	err error
}

func (e *storeError) Error() string { return "redis: " + e.op + ": " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

func storeErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return &storeError{op: op, err: err}
}

// lookupError is a CRM look-up (reconcile) that could not finish: it says
// nothing about the lead.
type lookupError struct{ err error }

func (e *lookupError) Error() string { return "reconcile: " + e.err.Error() }
func (e *lookupError) Unwrap() error { return e.err }

// deadError dead-letters a lead for a reason of the relay's own.
type deadError struct{ reason string }

func (e *deadError) Error() string { return e.reason }

// outcomeOf maps an error to an outcome. CRM errors go through the one
// classification table, crmclient.Classify; the worker's own errors are
// mapped here, and nothing else is.
func outcomeOf(err error) Outcome {
	var (
		de *DelayError
		se *storeError
		le *lookupError
		dd *deadError
	)
	switch {
	case err == nil:
		return OutcomeNone
	case errors.As(err, &dd), errors.Is(err, asynq.SkipRetry):
		return OutcomeDead
	case errors.As(err, &de):
		if de.Problem != "" || de.Err != nil && crmclient.Classify(de.Err) == crmclient.ClassConfig {
			return OutcomePause
		}
		return OutcomeBackpressure
	case errors.As(err, &se):
		return OutcomeBackpressure
	case errors.As(err, &le):
		if crmclient.Classify(le.err) == crmclient.ClassConfig {
			return OutcomePause
		}
		return OutcomeBackpressure
	}
	switch crmclient.Classify(err) {
	case crmclient.ClassTransient:
		return OutcomeRetry
	case crmclient.ClassAmbiguous, crmclient.ClassAnswered:
		return OutcomeUncertain
	case crmclient.ClassConfig:
		return OutcomePause
	case crmclient.ClassRateLimited:
		return OutcomeBackpressure
	}
	return OutcomeDead
}

// IsFailure is asynq.Config.IsFailure: a *DelayError (backpressure, paused
// configuration, busy lock) is no failure, so it spends no attempt.
func IsFailure(err error) bool {
	var de *DelayError
	return err != nil && !errors.As(err, &de)
}

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
	// Reason is a short sentence for sites, the UI and logs, e.g. "the
	// CRM rejected the lead (code 1: …)".
	Reason string
	// Detail is the raw error, for operators; it never holds the CRM key.
	Detail string
	// Class is the outcome that ended it, e.g. "dead" or "retry".
	Class string
	// Attempt is the number of the run that ended it, from 1.
	Attempt int
}

// run is one delivery run of one lead: what settle needs to know.
type run struct {
	p     lead.Payload
	log   *zap.Logger
	token string
	// locked: this run holds the lead's lock; settle's caller released it.
	state string // the attempt record's state when the lead dies
}

// settle is the one place that ends a failed run. It decides, for every
// outcome, whether the lead is dead (a counted failure on its last
// attempt, or a failure retrying cannot help) and returns what asynq must
// do. Backpressure and pauses never spend an attempt, and because every
// task is enqueued with one run more than its budget (lead.TaskOptions),
// they never reach the run on which asynq would archive the task behind
// LeadRelay's back; a task from before that rule is dead-lettered with
// its reason instead.
func (h *Handler) settle(ctx context.Context, r run, err error) error {
	out := outcomeOf(err)
	retried, _ := asynq.GetRetryCount(ctx)
	runs, ok := asynq.GetMaxRetry(ctx)
	if !ok {
		runs = h.o.MaxRetry + 1
	}
	budget := runs - 1 // the last run asynq grants is kept for backpressure
	log := r.log.With(zap.String("class", out.String()))
	log = log.With(crmFields(err)...)
	switch {
	case out == OutcomeDead:
		return h.dead(ctx, r, out, reasonOf(err), err)
	case out.counted() && retried >= budget:
		return h.dead(ctx, r, out, "retries exhausted: "+reasonOf(err), err)
	case !out.counted() && retried >= runs:
		return h.dead(ctx, r, out, "postponed on its last run: "+reasonOf(err), err)
	}
	if out == OutcomePause {
		var de *DelayError
		if !errors.As(err, &de) {
			hint := configHint(err)
			err = &DelayError{Delay: h.o.BreakerCooldown, Reason: "CRM configuration problem: " + hint, Problem: hint, Err: err}
		}
	}
	if out == OutcomeBackpressure {
		var de *DelayError
		if !errors.As(err, &de) {
			d, _ := crmclient.RetryAfter(err)
			if d <= 0 {
				d = backpressureDelay
			}
			err = &DelayError{Delay: d, Reason: reasonOf(err), Err: err}
		}
	}
	return err
}

// backpressureDelay is the wait after a failure of LeadRelay's own Redis
// bookkeeping or an unfinished look-up.
const backpressureDelay = 5 * time.Second

// dead dead-letters the lead and tells asynq to archive it.
func (h *Handler) dead(ctx context.Context, r run, out Outcome, reason string, err error) error {
	retried, _ := asynq.GetRetryCount(ctx)
	d := Death{Reason: reason, Detail: err.Error(), Class: out.String(), Attempt: retried + 1}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	if h.o.DeadLetters != nil {
		if perr := h.o.DeadLetters.Put(bctx, r.p, d); perr != nil {
			r.log.Error("dead lead not kept in the dead-letter store; asynq's archive still holds it", zap.Error(perr))
		}
	}
	if merr := h.store.MarkDead(bctx, h.o.Queue, r.p.ID, r.p.Site, r.state, h.o.DeliveredTTL); merr != nil {
		r.log.Warn("dead flag not recorded; a later delivery may leave a stale dead-letter record", zap.Error(merr))
	}
	return &deadLetter{reason: reason, err: err}
}

// deadLetter is what a dead run returns to asynq: the short reason as the
// task's last error, asynq.SkipRetry so it archives, and the cause for
// errors.As.
type deadLetter struct {
	reason string
	err    error
}

func (e *deadLetter) Error() string   { return e.reason }
func (e *deadLetter) Unwrap() []error { return []error{e.err, asynq.SkipRetry} }

// reasonOf is the short sentence for an error: what sites, the UI and the
// logs show as the reason.
func reasonOf(err error) string {
	var (
		ae *crmclient.APIError
		se *crmclient.StatusError
		de *DelayError
		dd *deadError
		dl *deadLetter
	)
	switch {
	case errors.As(err, &dl):
		return dl.reason
	case errors.As(err, &dd):
		return dd.reason
	case errors.As(err, &de):
		return de.Reason
	case errors.As(err, &ae):
		if crmclient.Classify(err) == crmclient.ClassPermanent {
			return fmt.Sprintf("the CRM rejected the lead (code %d: %s)", ae.Code, ae.Text)
		}
		return fmt.Sprintf("the CRM refused the request (code %d: %s)", ae.Code, ae.Text)
	case errors.As(err, &se):
		return fmt.Sprintf("the CRM answered HTTP %d", se.StatusCode)
	}
	switch crmclient.Classify(err) {
	case crmclient.ClassAmbiguous:
		return "the CRM did not answer in time; it may have stored the lead"
	case crmclient.ClassAnswered:
		return "the CRM answered with an error page; it may have stored the lead"
	case crmclient.ClassTransient:
		return "the CRM is unreachable"
	}
	return err.Error()
}

// crmFields returns the log fields describing a CRM error: crm_code.
func crmFields(err error) []zap.Field {
	var (
		ae *crmclient.APIError
		se *crmclient.StatusError
	)
	switch {
	case errors.As(err, &ae):
		return []zap.Field{zap.Int("crm_code", ae.Code)}
	case errors.As(err, &se):
		return []zap.Field{zap.Int("crm_code", se.StatusCode)}
	}
	return nil
}

var _ = rdb.StateFailed
