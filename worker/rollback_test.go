package worker

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/crmsim"
	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

// TestRedisRollback (issue 17, point 7): a redis-server that keeps
// snapshots only. Leads are delivered; a second batch, due a few seconds
// later, is queued; Redis saves a snapshot; the second batch is
// delivered; Redis is killed (nothing saved) and started again from the
// snapshot, so the second batch's tasks are due again, with no delivered
// marker and no "sending" record. The workers find the rollback (the
// fleet epoch is lower than they counted), look each lead received before
// it up before adding it, and find the CRM has it: every lead is in the
// CRM once. Before, every lead of the second batch was added again.
func TestRedisRollback(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const n, apiKey = 12, "rollback-test-key"
	sim, client := startSim(t, crmsim.Config{APIKey: apiKey, API: "v2", Seed: 1})
	srv := redistest.StartWith(t, "--appendonly", "no")
	rc := srv.Client()
	var found atomic.Int64
	o := Options{
		Concurrency: 4, RetryInitial: 20 * time.Millisecond, RetryMaxDelay: 200 * time.Millisecond,
		CRMTimeout: 5 * time.Second, ShutdownTimeout: 5 * time.Second, PollInterval: 20 * time.Millisecond,
		DelayedPollInterval: 50 * time.Millisecond, BreakerThreshold: 1000,
		OnRollback: func(time.Time) { found.Add(1) },
	}
	workers := runWorkers(t, client, rc, o, 2)

	enq := asynq.NewClientFromRedisClient(rc)
	t.Cleanup(func() { _ = enq.Close() })
	enqueue := func(batch string, opts ...asynq.Option) {
		for i := range n {
			l := lead.Lead{Title: "Ann", Email: "ann@example.com", Company: fmt.Sprintf("%s-%d", batch, i), Description: "call me"}
			task, err := lead.NewTask(lead.NewPayload("shop", fmt.Sprintf("%s-%d", batch, i), l, time.Now()))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := enq.Enqueue(task, append(lead.TaskOptions(lead.DefaultQueue, 20, time.Hour), opts...)...); err != nil {
				t.Fatal(err)
			}
		}
	}
	insp := asynq.NewInspectorFromRedisClient(rc)
	waitCompleted := func(want int, what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			if info, err := insp.GetQueueInfo(lead.DefaultQueue); err == nil && info.Completed >= want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 60s: %s not delivered; CRM holds %d leads", what, len(sim.Leads()))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	enqueue("before")
	waitCompleted(n, "the first batch")
	enqueue("after", asynq.ProcessIn(3*time.Second))
	saved, err := rc.Get(ctx, rdb.EpochKey).Int64()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	dump := filepath.Join(srv.Dir(), "dump.rdb")
	snapshot, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	waitCompleted(2*n, "the second batch")
	// Traffic after the snapshot: the workers counted past it.
	deadline := time.Now().Add(10 * time.Second)
	for e, _ := rc.Get(ctx, rdb.EpochKey).Int64(); e <= saved+len64(workers); e, _ = rc.Get(ctx, rdb.EpochKey).Int64() {
		if time.Now().After(deadline) {
			t.Fatalf("the fleet epoch stayed at %d (saved %d)", e, saved)
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.Stop() // SIGKILL: nothing saved
	if err := os.WriteFile(dump, snapshot, 0o600); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	waitCompleted(2*n, "the second batch, again")

	stored := map[string]int{}
	for _, l := range sim.Leads() {
		stored[l.Company]++
	}
	twice := 0
	for company, k := range stored {
		if k != 1 {
			twice++
			t.Errorf("lead %s is in the CRM %d times", company, k)
		}
	}
	if len(stored) != 2*n {
		t.Errorf("the CRM holds %d distinct leads, want %d", len(stored), 2*n)
	}
	var found2 int64
	for _, w := range workers {
		found2 += w.h.Stats().ReconcileFound
	}
	t.Logf("%d leads in the CRM twice; rollback found %d times; %d leads found by a look-up", twice, found.Load(), found2)
	if found.Load() == 0 {
		t.Error("no worker reported the rollback")
	}
}

func len64[T any](s []T) int64 { return int64(len(s)) }
