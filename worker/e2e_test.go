package worker

import (
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"leadrelay/crmclient"
	keys "leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

// TestEndToEnd runs two Workers (real asynq servers) on a real Redis
// against a CRM that fails 30% of adds transiently and 5% ambiguously
// (stored, then the connection lost): every lead lands exactly once.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	for _, v := range []crmclient.APIVersion{crmclient.V1, crmclient.V2} {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			runEndToEnd(t, v)
		})
	}
}

func runEndToEnd(t *testing.T, v crmclient.APIVersion) {
	const leads = 50
	srv := redistest.Start(t)
	rdb := srv.Client()
	crm := newFakeCRM(v)
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	crm.setFail(func(int, crmclient.Lead) (bool, error) {
		mu.Lock()
		r := rng.Float64()
		mu.Unlock()
		switch {
		case r < 0.30:
			return false, &crmclient.StatusError{Action: "add", StatusCode: 503}
		case r < 0.35:
			return true, &crmclient.TransportError{Action: "add", Sent: true, Err: io.ErrUnexpectedEOF}
		}
		return true, nil
	})
	o := Options{
		Concurrency: 4, RetryInitial: 10 * time.Millisecond, RetryMaxDelay: 50 * time.Millisecond,
		CRMTimeout: 100 * time.Millisecond, BreakerThreshold: 1000, ShutdownTimeout: 5 * time.Second,
		PollInterval: 50 * time.Millisecond,
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	handlers := make([]*Handler, 2)
	for i := range handlers {
		handlers[i] = newHandler(t, crm, rdb, o, log)
		w := New(rdb, handlers[i], o, log)
		wg.Go(func() {
			if err := w.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	client := asynq.NewClientFromRedisClient(rdb)
	ids := make([]lead.Payload, leads)
	for i := range ids {
		task, p := newLeadTask(t)
		ids[i] = p
		if _, err := client.Enqueue(task, asynq.Queue(lead.DefaultQueue), asynq.MaxRetry(100), asynq.Retention(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := 0
		for _, p := range ids {
			if rdb.Exists(ctx, keys.DeliveredKey(p.ID)).Val() == 1 {
				n++
			}
		}
		if n == leads {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d leads delivered after 30s", n, leads)
		}
		time.Sleep(50 * time.Millisecond)
	}
	per := crm.storedPerCompany()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	for _, p := range ids {
		if per[p.Lead.Company] != 1 {
			t.Errorf("lead %s is in the CRM %d times", p.ID, per[p.Lead.Company])
		}
		// The task completes just after the marker is written.
		var info *asynq.TaskInfo
		for time.Now().Before(deadline) {
			var err error
			if info, err = insp.GetTaskInfo(lead.DefaultQueue, p.ID); err == nil && info.State == asynq.TaskStateCompleted {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if info == nil || info.State != asynq.TaskStateCompleted {
			t.Errorf("task %s = %+v, want completed", p.ID, info)
		}
	}
	adds, stored := crm.counts()
	var s Stats
	for _, h := range handlers {
		hs := h.Stats()
		s.Delivered += hs.Delivered
		s.ReconcileFound += hs.ReconcileFound
		s.ReconcileNotFound += hs.ReconcileNotFound
	}
	t.Logf("%s: leads=%d adds=%d stored=%d delivered=%d reconciled=%d", v, leads, adds, stored, s.Delivered, s.ReconcileFound)
	if stored != leads {
		t.Errorf("CRM holds %d leads, want %d", stored, leads)
	}
}
