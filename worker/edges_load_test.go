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
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

// TestEdgeV1JournalUnderLoad is case 2 under load: three workers (real
// asynq servers) deliver a burst of leads to a v1 CRM whose list ignores
// its parameters, failing 20% of adds and leaving 5% uncertain (stored,
// then the connection lost). Every uncertain lead must be found in the
// journal: a burst must not outrun it, and a worker that never refreshed
// it must still send with a watermark it covers. Before the hold and the
// fleet-wide watermark, 2-7 leads of 1,500 were sent twice.
func TestEdgeV1JournalUnderLoad(t *testing.T) {
	t.Parallel()
	const leads = 1000
	srv := redistest.Start(t)
	rdb := srv.Client()
	crm := newFakeCRM(crmclient.V1)
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	crm.setFail(func(int, crmclient.Lead) (bool, error) {
		mu.Lock()
		r := rng.Float64()
		mu.Unlock()
		switch {
		case r < 0.20:
			return false, &crmclient.StatusError{Action: "add", StatusCode: 503}
		case r < 0.25:
			return true, &crmclient.TransportError{Action: "add", Sent: true, Err: io.ErrUnexpectedEOF}
		}
		return true, nil
	})
	o := Options{
		Concurrency: 20, RetryInitial: 10 * time.Millisecond, RetryMaxDelay: 50 * time.Millisecond,
		CRMTimeout: 100 * time.Millisecond, BreakerThreshold: 1000, ShutdownTimeout: 5 * time.Second,
		PollInterval: 50 * time.Millisecond,
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	handlers := make([]*Handler, 3)
	for i := range handlers {
		handlers[i] = newHandler(t, crm, rdb, o, log.Named(string(rune('a'+i))))
		w := New(rdb, handlers[i], o, log)
		wg.Go(func() { _ = w.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	client := asynq.NewClientFromRedisClient(rdb)
	for range leads {
		task, _ := newLeadTask(t)
		if _, err := client.Enqueue(task, lead.TaskOptions(lead.DefaultQueue, 100, time.Hour)...); err != nil {
			t.Fatal(err)
		}
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	deadline := time.Now().Add(90 * time.Second)
	for {
		qi, _ := insp.GetQueueInfo(lead.DefaultQueue)
		if qi != nil && qi.Completed == leads {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not drained after 90s: %+v", qi)
		}
		time.Sleep(200 * time.Millisecond)
	}
	dup := 0
	for _, n := range crm.storedPerCompany() {
		if n > 1 {
			dup++
		}
	}
	var s Stats
	for _, h := range handlers {
		x := h.Stats()
		s.ReconcileFound += x.ReconcileFound
		s.ReconcileUnknown += x.ReconcileUnknown
		s.ReconcileJournal += x.ReconcileJournal
	}
	t.Logf("duplicated=%d stats=%+v", dup, s)
	if dup != 0 || s.ReconcileUnknown != 0 || s.ReconcileFound == 0 {
		t.Fatalf("duplicated=%d, look-ups %+v; want 0 duplicated and every look-up answered", dup, s)
	}
}
