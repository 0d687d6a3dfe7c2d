package app

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"leadrelay/deadletter"
)

// retentionEvery is how often a worker process deletes dead leads past
// LEADRELAY_DEAD_RETENTION.
const retentionEvery = time.Hour

// pruneDead deletes the dead leads that died before cutoff: their records
// in the dead-letter store and their archived asynq tasks, both of which
// hold the lead's personal data. It returns how many records it deleted.
// Several workers may run it at once; deleting twice is harmless.
func pruneDead(ctx context.Context, store *deadletter.Store, insp *asynq.Inspector, queue string, cutoff time.Time) (int, error) {
	ids, _, err := store.IDs(ctx, deadletter.Filter{Before: cutoff})
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	for _, id := range ids {
		if err := insp.DeleteTask(queue, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
			return 0, err
		}
	}
	return store.Delete(ctx, ids...)
}

// keepDeadFor runs pruneDead now and every retentionEvery until ctx is
// done, logging what it deleted (counts, never lead data).
func keepDeadFor(ctx context.Context, retention time.Duration, store *deadletter.Store, insp *asynq.Inspector, queue string, log *zap.Logger) {
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	for {
		n, err := pruneDead(ctx, store, insp, queue, time.Now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("dead-letter retention: delete failed; trying again later", zap.Error(err))
		case n > 0:
			log.Info("dead-letter retention: deleted dead leads past LEADRELAY_DEAD_RETENTION", zap.Int("count", n), zap.Duration("retention", retention))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
