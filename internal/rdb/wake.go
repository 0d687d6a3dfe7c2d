package rdb

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// An idle worker runs no asynq server: it waits on the queue's wake
// channel, which the producer publishes to after each enqueue, and asks
// NextWork when the work it was not told about falls due.

var nextWorkScript = load("next_work")

// Wake tells the idle workers of queue that a task is waiting: one
// PUBLISH on WakeChannel. Nothing is stored; a worker that misses it finds
// the task when it next looks (NextWork).
func (s *Store) Wake(ctx context.Context, queue string) error {
	return s.c.Publish(ctx, WakeChannel(queue), "").Err()
}

// SubscribeWake subscribes to queue's wake channel. The caller receives
// from it and closes it; go-redis subscribes again after a lost connection
// (a *redis.Subscription arrives then: messages may have been missed).
func (s *Store) SubscribeWake(ctx context.Context, queue string) *redis.PubSub {
	return s.c.Subscribe(ctx, WakeChannel(queue))
}

// NextWorkArgs are the inputs of NextWork.
type NextWorkArgs struct {
	// Queue is the asynq queue.
	Queue string
	// Now is the worker's clock, the one asynq scores its sets with.
	Now time.Time
	// LeaseGrace is how long after its lease expired asynq's recoverer
	// takes back a task (a worker that died holding it).
	LeaseGrace time.Duration
	// CleanupGrace is how long a completed task past its retention may
	// wait for asynq's janitor.
	CleanupGrace time.Duration
}

// NextWork answers, in one round trip, how long until queue has work for
// a worker: 0 when a task is pending or due now; ok is false when nothing
// at all waits (no pending, scheduled, retry, active or completed task).
func (s *Store) NextWork(ctx context.Context, a NextWorkArgs) (due time.Duration, ok bool, err error) {
	p := asynqPrefix(a.Queue)
	keys := []string{p + "pending", p + "scheduled", p + "retry", p + "lease", p + "completed"}
	n, err := nextWorkScript.Run(ctx, s.c, keys, ms(a.Now), a.LeaseGrace.Milliseconds(), a.CleanupGrace.Milliseconds()).Int64()
	if err != nil || n < 0 {
		return 0, false, err
	}
	return time.Duration(n) * time.Millisecond, true, nil
}
