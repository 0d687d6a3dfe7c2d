package app

import (
	"context"
	"time"

	"go.uber.org/zap"

	"leadrelay/metrics"
	"leadrelay/worker"
)

// stripSweepEvery is how often a worker process sweeps asynq's completed
// set for delivered leads' tasks that still hold their fields (issue 18):
// a minute, so a worker killed before its own strip leaves a lead's
// fields in Redis for about two minutes, not for LEADRELAY_DEDUP_TTL. A
// sweep with nothing new to read is three round trips (the cursor, the completed set, the cursor moved).
const stripSweepEvery = time.Minute

// stripSweep is the maintenance loop that strips what the workers' own
// strip missed (worker.Handler.SweepCompleted), and what it needs.
type stripSweep struct {
	h         *worker.Handler
	retention time.Duration // LEADRELAY_DEDUP_TTL: the completed tasks' retention
	met       *metrics.Metrics
	log       *zap.Logger
	// now is the clock asynq scored the completed tasks with, its
	// processes' wall clock; nil: time.Now. Tests move it on.
	now func() time.Time
}

// once runs one sweep and returns how many tasks it stripped.
func (s stripSweep) once(ctx context.Context) int {
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	n, err := s.h.SweepCompleted(ctx, worker.SweepArgs{Now: now(), Retention: s.retention})
	s.met.StrippedLate(n)
	if n > 0 {
		s.log.Info("strip sweep: reduced delivered leads' completed tasks to their envelopes (their worker stopped before its own strip)",
			zap.Int("count", n))
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("strip sweep: reading or rewriting asynq's completed tasks failed; trying again later", zap.Error(err), zap.Int("stripped", n))
	}
	return n
}
