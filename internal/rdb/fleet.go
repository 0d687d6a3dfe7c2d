package rdb

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// WorkersKey lists the worker processes of this version (hash "host:pid"
// → expiry ms), so a worker can tell whether processes of the previous
// version serve the same queue: asynq lists every server, and one it
// lists that is not here is an older worker.
const WorkersKey = Prefix + "{fleet}:workers"

// RegisterWorker records this worker process ("host:pid", as asynq names
// its servers) for ttl, and drops entries that expired.
func (s *Store) RegisterWorker(ctx context.Context, self string, now time.Time, ttl time.Duration) error {
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, WorkersKey, self, ms(now.Add(ttl)))
		p.Expire(ctx, WorkersKey, 10*ttl)
		return nil
	})
	if err != nil {
		return err
	}
	all, err := s.c.HGetAll(ctx, WorkersKey).Result()
	if err != nil {
		return err
	}
	var stale []string
	for k, v := range all {
		if exp, _ := strconv.ParseInt(v, 10, 64); exp < ms(now) {
			stale = append(stale, k)
		}
	}
	if len(stale) > 0 {
		return s.c.HDel(ctx, WorkersKey, stale...).Err()
	}
	return nil
}

// Workers returns the live worker processes of this version ("host:pid").
func (s *Store) Workers(ctx context.Context, now time.Time) (map[string]bool, error) {
	all, err := s.c.HGetAll(ctx, WorkersKey).Result()
	if err != nil {
		return nil, err
	}
	live := make(map[string]bool, len(all))
	for k, v := range all {
		if exp, _ := strconv.ParseInt(v, 10, 64); exp >= ms(now) {
			live[k] = true
		}
	}
	return live, nil
}
