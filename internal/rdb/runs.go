package rdb

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"leadrelay/delivery"
)

// Failed records a failed run in the lead's attempt record: its reason
// (the last failure's, which a status shows), and one more run when it
// spent an attempt or ended the lead. It answers the runs counted so far.
// One MULTI on the lead's own key.
func (s *Store) Failed(ctx context.Context, id string, r delivery.Reason, spent bool, ttl time.Duration) (int, error) {
	key := AttemptKey(id)
	n := int64(0)
	if spent {
		n = 1
	}
	var runs *redis.IntCmd
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "reason", r.Encode())
		runs = p.HIncrBy(ctx, key, "runs", n)
		p.PExpire(ctx, key, ttl)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int(runs.Val()), nil
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
