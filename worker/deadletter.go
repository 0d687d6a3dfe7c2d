package worker

import (
	"context"

	"go.uber.org/zap"

	"leadrelay/lead"
)

// DeadLetters keeps dead leads where asynq's archive cannot trim them
// (it drops the oldest beyond 10,000 tasks or 90 days). Issue 4, item 6: a
// Redis store under leadrelay:dead:* belongs here. Options.DeadLetters nil
// leaves asynq's archive as the only dead-letter queue.
type DeadLetters interface {
	// Put records a dead lead with the reason it cannot be delivered.
	Put(ctx context.Context, p lead.Payload, reason string) error
}

// keepDead hands a dead lead to the DeadLetters store, if configured.
func (h *Handler) keepDead(ctx context.Context, p lead.Payload, reason string, log *zap.Logger) {
	if h.o.DeadLetters == nil {
		return
	}
	if err := h.o.DeadLetters.Put(ctx, p, reason); err != nil {
		log.Error("dead lead not kept in the dead-letter store; asynq's archive still holds it", zap.Error(err))
	}
}
