package worker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"

	"leadrelay/delivery"
)

// Limiter protects the CRM: a request rate and a cap on requests in flight,
// shared by all workers; NewRedisLimiter is the Redis-based one.
// Options.Limiter nil means no limit.
type Limiter interface {
	// Acquire admits one CRM request. A refusal should be a *DelayError
	// saying when to come back, so no attempt is spent. release frees the
	// slot after the request and must be called exactly once.
	Acquire(ctx context.Context) (release func(), err error)
}

// CRMOutcome is how a CRM request went, for a FeedbackLimiter.
type CRMOutcome int

// The outcomes a FeedbackLimiter learns from.
const (
	// CRMAnswered: the CRM answered, a success or a definite refusal; its
	// latency says how loaded the CRM is.
	CRMAnswered CRMOutcome = iota
	// CRMOverloaded: a timeout or HTTP 429: the CRM is struggling.
	CRMOverloaded
	// CRMAbandoned: the request ended for reasons of ours (shutdown, a
	// cancelled task): no signal.
	CRMAbandoned
	// CRMFailed: a dropped or refused connection, HTTP 502, 503 or 504:
	// overload, or a flaky proxy failing a steady share of calls at any
	// concurrency. The limiter tells them apart by share: it cuts only
	// when most of a measured epoch failed.
	CRMFailed
)

// FeedbackLimiter is a Limiter that learns from every request it admitted:
// the Redis limiter with WithAdaptiveConcurrency. Handler.acquireCRM uses
// it when Options.Limiter has it.
type FeedbackLimiter interface {
	Limiter
	// AcquireFeedback admits one CRM request like Acquire; done frees the
	// slot and says how the request went. The time from admission to done
	// is the request's latency, so call done right after the CRM call,
	// exactly once.
	AcquireFeedback(ctx context.Context) (done func(CRMOutcome), err error)
}

// acquire admits one CRM request through the configured Limiter, if any.
func (h *Handler) acquire(ctx context.Context) (func(), error) {
	if h.o.Limiter == nil {
		return func() {}, nil
	}
	return h.o.Limiter.Acquire(ctx)
}

// acquireCRM admits one CRM request; done(out) frees the slot saying how
// the CRM call went (crmOutcome), which a FeedbackLimiter learns from.
// Call done right after the CRM call; later calls do nothing, so a
// deferred done(CRMAbandoned) is a safe backstop for the paths that never
// call.
func (h *Handler) acquireCRM(ctx context.Context) (func(CRMOutcome), error) {
	fl, ok := h.o.Limiter.(FeedbackLimiter)
	if !ok {
		release, err := h.acquire(ctx)
		if err != nil {
			return nil, err
		}
		release = sync.OnceFunc(release)
		return func(CRMOutcome) { release() }, nil
	}
	done, err := fl.AcquireFeedback(ctx)
	if err != nil {
		return nil, err
	}
	var once sync.Once
	return func(out CRMOutcome) { once.Do(func() { done(out) }) }, nil
}

// crmOutcome reads a CRM call's error as a load signal: a timeout and
// backpressure (HTTP 429) mean overload; what else judge finds transient
// or uncertain (connection failures, HTTP 502, 503, 504) is a failure that
// overload and a flaky proxy alike give, which the limiter judges by its
// share; a cancellation of ours means nothing; any other answer came back
// from a CRM that coped. So
// does an add's HTTP 500 or PHP error page: PHP ran the request and
// failed in it (a fatal error; its time limit counts CPU, not waiting), a
// fault that fewer requests in flight would not cure, and one that may
// follow a single lead (a poison lead) that otherwise cut everyone's
// limit on every retry. The circuit, not the limit, pauses a CRM whose
// every request fails so.
func crmOutcome(ctx context.Context, err error) CRMOutcome {
	switch {
	case err == nil:
		return CRMAnswered
	case errors.Is(err, context.Canceled) || ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded):
		return CRMAbandoned
	case errors.Is(err, context.DeadlineExceeded):
		return CRMOverloaded // the CRM did not answer within LEADRELAY_CRM_TIMEOUT
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return CRMOverloaded
	}
	f := judge(err)
	if f.reason.Code == delivery.CRMErrorPage && f.reason.HTTPStatus != http.StatusBadGateway {
		return CRMAnswered
	}
	switch f.out {
	case delivery.Backpressure:
		return CRMOverloaded
	case delivery.Transient, delivery.Uncertain:
		return CRMFailed
	}
	return CRMAnswered
}
