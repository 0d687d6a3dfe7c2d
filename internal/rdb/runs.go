package rdb

import (
	"context"
	"strconv"
	"time"

	"leadrelay/delivery"
)

var failedScript = load("failed")

// Failed records a failed run of token in the lead's attempt record: its
// reason (the last failure's, which a status shows), and one more run
// when it spent an attempt or ended the lead. It answers the runs counted
// so far; nothing is written, and it answers Fenced, when the run no
// longer holds the lead or the lead is delivered. One script on the
// lead's keys.
func (s *Store) Failed(ctx context.Context, id, token string, r delivery.Reason, spent bool, ttl time.Duration) (int, Fence, error) {
	return s.FailedRun(ctx, id, token, r, spent, ttl, nil)
}

// FailedRun is Failed that also puts run on the lead's timeline, in the
// same script, as RecordRun would (written even when fenced); nil writes
// no entry.
func (s *Store) FailedRun(ctx context.Context, id, token string, r delivery.Reason, spent bool, ttl time.Duration, run *delivery.Run) (int, Fence, error) {
	var entry []byte
	fold := ""
	if run != nil {
		var err error
		if entry, fold, err = runEntryOf(*run); err != nil {
			return 0, Owned, err
		}
	}
	n, err := s.eval(ctx, failedScript, []string{AttemptKey(id), LockKey(id), DeliveredKey(id), TimelineKey(id)},
		token, r.Encode(), boolArg(spent), ttl.Milliseconds(), entry, fold, TimelineCap).Int64()
	if err != nil {
		return 0, Owned, err
	}
	if n < 0 {
		return 0, Fenced, nil
	}
	return int(n), Owned, nil
}

// ReadAttempt reads a lead's attempt record; the zero Attempt when it has
// none.
func (s *Store) ReadAttempt(ctx context.Context, id string) (Attempt, error) {
	f, err := s.c.HGetAll(ctx, AttemptKey(id)).Result()
	if err != nil {
		return Attempt{}, err
	}
	a := parseAttempt([]string{f["state"], f["first_at"], f["sent_at"], f["settle_at"], f["sends"], f["dead"], f["w"]})
	a.Runs, _ = strconv.Atoi(f["runs"])
	a.Reason = delivery.ParseReason(f["reason"])
	return a, nil
}
