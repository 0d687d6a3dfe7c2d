package worker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/delivery"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

// TestSpareRun measures why every task carries one run more than its
// retry budget (lead.TaskOptions; delivery's doc, "The spare run"). asynq
// archives a task whose failed run finds Retried >= MaxRetry whatever
// IsFailure says, so without the spare run a postponement on a lead's
// last counted attempt is archived behind LeadRelay's back: no
// dead-letter record, no reason, and the lead is never delivered. Each
// lead here spends its counted attempts, is postponed once on the run
// after them, then would be delivered. Should asynq change, the first
// case fails, and the spare run may go.
func TestSpareRun(t *testing.T) {
	t.Parallel()
	const leads, budget = 20, 1
	tests := []struct {
		name                string
		maxRetry            int
		archived, completed int
	}{
		{"MaxRetry(budget)", budget, leads, 0},
		{"MaxRetry(budget+1), the spare run", budget + 1, 0, leads},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := redistest.Start(t).Client()
			var postponed sync.Map // lead id → postponed once
			h := asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
				p, err := lead.ParsePayload(task.Payload())
				if err != nil {
					return err
				}
				if retried, _ := asynq.GetRetryCount(ctx); retried < budget {
					return errors.New("a counted failure")
				}
				if _, again := postponed.LoadOrStore(p.ID, true); !again {
					return &DelayError{Delay: 10 * time.Millisecond, Reason: delivery.Reason{Code: delivery.CircuitOpen}}
				}
				return nil
			})
			serveAsynq(t, rc, h, asynq.Config{
				Concurrency: 4, IsFailure: IsFailure,
				RetryDelayFunc:    func(int, error, *asynq.Task) time.Duration { return 10 * time.Millisecond },
				TaskCheckInterval: 20 * time.Millisecond, DelayedTaskCheckInterval: 50 * time.Millisecond,
			})
			cli := asynq.NewClientFromRedisClient(rc)
			for range leads {
				task, _ := newLeadTask(t)
				if _, err := cli.Enqueue(task, asynq.Queue(lead.DefaultQueue), asynq.MaxRetry(tc.maxRetry), asynq.Retention(time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			insp := asynq.NewInspectorFromRedisClient(rc)
			var q *asynq.QueueInfo
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				var err error
				if q, err = insp.GetQueueInfo(lead.DefaultQueue); err == nil && q.Archived+q.Completed == leads {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not settled after 30s: %+v", q)
				}
			}
			t.Logf("%s: %d of %d leads postponed on their last attempt archived by asynq, %d delivered",
				tc.name, q.Archived, leads, q.Completed)
			if q.Archived != tc.archived || q.Completed != tc.completed {
				t.Errorf("archived %d, delivered %d; want %d, %d", q.Archived, q.Completed, tc.archived, tc.completed)
			}
		})
	}
}
