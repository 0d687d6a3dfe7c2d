package worker

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/internal/hatest"
	"leadrelay/lead"
)

// TestExpiredLeaseIsNotDeath is issue 17's honest outcomes: when a
// worker is cut off mid-add, asynq's lease on the run expires, asynq
// cancels the run's context and runs the lead again (the recoverer, or
// the processor with ErrLeaseExpired). The cut-off run went on to settle
// as if its verdict counted: on its last counted attempt it dead-lettered
// the lead (a record, a chat message) that the next run then delivered,
// and asynq counted the expired lease as a failed attempt, so that next
// run, past the budget, dead-lettered it for real. Here a real asynq
// server runs a Handler; its first run's context is cancelled mid-add as
// a lease expiry does, and asynq is told ErrLeaseExpired. The lead must be
// delivered once, with no dead-letter record, no "dead" outcome and no
// dead-letter log line.
func TestExpiredLeaseIsNotDeath(t *testing.T) {
	t.Parallel()
	obs := &recorder{}
	dead := &deadBox{reasons: map[string]delivery.Reason{}}
	core, logs := observer.New(zap.InfoLevel)
	e := newEnv(t, crmclient.V2, func(o *Options) {
		o.CRMTimeout, o.Observer, o.DeadLetters = time.Second, obs, dead
		o.Clock, o.RetryInitial = time.Now, 100*time.Millisecond // asynq waits in real time
	})
	e.h.log = zap.New(core)
	var cut atomic.Pointer[context.CancelFunc]
	e.crm.SetFail(func(n int, _ crmclient.Lead) (bool, error) {
		if n == 1 {
			(*cut.Load())() // the lease expires while the add is on the wire
			return false, nil
		}
		return true, nil
	})
	w := New(e.rdb, e.h, e.o, zap.New(core))
	var runs sync.Map // lead id → runs
	handler := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		p, _ := lead.ParsePayload(t.Payload())
		n, _ := runs.LoadOrStore(p.ID, new(atomic.Int32))
		if n.(*atomic.Int32).Add(1) > 1 {
			return e.h.ProcessTask(ctx, t)
		}
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		cut.Store(&cancel)
		_ = e.h.ProcessTask(runCtx, t) // asynq no longer listens
		return asynq.ErrLeaseExpired   // what asynq decides for the run
	})
	serveAsynq(t, e.rdb, handler, asynq.Config{
		Concurrency: 2, IsFailure: IsFailure,
		RetryDelayFunc: RetryDelay(e.o), ErrorHandler: asynq.ErrorHandlerFunc(w.handleError),
		TaskCheckInterval: 20 * time.Millisecond, DelayedTaskCheckInterval: 50 * time.Millisecond,
	})
	task, p := newLeadTask(t)
	// Budget 0: the first run is the lead's last counted attempt.
	if _, err := asynq.NewClientFromRedisClient(e.rdb).Enqueue(task, lead.TaskOptions(lead.DefaultQueue, 0, time.Hour)...); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	settled := hatest.WaitFor(30*time.Second, 50*time.Millisecond, func() bool {
		q, err := insp.GetQueueInfo(lead.DefaultQueue)
		return err == nil && q.Completed+q.Archived == 1
	})
	q, _ := insp.GetQueueInfo(lead.DefaultQueue)
	if !settled || q.Completed != 1 {
		t.Fatalf("lead not delivered within 30s: %+v", q)
	}
	if _, stored := e.crm.Counts(); stored != 1 {
		t.Errorf("the CRM holds %d copies, want 1", stored)
	}
	if r, ok := dead.reason(p.ID); ok {
		t.Errorf("a delivered lead is in the dead-letter store: %s", r)
	}
	if slices.Contains(obs.take(), DeliveryDead) {
		t.Error(`outcome "dead" reported for a lead that was delivered`)
	}
	for _, l := range logs.All() {
		if l.Level >= zap.ErrorLevel {
			t.Errorf("error line for a lead that was delivered: %s", l.Message)
		}
	}
}
