package worker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"leadrelay/crmclient"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// sweepRetention is the retention the sweep tests enqueue with.
const sweepRetention = time.Hour

// completeUnstripped delivers n leads through a real asynq server whose
// handler is e.h but whose strip never runs (e.h.Start is not called): a
// worker killed once asynq marked its tasks completed. It returns the
// leads once asynq holds every task as completed.
func completeUnstripped(t *testing.T, e *env, n int) []lead.Payload {
	t.Helper()
	ps := enqueueLeads(t, e.rdb, n, 3, sweepRetention)
	mux := asynq.NewServeMux()
	mux.Handle(lead.TaskType, e.h)
	srv := serveAsynq(t, e.rdb, mux, asynq.Config{Concurrency: 2, TaskCheckInterval: 10 * time.Millisecond})
	defer srv.Shutdown()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		done := 0
		for _, p := range ps {
			if e.rdb.HGet(t.Context(), rdb.AsynqTaskKey(lead.DefaultQueue, p.ID), "state").Val() == "completed" {
				done++
			}
		}
		if done == n {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d tasks completed after 30s", done, n)
		}
	}
}

// taskMsg is asynq's stored message of p's task, as Redis holds it.
func taskMsg(t *testing.T, e *env, p lead.Payload) string {
	t.Helper()
	msg, err := e.rdb.HGet(t.Context(), rdb.AsynqTaskKey(lead.DefaultQueue, p.ID), "msg").Result()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// fieldsKept names those of p's fields its task still holds in Redis.
func fieldsKept(t *testing.T, e *env, p lead.Payload) []string {
	t.Helper()
	msg := taskMsg(t, e, p)
	var kept []string
	for _, f := range []string{p.Lead.Title, p.Lead.Email, p.Lead.Company, p.Lead.Description} {
		if strings.Contains(msg, f) {
			kept = append(kept, f)
		}
	}
	return kept
}

// TestSweepCompleted (issue 18): a delivered lead whose worker died after
// asynq marked its task completed, before its own strip, keeps every
// field in Redis for the task's retention; one sweep leaves its envelope
// alone (with the content hash as sent, as the worker's strip keeps it),
// and sweeping again changes nothing. Tasks completed within sweepSettle
// are left to their worker; several workers sweeping at once strip each
// task once; a sweep bounded to fewer pages than there are tasks goes on
// from where it stopped.
func TestSweepCompleted(t *testing.T) {
	t.Parallel()
	later := func() time.Time { return time.Now().Add(sweepSettle + time.Minute) }
	tests := []struct {
		name    string
		leads   int
		before  func(context.Context, *env, []lead.Payload) // between the completions and the sweeps
		args    SweepArgs                                   // Now and Retention set per sweep
		now     func() time.Time
		sweeps  []int // what each sweep in turn strips
		workers int   // sweeping at once, the first sweep (0: 1)
	}{
		{name: "worker died before its strip", leads: 3, now: later, sweeps: []int{3, 0}},
		{name: "completed just now: its worker's turn", leads: 2, now: time.Now, sweeps: []int{0, 0}},
		{name: "stripped by its worker", leads: 2, now: later, sweeps: []int{0},
			before: func(ctx context.Context, e *env, ps []lead.Payload) {
				for _, p := range ps {
					e.h.stripLater(p.ID, e.o.IDKey.SentSum(e.h.api.SentHash(p)))
				}
				e.h.stripDelivered(ctx)
			}},
		{name: "more than a sweep's pages", leads: 5, now: later, args: SweepArgs{Page: 2, Pages: 2}, sweeps: []int{4, 1, 0}},
		{name: "workers sweeping at once", leads: 4, now: later, workers: 3, sweeps: []int{4, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			e := newEnv(t, crmclient.V2, nil)
			ps := completeUnstripped(t, e, tt.leads)
			for _, p := range ps {
				if kept := fieldsKept(t, e, p); len(kept) != 4 {
					t.Fatalf("lead %s completed unstripped keeps %q; want all 4 of its fields (the search is blind)", p.ID, kept)
				}
			}
			if tt.before != nil {
				tt.before(ctx, e, ps)
			}
			sweepers := []*Handler{e.h}
			for range max(tt.workers, 1) - 1 {
				sweepers = append(sweepers, newHandler(t, e.crm, e.rdb, e.o, nil))
			}
			var msgs map[string]string
			for i, want := range tt.sweeps {
				a := tt.args
				a.Now, a.Retention = tt.now(), sweepRetention
				got := 0
				var mu sync.Mutex
				var wg sync.WaitGroup
				for _, h := range sweepers {
					wg.Go(func() {
						n, err := h.SweepCompleted(ctx, a)
						if err != nil {
							t.Errorf("sweep %d: %v", i+1, err)
						}
						mu.Lock()
						got += n
						mu.Unlock()
					})
				}
				wg.Wait()
				sweepers = sweepers[:1] // only the first sweep is at once
				if got != want {
					t.Errorf("sweep %d stripped %d, want %d", i+1, got, want)
				}
				if i == len(tt.sweeps)-1 && msgs != nil {
					for _, p := range ps {
						if m := taskMsg(t, e, p); m != msgs[p.ID] {
							t.Errorf("the last sweep changed lead %s's task: %q, was %q", p.ID, m, msgs[p.ID])
						}
					}
				}
				msgs = map[string]string{}
				for _, p := range ps {
					msgs[p.ID] = taskMsg(t, e, p)
				}
			}
			stripped := tt.now().After(time.Now().Add(sweepSettle)) || tt.before != nil
			insp := asynq.NewInspectorFromRedisClient(e.rdb)
			for _, p := range ps {
				kept := fieldsKept(t, e, p)
				switch {
				case stripped && len(kept) > 0:
					t.Errorf("lead %s keeps %q after the sweeps", p.ID, kept)
				case !stripped && len(kept) == 0:
					t.Errorf("lead %s, completed within sweepSettle, was stripped by the sweep", p.ID)
				}
				if !stripped {
					continue
				}
				info, err := insp.GetTaskInfo(lead.DefaultQueue, p.ID)
				if err != nil {
					t.Fatal(err)
				}
				env, err := lead.ReadEnvelope(info.Payload)
				if err != nil || !env.Bare || env.ID != p.ID || env.Site != p.Site || env.Sent != e.o.IDKey.SentSum(e.h.api.SentHash(p)) || env.Sent == "" {
					t.Errorf("lead %s's task holds %+v, %v; want its bare envelope with the content hash as sent", p.ID, env, err)
				}
			}
		})
	}
}

// TestStripMaxWarns (issue 18): a worker with stripMax delivered tasks
// waiting leaves further ones to the sweep, and says so once, not once a
// task.
func TestStripMaxWarns(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.WarnLevel)
	h := &Handler{log: zap.New(core)}
	for i := range stripMax + 3 {
		h.stripLater(fmt.Sprintf("ld_%d", i), "")
	}
	if n := len(h.strips.ids); n != stripMax {
		t.Errorf("%d tasks wait, want stripMax (%d)", n, stripMax)
	}
	warned := logs.FilterMessageSnippet("strip sweep").All()
	if len(warned) != 1 {
		t.Fatalf("%d warnings, want 1: %v", len(warned), logs.All())
	}
	if got := warned[0].ContextMap()["left_to_sweep"]; got != int64(1) {
		t.Errorf("left_to_sweep = %v, want 1 (the first over the bound)", got)
	}
}
