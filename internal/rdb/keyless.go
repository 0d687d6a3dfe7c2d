package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

var keylessScript = load("keyless")

// Keyless is the identity of a lead site sent without an idempotency key,
// whose content is named name (lead.IDKey.Keyless): fresh, which then
// lasts window from this first submission, or the one a submission of the
// same content within the window opened, whose repeat is counted (repeats
// > 0 then: how many so far).
func (s *Store) Keyless(ctx context.Context, site, name, fresh string, window time.Duration) (id string, repeats int, err error) {
	v, err := keylessScript.Run(ctx, s.c, []string{KeylessKey(site, name)}, fresh, window.Milliseconds()).Slice()
	if err != nil {
		return "", 0, err
	}
	if len(v) != 2 {
		return "", 0, fmt.Errorf("rdb: keyless: unexpected answer %v", v)
	}
	id, _ = v[0].(string)
	n, _ := v[1].(int64)
	return id, int(n), nil
}

// Known reads what Redis holds of lead id: its task's payload in queue
// (nil when asynq holds no task) and its delivered marker (nil when none),
// in one round trip.
func (s *Store) Known(ctx context.Context, queue, id string) (payload []byte, m *Marker, err error) {
	var msg *redis.StringCmd
	var mk, legacy *redis.StringCmd
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		msg = p.HGet(ctx, AsynqTaskKey(queue, id), "msg")
		mk = p.Get(ctx, DeliveredKey(id))
		if !s.cluster {
			legacy = p.Get(ctx, LegacyDeliveredKey(id))
		}
		return nil
	})
	if err = nilErr(err); err != nil {
		return nil, nil, err
	}
	if raw, err := msg.Bytes(); err == nil {
		if payload, err = taskPayload(raw); err != nil {
			return nil, nil, fmt.Errorf("task %s: %w", id, err)
		}
	}
	raw, gerr := mk.Result()
	if errors.Is(gerr, redis.Nil) && legacy != nil {
		raw, gerr = legacy.Result()
	}
	if gerr != nil {
		return payload, nil, nil
	}
	m, err = parseMarkerOf(id, raw)
	return payload, m, err
}

// CountKeylessRepeat counts a keyless repeat of lead id of site on day
// (UTC), for operators: per site and day (ctl queues) and per lead, kept
// for keep (its status: ctl lead status, the ops page).
func (s *Store) CountKeylessRepeat(ctx context.Context, site, id string, day time.Time, keep time.Duration) error {
	key := KeylessRepeatsKey(day.UTC().Format("2006-01-02"))
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HIncrBy(ctx, key, site, 1)
		p.Expire(ctx, key, dayCounterTTL)
		p.Incr(ctx, RepeatsKey(id))
		p.PExpire(ctx, RepeatsKey(id), keep)
		return nil
	})
	return err
}

// Repeats is how many keyless repeats of lead id were counted (0: none,
// or no longer kept).
func (s *Store) Repeats(ctx context.Context, id string) (int, error) {
	n, err := s.c.Get(ctx, RepeatsKey(id)).Int()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}

// KeylessRepeatsOn is every site's keyless repeats on day (UTC).
func (s *Store) KeylessRepeatsOn(ctx context.Context, day time.Time) (map[string]int64, error) {
	m, err := s.c.HGetAll(ctx, KeylessRepeatsKey(day.UTC().Format("2006-01-02"))).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(m))
	for site, v := range m {
		n, _ := strconv.ParseInt(v, 10, 64)
		out[site] = n
	}
	return out, nil
}
