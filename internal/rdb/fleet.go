package rdb

import (
	"context"
	"strconv"
	"time"
)

var registerWorkerScript = load("register_worker")

// RegisterWorker records this worker process ("host:pid", as asynq names
// its servers) for ttl, and drops entries that expired: one round trip.
// sealer also lists it as a worker that opens sealed payloads.
func (s *Store) RegisterWorker(ctx context.Context, self string, sealer bool, now time.Time, ttl time.Duration) error {
	keys := []string{WorkersKey}
	if sealer {
		keys = append(keys, SealersKey)
	}
	return registerWorkerScript.Run(ctx, s.c, keys, self, ms(now.Add(ttl)), (10 * ttl).Milliseconds(), ms(now)).Err()
}

// Workers returns the live worker processes of this version ("host:pid").
func (s *Store) Workers(ctx context.Context, now time.Time) (map[string]bool, error) {
	return s.registry(ctx, WorkersKey, now)
}

// Sealers returns the live worker processes that open sealed payloads
// ("host:pid").
func (s *Store) Sealers(ctx context.Context, now time.Time) (map[string]bool, error) {
	return s.registry(ctx, SealersKey, now)
}

func (s *Store) registry(ctx context.Context, key string, now time.Time) (map[string]bool, error) {
	all, err := s.c.HGetAll(ctx, key).Result()
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
