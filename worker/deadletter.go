package worker

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/hibiken/asynq"

	"go.uber.org/zap"

	"leadrelay/lead"
)

// DeadLetters keeps dead leads where asynq's archive cannot trim them
// (it drops the oldest beyond 10,000 tasks or 90 days); the deadletter
// package's store, adapted in internal/app, is the one the binary uses.
// Options.DeadLetters nil leaves asynq's archive as the only dead-letter
// queue.
type DeadLetters interface {
	// Put records a dead lead with the reason it cannot be delivered.
	Put(ctx context.Context, p lead.Payload, reason string) error
	// Forget drops a lead's record once it is delivered after all (an
	// operator re-ran it from the UI). Unknown ids are a no-op.
	Forget(ctx context.Context, leadID string) error
}

// forgetDead drops a delivered lead from the DeadLetters store, if
// configured. A failure leaves a stale record that ctl shows as delivered.
func (h *Handler) forgetDead(ctx context.Context, p lead.Payload, log *zap.Logger) {
	if h.o.DeadLetters == nil {
		return
	}
	if err := h.o.DeadLetters.Forget(ctx, p.ID); err != nil {
		log.Warn("delivered lead not removed from the dead-letter store", zap.Error(err))
	}
}

// lastAttempt reports whether a counted failure now ends the lead's retries,
// so asynq archives it.
func lastAttempt(ctx context.Context) bool {
	n, ok1 := asynq.GetRetryCount(ctx)
	max, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && n >= max
}

// keepDead hands a dead lead to the DeadLetters store, if configured.
func (h *Handler) keepDead(ctx context.Context, p lead.Payload, reason string, log *zap.Logger) {
	if h.o.DeadLetters == nil {
		return
	}
	if err := h.o.DeadLetters.Put(ctx, p, reason); err != nil {
		log.Error("dead lead not kept in the dead-letter store; asynq's archive still holds it", zap.Error(err))
	}
	// Flag the attempt record, which begin reads anyway, so only a delivery
	// of a once-dead lead pays for forgetting it.
	_, err := h.rdb.TxPipelined(context.WithoutCancel(ctx), func(pl redis.Pipeliner) error {
		pl.HSet(ctx, attemptKey(p.ID), "dead", "1")
		pl.PExpire(ctx, attemptKey(p.ID), h.o.DeliveredTTL)
		return nil
	})
	if err != nil {
		log.Warn("dead flag not recorded; a later delivery may leave a stale dead-letter record", zap.Error(err))
	}
}
