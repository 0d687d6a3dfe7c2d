package worker

import (
	"errors"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/crm"
	"leadrelay/crmclient"
	"leadrelay/delivery"
)

// failure is what an error means, decided once by judge: its outcome and
// reason, and for a failed CRM call the client's class, which the circuit,
// the limiter's feedback and the metrics read.
type failure struct {
	out    delivery.Outcome
	reason delivery.Reason
	class  crmclient.Class // ClassNone for the worker's own errors
}

// judge is the one function that maps an error to what it means. The
// worker's own errors carry their reason; a CRM call's error was
// diagnosed once, by crmclient.Diagnose, where the call returned
// (judgedCRM); an error from anywhere else is diagnosed here. The outcome
// is the reason's (delivery.Code.Outcome). Nothing reads an error's text.
func judge(err error) failure {
	var (
		de *DelayError
		cs *crm.StoreError
		le *lookupError
		dd *deadError
		ce *crmError
	)
	switch {
	case err == nil:
		return failure{}
	case errors.As(err, &dd):
		return failure{out: delivery.Final, reason: dd.reason}
	case errors.As(err, &de):
		f := judge(de.Err)
		if !de.Reason.IsZero() {
			f.reason = de.Reason
		}
		if f.out = f.reason.Outcome(); !f.out.Postpones() {
			f.out = delivery.Backpressure // a delay never spends an attempt
		}
		return f
	case errors.As(err, &cs):
		return failure{out: delivery.Backpressure, reason: delivery.Reason{Code: delivery.Store}}
	case errors.As(err, &le):
		f := judge(le.err)
		if f.out == delivery.Paused {
			return f // the look-up met a configuration problem: a pause
		}
		r := delivery.Reason{Code: delivery.LookUpFailed, CRMCode: f.reason.CRMCode, HTTPStatus: f.reason.HTTPStatus}
		return failure{out: delivery.Backpressure, reason: r, class: f.class}
	case errors.Is(err, asynq.ErrLeaseExpired):
		// asynq's own verdict on a run it lost (the recoverer's, or the
		// processor's): the worker's trouble, it spends no attempt.
		r := delivery.Reason{Code: delivery.LeaseExpired}
		return failure{out: r.Outcome(), reason: r}
	case errors.As(err, &ce):
		return failure{out: ce.d.Reason.Outcome(), reason: ce.d.Reason, class: ce.d.Class}
	}
	d := crmclient.Diagnose(err)
	return failure{out: d.Reason.Outcome(), reason: d.Reason, class: d.Class}
}

// IsFailure is asynq.Config.IsFailure: a postponement (backpressure, a
// paused configuration, a busy lock) is no failure, so it spends no
// attempt.
func IsFailure(err error) bool {
	return err != nil && !judge(err).out.Postpones()
}

// DelayError asks for another run after Delay without spending an
// attempt: IsFailure reports it as no failure, and RetryDelay waits Delay.
type DelayError struct {
	// Delay is how long to wait before the next run.
	Delay time.Duration
	// Reason says why; its code's outcome must postpone (a configuration
	// problem pauses, anything else is backpressure).
	Reason delivery.Reason
	// Err is the cause, if any.
	Err error
}

// Error reports the delay, the reason and the cause.
func (e *DelayError) Error() string {
	s := "postponed " + e.Delay.Round(time.Millisecond).String() + ": " + e.Reason.String()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *DelayError) Unwrap() error { return e.Err }

// lookupError is a CRM look-up (reconcile) that could not finish: it says
// nothing about the lead (delivery.LookUpFailed, or the configuration
// problem it met).
type lookupError struct{ err error }

func (e *lookupError) Error() string { return "reconcile: " + e.err.Error() }
func (e *lookupError) Unwrap() error { return e.err }

// deadError ends a lead: before settle, a reason of the relay's own that
// retrying cannot help; from settle, to asynq, the lead's death with
// asynq.SkipRetry so that asynq archives the task. Its text, which asynq
// keeps as the task's last error, is the reason for operators.
type deadError struct {
	reason delivery.Reason
	err    error // the cause, if any
}

func (e *deadError) Error() string { return e.reason.String() }
func (e *deadError) Unwrap() []error {
	if e.err == nil {
		return []error{asynq.SkipRetry}
	}
	return []error{e.err, asynq.SkipRetry}
}

// crmError is a failed CRM call with its diagnosis, made once where the
// call returned.
type crmError struct {
	err error
	d   crmclient.Diagnosis
}

func (e *crmError) Error() string { return e.err.Error() }
func (e *crmError) Unwrap() error { return e.err }

// diagnosed wraps a CRM call's error with its diagnosis; nil stays nil.
func diagnosed(err error) error {
	var ce *crmError
	if err == nil || errors.As(err, &ce) {
		return err
	}
	return &crmError{err: err, d: crmclient.Diagnose(err)}
}
