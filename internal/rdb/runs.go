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
	n, err := s.eval(ctx, failedScript, []string{AttemptKey(id), LockKey(id), DeliveredKey(id)},
		token, r.Encode(), boolArg(spent), ttl.Milliseconds()).Int64()
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
