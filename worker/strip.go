package worker

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

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

// strips are the tasks a worker delivered and has not rewritten yet.
type strips struct {
	mu  sync.Mutex
	ids map[string]*strip
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
	if id != "" && len(s.ids) < stripMax {
		s.ids[id] = &strip{sent: sent}
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
