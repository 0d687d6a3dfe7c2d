package ctl

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// TestRekeyRefuses: rekey needs data keys, and refuses while a worker
// that cannot open sealed leads (an asynq server of the queue no sealing
// worker registered, as one of the version before sealing) serves the
// queue: it would be handed leads it cannot read.
func TestRekeyRefuses(t *testing.T) {
	t.Parallel()
	noKeys := newEnv(t, map[string]string{"LEADRELAY_DATA_KEYS": ""})
	if _, _, err := noKeys.run(t, "", "rekey"); err == nil || !strings.Contains(err.Error(), "LEADRELAY_DATA_KEYS") {
		t.Errorf("rekey without keys: %v, want a refusal naming LEADRELAY_DATA_KEYS", err)
	}

	e := newEnv(t, nil)
	if out, _, err := e.run(t, "", "rekey"); err != nil || !strings.Contains(out, "looked at 0") {
		t.Fatalf("rekey of an empty Redis: %v\n%s", err, out)
	}
	old := asynq.NewServerFromRedisClient(e.rdb, asynq.Config{Queues: map[string]int{e.cfg.Queue.Name: 1}, Concurrency: 1,
		LogLevel: asynq.FatalLevel})
	if err := old.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(old.Shutdown)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, err := e.run(t, "", "rekey")
		if err != nil && strings.Contains(err.Error(), "cannot open sealed leads") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rekey with an old worker serving the queue: %v, want a refusal", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
