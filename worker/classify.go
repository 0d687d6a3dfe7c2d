package worker

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/crmclient"
)

// Outcome is what a delivery error means for the lead; classify decides it.
type Outcome int

// The outcomes of classify.
const (
	// OutcomeNone: no error, the lead is delivered (or was already).
	OutcomeNone Outcome = iota
	// OutcomeRetry: transient; retry with backoff, spending an attempt.
	OutcomeRetry
	// OutcomeAmbiguous: the CRM may have stored the lead; the next attempt
	// reconciles before it sends again. Spends an attempt.
	OutcomeAmbiguous
	// OutcomeDead: retrying cannot help; dead-letter now (asynq.SkipRetry).
	OutcomeDead
	// OutcomePause: the CRM configuration is wrong, not the lead; retry
	// later without spending an attempt.
	OutcomePause
	// OutcomeBackpressure: rate limit, open circuit or a busy lock; retry
	// later without spending an attempt.
	OutcomeBackpressure
)

// String returns the outcome's name as logged in the class field.
func (o Outcome) String() string {
	switch o {
	case OutcomeNone:
		return "none"
	case OutcomeRetry:
		return "retry"
	case OutcomeAmbiguous:
		return "ambiguous"
	case OutcomeDead:
		return "dead"
	case OutcomePause:
		return "pause"
	case OutcomeBackpressure:
		return "backpressure"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// DelayError asks for a retry after at least Delay without spending an
// attempt: IsFailure reports it as no failure, and RetryDelay waits at
// least Delay. The zero Delay leaves the wait to the backoff schedule.
type DelayError struct {
	// Delay is the least time to wait before the next attempt.
	Delay time.Duration
	// Reason says why, for logs and the task's last error.
	Reason string
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
// lead's fault, always worth a retry.
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

// unrecordedError: the CRM stored the lead but the delivered marker could
// not be written. The attempt record still says "sending", so the next
// attempt reconciles instead of adding again.
type unrecordedError struct {
	crmID int64
	err   error
}

func (e *unrecordedError) Error() string {
	return fmt.Sprintf("delivered as CRM lead %d but the delivered marker was not recorded: %v", e.crmID, e.err)
}
func (e *unrecordedError) Unwrap() error { return e.err }

// reconcileError is a failure of the CRM look-up after an ambiguous
// attempt. A look-up never dead-letters the lead.
type reconcileError struct{ err error }

func (e *reconcileError) Error() string { return "reconcile: " + e.err.Error() }
func (e *reconcileError) Unwrap() error { return e.err }

// classify is the one place that decides what an error means. It looks
// through wrapping with errors.Is/As only.
func classify(err error) Outcome {
	if err == nil {
		return OutcomeNone
	}
	var (
		de *DelayError
		ue *unrecordedError
		se *storeError
		re *reconcileError
		st *crmclient.StatusError
	)
	switch {
	case errors.As(err, &de):
		if de.Err != nil && classify(de.Err) == OutcomePause {
			return OutcomePause
		}
		return OutcomeBackpressure
	case errors.Is(err, asynq.SkipRetry):
		return OutcomeDead
	case errors.As(err, &ue):
		return OutcomeAmbiguous
	case errors.As(err, &se):
		return OutcomeRetry
	case errors.As(err, &re):
		// A look-up that could not finish says nothing about the lead: try
		// again later without spending an attempt, so a flaky CRM cannot
		// talk a lead into the dead-letter queue.
		if classify(re.err) == OutcomePause {
			return OutcomePause
		}
		return OutcomeBackpressure
	case errors.As(err, &st) && st.StatusCode == http.StatusTooManyRequests:
		return OutcomeBackpressure
	case errors.As(err, &st) && st.Action == "add" &&
		(st.StatusCode == http.StatusInternalServerError ||
			st.StatusCode == http.StatusBadGateway || st.StatusCode == http.StatusGatewayTimeout):
		// A proxy that gave up waiting does not know whether the CRM
		// behind it committed the add; a 500 is what a PHP fatal answers
		// with display_errors off, and the fatal may come after the
		// insert (the 200 fatal page is ambiguous for the same reason).
		// 503 stays transient: the request never reached PHP.
		return OutcomeAmbiguous
	}
	switch crmclient.Classify(err) {
	case crmclient.ClassTransient:
		return OutcomeRetry
	case crmclient.ClassAmbiguous:
		return OutcomeAmbiguous
	case crmclient.ClassConfig:
		return OutcomePause
	}
	return OutcomeDead
}

// IsFailure is asynq.Config.IsFailure: a *DelayError (backpressure, paused
// configuration, busy lock) is no failure, so it spends no attempt.
func IsFailure(err error) bool {
	var de *DelayError
	return err != nil && !errors.As(err, &de)
}
