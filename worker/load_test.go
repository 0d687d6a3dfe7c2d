package worker

import (
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/crmclient"
	"leadrelay/lead"
)

// TestEndToEnd runs two Workers (real asynq servers) on a real Redis
// against a CRM that fails 30% of adds transiently and 5% ambiguously
// (stored, then the connection lost): every lead lands exactly once.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	forEachVersion(t, runEndToEnd)
}

func runEndToEnd(t *testing.T, v crmclient.APIVersion) {
	const leads = 50
	f := startFleet(t, fleetRun{version: v, workers: 2, concurrency: 4, transient: 0.30, ambiguous: 0.05})
	ids := f.enqueue(t, leads)
	waitDelivered(t, f.rdb, ids)
	deadline := time.Now().Add(30 * time.Second)
	per := f.crm.PerCompany()
	insp := asynq.NewInspectorFromRedisClient(f.rdb)
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
	adds, stored := f.crm.Counts()
	s := f.stats()
	t.Logf("%s: leads=%d adds=%d stored=%d delivered=%d reconciled=%d", v, leads, adds, stored, s.Delivered, s.ReconcileFound)
	if stored != leads {
		t.Errorf("CRM holds %d leads, want %d", stored, leads)
	}
}

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
	f := startFleet(t, fleetRun{version: crmclient.V1, workers: 3, concurrency: 20, transient: 0.20, ambiguous: 0.05})
	f.enqueue(t, leads)
	insp := asynq.NewInspectorFromRedisClient(f.rdb)
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
	for _, n := range f.crm.PerCompany() {
		if n > 1 {
			dup++
		}
	}
	s := f.stats()
	t.Logf("duplicated=%d stats=%+v", dup, s)
	if dup != 0 || s.ReconcileUnknown != 0 || s.ReconcileFound == 0 {
		t.Fatalf("duplicated=%d, look-ups %+v; want 0 duplicated and every look-up answered", dup, s)
	}
}
