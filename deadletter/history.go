package deadletter

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// HistoryTTL is how long a requeued lead's attempts and errors are kept
// for the lead's next death. A lead that dies again within it shows every
// attempt since it arrived; one delivered meanwhile needs none.
const HistoryTTL = 30 * 24 * time.Hour

// history is what a requeue leaves behind of a record: its attempts and
// error history, which asynq forgets (a requeued task counts from 1).
type history struct {
	Attempts int            `json:"attempts"`
	Errors   []AttemptError `json:"errors"`
}

// keepHistory stores rec's attempts and errors before a requeue removes it.
func (s *Store) keepHistory(ctx context.Context, rec Record) error {
	b, err := json.Marshal(history{Attempts: rec.Attempts, Errors: rec.Errors})
	if err != nil {
		return err
	}
	if err := s.store.DeadKeepHistory(ctx, rec.LeadID, b, HistoryTTL); err != nil {
		return fmt.Errorf("deadletter: keep history of %s: %w", rec.LeadID, err)
	}
	return nil
}

// getHistory reads a requeued lead's history, decoded and as stored;
// none (nil) when it has none or it is unreadable.
func (s *Store) getHistory(ctx context.Context, id string) (*history, []byte, error) {
	b, err := s.store.DeadHistory(ctx, id)
	if err != nil || b == nil {
		return nil, nil, err
	}
	var h history
	if err := json.Unmarshal(b, &h); err != nil {
		// Unreadable history is not worth losing a death over; the
		// record that replaces it drops it.
		return nil, b, nil
	}
	return &h, b, nil
}

// withHistory folds a requeued lead's earlier life into a new death: its
// errors come first. The worker counts a lead's attempts across re-runs
// (its attempt record keeps them), so a new death that counts more than
// the history did already includes it; one that counts no more started
// afresh (a worker of the previous version, or an attempt record that
// expired), and its attempts add up, numbered after the history's.
func withHistory(h *history, r Record) Record {
	if h == nil {
		return r
	}
	errs := make([]AttemptError, 0, len(h.Errors)+len(r.Errors))
	errs = append(errs, h.Errors...)
	afresh := r.Attempts <= h.Attempts
	for _, e := range r.Errors {
		if afresh {
			e.Attempt += h.Attempts
		}
		errs = append(errs, e)
	}
	if afresh {
		r.Attempts += h.Attempts
	}
	r.Errors = errs
	return r
}
