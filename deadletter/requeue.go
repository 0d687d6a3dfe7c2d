package deadletter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// RequeueResult says what Requeue did with each lead id it was given.
// Every id is in exactly one list.
type RequeueResult struct {
	// Rerun are leads whose archived asynq task was still there and was
	// moved back to pending (Inspector.RunTask).
	Rerun []string `json:"rerun"`
	// Enqueued are leads whose task asynq had trimmed away; a new task was
	// built from the stored payload.
	Enqueued []string `json:"enqueued"`
	// Skipped are leads whose task is live (pending, scheduled, retrying,
	// active) or completed: requeueing them could deliver twice. Their
	// records stay.
	Skipped []Skip `json:"skipped"`
	// NotFound are ids the store does not hold.
	NotFound []string `json:"not_found"`
	// Failed are leads asynq refused or whose stored payload is unusable.
	// Their records stay.
	Failed []Failure `json:"failed"`
}

// Requeued returns how many leads are on their way again.
func (r RequeueResult) Requeued() int { return len(r.Rerun) + len(r.Enqueued) }

// Skip is a lead Requeue left alone, with the state of its asynq task.
type Skip struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// Failure is a lead Requeue could not hand back, with why.
type Failure struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// Requeue hands dead leads back to the queue: an archived task still held by
// asynq runs again; a task asynq trimmed is enqueued afresh from the stored
// payload (with Options.MaxRetry and Retention, through lead.TaskOptions). A lead handed back leaves
// the store; the worker puts it back if it dies again. progress, if not
// nil, is called after each id with the count done and the total.
//
// Per-lead problems land in the result; the error is for a store that
// cannot be read or a done ctx, with the result so far.
func (s *Store) Requeue(ctx context.Context, ids []string, progress func(done, total int)) (RequeueResult, error) {
	// Empty lists, never null, in JSON answers.
	res := RequeueResult{Rerun: []string{}, Enqueued: []string{}, Skipped: []Skip{}, NotFound: []string{}, Failed: []Failure{}}
	queues := map[string]bool{}
	// Idle workers take the leads now, not at their next look; a lost
	// wake only delays them.
	defer func() {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		for q := range queues {
			_ = rdb.New(s.rdb).Wake(wctx, q)
		}
	}()
	for i, id := range ids {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if err := s.requeueOne(ctx, id, &res, queues); err != nil {
			return res, err
		}
		if progress != nil {
			progress(i+1, len(ids))
		}
	}
	return res, nil
}

// requeueOne hands back one lead, adding its queue to queues when it did.
func (s *Store) requeueOne(ctx context.Context, id string, res *RequeueResult, queues map[string]bool) error {
	rec, err := s.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		res.NotFound = append(res.NotFound, id)
		return nil
	}
	if err != nil {
		return fmt.Errorf("deadletter: requeue: %w", err)
	}
	queue := rec.Queue
	if queue == "" {
		queue = lead.DefaultQueue
	}
	fail := func(err error) {
		res.Failed = append(res.Failed, Failure{ID: id, Error: err.Error()})
	}
	info, err := s.insp.GetTaskInfo(queue, id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		p, err := s.o.Codec.Decode(rec.Payload)
		if err != nil {
			fail(fmt.Errorf("stored payload: %w", err))
			return nil
		}
		task, err := s.o.Codec.NewTask(p)
		if err != nil {
			fail(err)
			return nil
		}
		budget := s.o.MaxRetry
		if budget <= 0 {
			budget = defaultBudget
		}
		_, err = s.cli.EnqueueContext(ctx, task, lead.TaskOptions(queue, budget, s.o.Retention)...)
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			// Someone enqueued it between our look and now: it is live.
			res.Skipped = append(res.Skipped, Skip{ID: id, State: "enqueued meanwhile"})
			return nil
		}
		if err != nil {
			fail(err)
			return nil
		}
		res.Enqueued = append(res.Enqueued, id)
	case err != nil:
		fail(err)
		return nil
	case info.State == asynq.TaskStateArchived:
		if err := s.insp.RunTask(queue, id); err != nil {
			fail(err)
			return nil
		}
		res.Rerun = append(res.Rerun, id)
	default:
		res.Skipped = append(res.Skipped, Skip{ID: id, State: info.State.String()})
		return nil
	}
	queues[queue] = true
	if rec.Site != "" {
		// Undelivered again: it counts in its site's backlog until the
		// worker finishes it (or it dies again).
		if err := rdb.New(s.rdb).Count(ctx, queue, rec.Site); err != nil {
			return fmt.Errorf("deadletter: requeue %s: queued, but not counted in its site's backlog: %w", id, err)
		}
	}
	if err := s.keepHistory(ctx, rec); err != nil {
		return fmt.Errorf("deadletter: requeue %s: queued, but its history is lost: %w", id, err)
	}
	if _, err := s.Delete(ctx, id); err != nil {
		// The lead is queued; a stale record is harmless (a later requeue
		// skips it as live) and the worker overwrites it if it dies again.
		return fmt.Errorf("deadletter: requeue %s: queued, but the record stays: %w", id, err)
	}
	return nil
}

// PurgeResult counts what Purge deleted.
type PurgeResult struct {
	// Records is the number of dead-lead records deleted from the store.
	Records int `json:"records"`
	// Tasks is the number of archived asynq tasks deleted with them.
	Tasks int `json:"tasks"`
}

// Purge deletes the dead leads f selects for good: their records and their
// archived asynq tasks, if asynq still holds them. Tasks in any other state
// are left alone.
func (s *Store) Purge(ctx context.Context, f Filter) (PurgeResult, error) {
	var res PurgeResult
	ids, _, err := s.IDs(ctx, f)
	if err != nil {
		return res, err
	}
	for chunk := range slices.Chunk(ids, 500) {
		recs, err := s.getMany(ctx, chunk)
		if err != nil {
			return res, err
		}
		for _, r := range recs {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			q := r.Queue
			if q == "" {
				q = lead.DefaultQueue
			}
			info, err := s.insp.GetTaskInfo(q, r.LeadID)
			if err != nil || info.State != asynq.TaskStateArchived {
				continue
			}
			if err := s.insp.DeleteTask(q, r.LeadID); err == nil {
				res.Tasks++
			}
		}
		n, err := s.Delete(ctx, chunk...)
		res.Records += n
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// defaultBudget is the retry budget of a requeued lead when Options gives
// none: asynq's own default.
const defaultBudget = 25
