package rdb

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"leadrelay/internal/redistest"
)

// TestNextWork: an idle worker learns from one script when the queue next
// has work, from asynq's own sets as asynq fills them: a pending task now,
// a scheduled or retry task when due, a task of a dead worker once
// asynq's recoverer would take it, a completed task once its retention
// and the cleanup grace are over. An asynq upgrade that renames a set
// fails here.
func TestNextWork(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const queue = "leads"
	grace := NextWorkArgs{Queue: queue, LeaseGrace: 30 * time.Second, CleanupGrace: 10 * time.Minute}
	tests := []struct {
		name  string
		setup func(t *testing.T, rc redis.UniversalClient)
		later time.Duration // asked this long after now
		ok    bool
		min   time.Duration // due within [min, max]
		max   time.Duration
	}{
		{"nothing queued", func(*testing.T, redis.UniversalClient) {}, 0, false, 0, 0},
		{"pending", func(t *testing.T, rc redis.UniversalClient) { enqueue(t, rc, "pending") }, 0, true, 0, 0},
		{"scheduled in an hour", func(t *testing.T, rc redis.UniversalClient) { enqueue(t, rc, "later", asynq.ProcessIn(time.Hour)) },
			0, true, time.Hour - time.Minute, time.Hour + time.Second},
		{"retry in two hours", func(t *testing.T, rc redis.UniversalClient) {
			enqueue(t, rc, "fails")
			serveUntil(t, rc, "retry", func(context.Context, *asynq.Task) error { return errors.New("no") })
		}, 0, true, 2*time.Hour - time.Minute, 2*time.Hour + time.Second},
		{"lease of a live worker", func(t *testing.T, rc redis.UniversalClient) {
			enqueue(t, rc, "held")
			serveUntil(t, rc, "lease", hold(t))
		}, 0, true, 30 * time.Second, time.Minute + time.Second},
		{"lease of a dead worker", func(t *testing.T, rc redis.UniversalClient) {
			enqueue(t, rc, "held")
			serveUntil(t, rc, "lease", hold(t))
		}, 2 * time.Minute, true, 0, 0},
		{"completed, retention running", func(t *testing.T, rc redis.UniversalClient) {
			enqueue(t, rc, "done", asynq.Retention(time.Hour))
			serveUntil(t, rc, "completed", func(context.Context, *asynq.Task) error { return nil })
		}, 0, true, time.Hour + 9*time.Minute, time.Hour + 10*time.Minute + time.Second},
		{"completed, retention over", func(t *testing.T, rc redis.UniversalClient) {
			enqueue(t, rc, "done", asynq.Retention(time.Second))
			serveUntil(t, rc, "completed", func(context.Context, *asynq.Task) error { return nil })
		}, time.Hour, true, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := redistest.Start(t).Client()
			tc.setup(t, rc)
			a := grace
			a.Now = time.Now().Add(tc.later)
			due, ok, err := New(rc).NextWork(ctx, a)
			if err != nil || ok != tc.ok || due < tc.min || due > tc.max {
				t.Errorf("NextWork = %s, %v, %v; want %v within [%s, %s]", due, ok, err, tc.ok, tc.min, tc.max)
			}
		})
	}
}

// enqueue puts a task with id on queue leads.
func enqueue(t *testing.T, rc redis.UniversalClient, id string, opts ...asynq.Option) {
	t.Helper()
	opts = append([]asynq.Option{asynq.Queue("leads"), asynq.TaskID(id), asynq.MaxRetry(5)}, opts...)
	if _, err := asynq.NewClientFromRedisClient(rc).Enqueue(asynq.NewTask("lead:deliver", nil), opts...); err != nil {
		t.Fatal(err)
	}
}

// hold is a handler that keeps its task active until the test ends.
func hold(t *testing.T) asynq.HandlerFunc {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	return func(ctx context.Context, _ *asynq.Task) error {
		select {
		case <-done:
		case <-ctx.Done():
		}
		return nil
	}
}

// serveUntil runs an asynq server with h on queue leads (retries two hours
// apart) until asynq's set of the queue named state holds a task; the
// server stops at the test's end.
func serveUntil(t *testing.T, rc redis.UniversalClient, state string, h asynq.HandlerFunc) {
	t.Helper()
	ctx := t.Context()
	srv := asynq.NewServerFromRedisClient(rc, asynq.Config{Concurrency: 1, Queues: map[string]int{"leads": 1},
		TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.FatalLevel, ShutdownTimeout: time.Second,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return 2 * time.Hour }})
	if err := srv.Start(h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if n, _ := rc.ZCard(ctx, asynqPrefix("leads")+state).Result(); n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no task reached asynq's %s set within 10s", state)
		}
	}
}

// TestWake: a subscriber of a queue's wake channel hears Wake, and only
// its own queue's.
func TestWake(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := startStore(t)
	ps := s.SubscribeWake(ctx, "leads")
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
		t.Fatalf("no subscription: %v", err)
	}
	for _, q := range []string{"other", "leads"} {
		if err := s.Wake(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	msg, err := ps.ReceiveTimeout(ctx, 5*time.Second)
	if m, ok := msg.(*redis.Message); err != nil || !ok || m.Channel != WakeChannel("leads") {
		t.Errorf("received %v, %v; want a message on %s", msg, err, WakeChannel("leads"))
	}
}
