// Package workertest is a test kit for what a worker looks like to the
// rest of the fleet: a bare asynq server serving a queue, as a worker of
// this process (or of the previous version) is listed by asynq's
// inspector, without a Handler behind it.
package workertest

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// ServeQueue runs an asynq server on rc serving queue with a handler that
// does nothing, and returns once asynq's inspector lists it (failing t
// after 10s). The server shuts down at t's cleanup.
func ServeQueue(t testing.TB, rc redis.UniversalClient, queue string) {
	t.Helper()
	srv := asynq.NewServerFromRedisClient(rc, asynq.Config{Queues: map[string]int{queue: 1}, Concurrency: 1,
		LogLevel: asynq.FatalLevel})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	insp := asynq.NewInspectorFromRedisClient(rc)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if s, err := insp.Servers(); err == nil && len(s) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no asynq server listed after 10s")
		}
	}
}
