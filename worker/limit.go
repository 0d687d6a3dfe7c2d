package worker

import "context"

// Limiter protects the CRM: a request rate and a cap on requests in flight,
// shared by all workers; NewRedisLimiter is the Redis-based one.
// Options.Limiter nil means no limit.
type Limiter interface {
	// Acquire admits one CRM request. A refusal should be a *DelayError
	// saying when to come back, so no attempt is spent. release frees the
	// slot after the request and must be called exactly once.
	Acquire(ctx context.Context) (release func(), err error)
}

// acquire admits one CRM request through the configured Limiter, if any.
func (h *Handler) acquire(ctx context.Context) (func(), error) {
	if h.o.Limiter == nil {
		return func() {}, nil
	}
	return h.o.Limiter.Acquire(ctx)
}
