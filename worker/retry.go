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

// RetryDelay returns the asynq.RetryDelayFunc of the worker. A
// *DelayError (backpressure, a pause, a busy lock) waits its own Delay and
// nothing more: a refusal that asks for 200ms must not wait the backoff's
// 10s (the limiter jitters its own delays). A counted failure waits the exponential backoff from
// o.RetryInitial by o.RetryMultiplier with ±20% jitter, at least the CRM's
// Retry-After, and after an add whose request may still be in flight at
// least o.ReconcileAfter, so the look-up cannot race it. Nothing waits
// more than o.RetryMaxDelay. n is the number of counted retries so far.
func RetryDelay(o Options) asynq.RetryDelayFunc {
	o = o.withDefaults()
	return func(n int, err error, _ *asynq.Task) time.Duration {
		var de *DelayError
		if errors.As(err, &de) {
			return min(max(de.Delay, minDelay), o.RetryMaxDelay)
		}
		d := backoffDelay(o, n, jitter)
		if ra, ok := crmclient.RetryAfter(err); ok && ra > d {
			d = ra
		}
		if judge(err).class == crmclient.ClassAmbiguous {
			d = max(d, o.ReconcileAfter)
		}
		return min(d, o.RetryMaxDelay)
	}
}

// minDelay is the least wait RetryDelay gives a *DelayError.
const minDelay = 10 * time.Millisecond

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
