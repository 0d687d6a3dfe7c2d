package worker

import (
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hibiken/asynq"

	"leadrelay/crmclient"
)

// jitter is the backoff's randomization factor: each delay lies within
// ±20% of the schedule, so leads failed together do not retry together.
const jitter = 0.2

// RetryDelay returns the asynq.RetryDelayFunc of the worker: exponential
// backoff from o.RetryInitial by o.RetryMultiplier with ±20% jitter, at
// least the CRM's Retry-After and a *DelayError's Delay, after an ambiguous
// add at least o.ReconcileAfter so the reconcile cannot race the earlier
// request, and never more than o.RetryMaxDelay. n is the number of
// counted retries so far.
func RetryDelay(o Options) asynq.RetryDelayFunc {
	o = o.withDefaults()
	return func(n int, err error, _ *asynq.Task) time.Duration {
		d := backoffDelay(o, n, jitter)
		if ra, ok := crmclient.RetryAfter(err); ok && ra > d {
			d = ra
		}
		if classify(err) == OutcomeAmbiguous {
			d = max(d, o.ReconcileAfter)
		}
		var de *DelayError
		if errors.As(err, &de) && de.Delay > d {
			d = de.Delay
		}
		return min(d, o.RetryMaxDelay)
	}
}

// backoffDelay is the n-th delay (n from 0) of the schedule. It builds a
// fresh ExponentialBackOff per call, so no state is shared between
// goroutines and the schedule depends on n alone (jitter aside).
func backoffDelay(o Options, n int, factor float64) time.Duration {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(o.RetryInitial),
		backoff.WithMultiplier(o.RetryMultiplier),
		backoff.WithMaxInterval(o.RetryMaxDelay),
		backoff.WithRandomizationFactor(factor),
		backoff.WithMaxElapsedTime(0),
	)
	// Once the interval reaches the cap, further steps change nothing:
	// skip them so a large n costs no more than the climb.
	iv := float64(o.RetryInitial)
	for i := 0; i < n && iv < float64(o.RetryMaxDelay) && o.RetryMultiplier > 1; i++ {
		b.NextBackOff()
		iv *= o.RetryMultiplier
	}
	return min(b.NextBackOff(), o.RetryMaxDelay)
}
