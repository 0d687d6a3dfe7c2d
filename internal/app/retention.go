package app

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"leadrelay/deadletter"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
	"leadrelay/metrics"
	"leadrelay/notify"
)

// sweepEvery is how often a worker process sweeps the dead leads: records
// missing from the dead-letter store, then (with LEADRELAY_DEAD_RETENTION)
// dead leads past their retention.
const sweepEvery = 5 * time.Minute

// archivePage is how many archived tasks the sweep reads per round trip.
const archivePage = 100

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

// deadSweep is the one maintenance loop over dead leads, and what it
// needs.
type deadSweep struct {
	store     *deadletter.Store
	attempts  *rdb.Store // the leads' attempt records: their last reason
	insp      *asynq.Inspector
	queue     string
	retention time.Duration // 0: keep dead leads forever
	met       *metrics.Metrics
	notify    notify.Notifier // told of every lead it records, as a dead lead; nil: nobody
	log       *zap.Logger
	// between, in tests, runs between the sweep's read of a lead (its
	// task archived, no record) and its write: an erasure or a re-run
	// landing there. Nil in a relay.
	between func(ctx context.Context, id string)
}

// recordArchived gives every lead task in asynq's archive that has no
// dead-letter record one, and returns how many it recorded. Such a task
// is a lead whose dead-letter write failed as it died (Redis was down: the
// worker could not write, and asynq kept retrying its own archive move
// until Redis came back). Its reason is the last one its attempt record
// holds, else delivery.RecordedLate. It reads the archive a page at a
// time; a record is a function of the archived task and the attempt
// record alone (dead at the task's last failure), so several processes
// sweeping at once write the same record, which Put merges into one.
func (s deadSweep) recordArchived(ctx context.Context) (int, error) {
	n := 0
	for page := 1; ; page++ {
		tasks, err := s.insp.ListArchivedTasks(s.queue, asynq.Page(page), asynq.PageSize(archivePage))
		if errors.Is(err, asynq.ErrQueueNotFound) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		byID := make(map[string]*asynq.TaskInfo, len(tasks))
		ids := make([]string, 0, len(tasks))
		for _, t := range tasks {
			if t.Type == lead.TaskType {
				byID[t.ID] = t
				ids = append(ids, t.ID)
			}
		}
		missing, err := s.store.Missing(ctx, ids)
		if err != nil {
			return n, err
		}
		for _, id := range missing {
			kept, err := s.record(ctx, byID[id])
			if err != nil {
				return n, err
			}
			if kept {
				n++
			}
		}
		if len(tasks) < archivePage {
			return n, nil
		}
	}
}

// record writes the dead-letter record of an archived task that has none,
// and keeps it only while the task is still archived (PutWhile): an
// erasure or a re-run since the sweep's read leaves no record behind.
func (s deadSweep) record(ctx context.Context, t *asynq.TaskInfo) (bool, error) {
	a, err := s.attempts.ReadAttempt(ctx, t.ID)
	if err != nil {
		return false, err
	}
	reason := delivery.Reason{Code: delivery.RecordedLate}
	if a.Reason.Code != "" {
		reason = delivery.DeathReason(a.Reason.Outcome(), a.Reason)
	}
	attempt := max(a.Runs, 1)
	at := t.LastFailedAt.UTC()
	if at.IsZero() {
		at = time.Now().UTC()
	}
	env, _ := lead.ReadEnvelope(t.Payload) // a payload that is no lead still gets its record
	var payload []byte
	if env.ID != "" {
		payload = t.Payload
	}
	if s.between != nil {
		s.between(ctx, t.ID)
	}
	kept, err := s.store.PutWhile(ctx, deadletter.Record{
		LeadID: t.ID, Site: env.Site, Queue: s.queue, Reason: reason, Attempts: attempt,
		DeadAt: at, ReceivedAt: env.ReceivedAt, Payload: payload,
		Errors: []deadletter.AttemptError{{At: at, Attempt: attempt, Class: reason.Outcome().String(), Reason: reason}},
	}, func(ctx context.Context) (bool, error) { return s.archived(ctx, t.ID) })
	if err != nil || !kept {
		return false, err
	}
	s.met.DeadRecordedLate(1)
	if s.notify != nil {
		// As a lead the worker recorded: the operators hear of it once it
		// is recorded, late (two workers sweeping at once may both tell).
		s.notify.Notify(notify.Event{Kind: notify.LeadDead, Site: env.Site, LeadID: t.ID, Reason: reason})
	}
	s.log.Warn("dead lead found in asynq's archive with no dead-letter record; recorded it after the fact",
		zap.String("lead_id", t.ID), zap.String("reason_code", string(reason.Code)))
	return true, nil
}

// archived reports whether lead task id is in asynq's archive still.
func (s deadSweep) archived(ctx context.Context, id string) (bool, error) {
	info, err := s.insp.GetTaskInfo(s.queue, id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return info.State == asynq.TaskStateArchived, nil
}

// once runs one sweep: missing records first, so a lead past its
// retention is deleted from both places, then the retention.
func (s deadSweep) once(ctx context.Context) {
	n, err := s.recordArchived(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("dead-letter sweep: reading asynq's archive failed; trying again later", zap.Error(err), zap.Int("recorded", n))
	}
	if s.retention <= 0 {
		return
	}
	n, err = pruneDead(ctx, s.store, s.insp, s.queue, time.Now().Add(-s.retention))
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("dead-letter retention: delete failed; trying again later", zap.Error(err))
	case n > 0:
		s.log.Info("dead-letter retention: deleted dead leads past LEADRELAY_DEAD_RETENTION", zap.Int("count", n), zap.Duration("retention", s.retention))
	}
}

// every runs f now and every d until ctx is done: a worker's sweeps, the
// durability watch.
func every(ctx context.Context, d time.Duration, f func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		f(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
