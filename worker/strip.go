package worker

import (
	"cmp"
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// Nothing personal kept after delivery (issue 18). asynq keeps a
// delivered task for its retention (LEADRELAY_DEDUP_TTL) with its whole
// payload, and writes that payload back itself when it marks the task
// completed, after the handler returned. So a worker remembers the tasks
// it delivered and, once asynq has marked them completed, rewrites each
// one's payload to its envelope alone (lead.Strip: id, site, digest,
// received_at), which status, ctl and asynqmon read. What stays of a
// delivered lead holds none of its fields.
//
// What this process does not strip (it died between asynq's completion
// and its strip, gave a task up after stripTries, or had stripMax waiting)
// the sweep strips later: SweepCompleted, which every worker process runs
// every minute (internal/app/strip.go), reads asynq's completed set by the
// second each task's retention ends, from where the fleet's sweeps last
// reached (rdb.Store.StripCursor), and strips what still holds its
// fields. Stripping twice is harmless: the rewrite is compare and set, and
// an envelope is left as it is.

// stripEvery is how often the tasks delivered since are rewritten: those
// of one interval share two pipelined round trips.
const stripEvery = 250 * time.Millisecond

// stripTries is how many intervals a delivered task may stay active
// before the worker gives it up (asynq never marked it completed: this
// process is stopping, or lost its lease); erasure reaches it still.
const stripTries = 120

// stripMax bounds the tasks waiting to be rewritten (a Redis that does
// not answer must not grow the worker's memory without end).
const stripMax = 100_000

// stripFullWarnEvery spaces the warnings that stripMax tasks wait.
const stripFullWarnEvery = 10 * time.Minute

// strips are the tasks a worker delivered and has not rewritten yet.
type strips struct {
	mu  sync.Mutex
	ids map[string]*strip
	// warned is when the last stripMax warning was logged; dropped counts
	// the tasks left to the sweep since.
	warned  time.Time
	dropped int
}

// strip is a delivered task waiting: its lead's content hash as sent
// (which the envelope keeps for the CRM audit) and the intervals waited.
type strip struct {
	sent  string
	tries int
}

// stripLater remembers that task id was delivered, its lead sent as sent.
func (h *Handler) stripLater(id, sent string) {
	s := &h.strips
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]*strip{}
	}
	switch {
	case id == "":
	case len(s.ids) < stripMax:
		s.ids[id] = &strip{sent: sent}
	default:
		s.dropped++
		if now := time.Now(); now.Sub(s.warned) >= stripFullWarnEvery {
			h.log.Warn("delivered leads' tasks waiting to be reduced to their envelopes reached the bound; the strip sweep reduces the others later (within LEADRELAY_DEDUP_TTL, usually minutes)",
				zap.Int("waiting", len(s.ids)), zap.Int("left_to_sweep", s.dropped))
			s.warned, s.dropped = now, 0
		}
	}
}

// stripDelivered rewrites the delivered tasks asynq has marked completed
// to their envelopes, and keeps those still active for the next turn.
func (h *Handler) stripDelivered(ctx context.Context) {
	s := &h.strips
	s.mu.Lock()
	ids := make([]string, 0, len(s.ids))
	sent := make(map[string]string, len(s.ids))
	for id, st := range s.ids {
		ids = append(ids, id)
		sent[id] = st.sent
	}
	s.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, bookkeepingTimeout)
	defer cancel()
	active, _, err := h.store.ChangeCompleted(sctx, h.o.Queue, ids, func(b []byte) ([]byte, bool, error) {
		env, err := lead.ReadEnvelope(b)
		if err != nil {
			return nil, false, err
		}
		return lead.Strip(b, sent[env.ID])
	})
	if err != nil && ctx.Err() == nil {
		h.log.Warn("delivered leads' tasks not reduced to their envelopes yet", zap.Int("tasks", len(ids)), zap.Error(err))
	}
	again := map[string]bool{}
	for _, id := range active {
		again[id] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if st := s.ids[id]; st != nil && (again[id] || err != nil) && st.tries < stripTries {
			st.tries++
			continue
		}
		delete(s.ids, id)
	}
}

// Sweep defaults: a sweep reads at most sweepPages pages of sweepPage
// completed tasks (two pipelined round trips each to strip them); one
// that reaches the bound goes on from there the next time.
const (
	sweepPage  = 500
	sweepPages = 20
)

// sweepSettle is how recently completed tasks the sweep leaves to the
// worker that delivered them (its strip runs every stripEvery), which is
// also more than the clocks of the fleet's hosts may differ: a task
// completing after a sweep read its second would otherwise be passed.
const sweepSettle = time.Minute

// SweepArgs are the inputs of SweepCompleted.
type SweepArgs struct {
	// Now is the clock asynq scores completed tasks with: the wall clock
	// of the process that completed them (time.Now).
	Now time.Time
	// Retention is how long asynq keeps a completed lead task
	// (LEADRELAY_DEDUP_TTL, lead.TaskOptions).
	Retention time.Duration
	// Page is how many completed tasks one round trip reads (0:
	// sweepPage); Pages bounds the pages of one sweep (0: sweepPages).
	Page, Pages int
}

// SweepCompleted reduces to their envelopes the completed lead tasks of
// the queue that still hold their fields, of those completed since the
// fleet's sweeps last reached and at least sweepSettle ago, a page at a
// time, and returns how many it reduced. With no cursor (the first sweep,
// or none for the retention) it starts from every task not expired.
// Several workers may sweep at once: each rewrite is compare and set, so a
// task is counted by one of them, and the cursor keeps the furthest.
func (h *Handler) SweepCompleted(ctx context.Context, a SweepArgs) (int, error) {
	page, pages := cmp.Or(a.Page, sweepPage), cmp.Or(a.Pages, sweepPages)
	limit, to := a.Now.Add(a.Retention).Unix(), a.Now.Add(a.Retention-sweepSettle).Unix()
	at := rdb.StripCursor{At: a.Now.Unix()}
	c, ok, err := h.store.StripCursor(ctx, h.o.Queue)
	if err != nil {
		return 0, err
	}
	if ok && c.At >= at.At && c.At <= limit {
		at = c
	}
	if at.At > to {
		return 0, nil // nothing completed long enough ago since the last sweep
	}
	stripped := 0
	for range pages {
		tasks, err := h.store.CompletedPage(ctx, h.o.Queue, at.At, to, at.Skip, page)
		if err != nil {
			return stripped, err
		}
		n, err := h.stripCompleted(ctx, tasks)
		stripped += n
		if err != nil {
			return stripped, err
		}
		if len(tasks) < page {
			at = rdb.StripCursor{At: to}
			break
		}
		// The next page starts at this one's last second, past the tasks
		// of that second read already (many may end in one second).
		last, ties := tasks[len(tasks)-1].Ends, 0
		for i := len(tasks) - 1; i >= 0 && tasks[i].Ends == last; i-- {
			ties++
		}
		if last == at.At {
			at.Skip += ties
		} else {
			at = rdb.StripCursor{At: last, Skip: ties}
		}
	}
	_, err = h.store.MoveStripCursor(ctx, h.o.Queue, at, limit)
	return stripped, err
}

// stripCompleted reduces those of tasks that still hold their lead's
// fields to their envelopes, and returns how many it reduced.
func (h *Handler) stripCompleted(ctx context.Context, tasks []rdb.Completed) (int, error) {
	if len(tasks) == 0 {
		return 0, nil
	}
	ids := make([]string, len(tasks))
	for i, t := range tasks {
		ids[i] = t.ID
	}
	sctx, cancel := context.WithTimeout(ctx, bookkeepingTimeout)
	defer cancel()
	_, n, err := h.store.ChangeCompleted(sctx, h.o.Queue, ids, h.stripPayload)
	return n, err
}

// stripPayload is the payload b reduced to its envelope, with the content
// hash as sent that the delivering worker would have kept (computed again
// from the lead); a payload that is no lead's, or is one already, stays.
// A lead this worker cannot open (sealed under a key it lacks) loses its
// fields all the same, and its envelope keeps no hash, which the CRM audit
// allows.
func (h *Handler) stripPayload(b []byte) ([]byte, bool, error) {
	env, err := lead.ReadEnvelope(b)
	if err != nil || env.Bare {
		return nil, false, nil
	}
	sent := ""
	if p, err := h.o.Codec.Decode(b); err == nil {
		sent = h.o.IDKey.SentSum(h.api.SentHash(p))
	}
	return lead.Strip(b, sent)
}
