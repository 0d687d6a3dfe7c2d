package realcrm

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"leadrelay/audit"
	v2 "leadrelay/crm/v2"
	"leadrelay/crmclient"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
	"leadrelay/worker"
)

// TestRealCRMAudit is issue 17's audit against the real CRM: a worker
// in this process delivers a burst of leads over v2, right after a lead
// made outside the relay, and the audit reads them all back (none
// duplicated, none missing); then a duplicate is planted straight into
// the CRM, a second add stamped with a delivered lead's id as a buggy
// relay would make it, and the audit reports exactly that one. It logs
//
//	realcrm audit: delivered=N clean: checked=N read=R duplicates=0 missing=0; planted crm_id=X: duplicates=1 (lead L) missing=0
func TestRealCRMAudit(t *testing.T) {
	s := realCRM(t)
	const n = 24
	client, err := crmclient.New(s.url, s.login, s.apikey, crmclient.WithAPIVersion(crmclient.V2), crmclient.WithTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rc := redistest.Start(t).Client()
	o := worker.Options{Concurrency: 4, CRMTimeout: 20 * time.Second, RetryInitial: 100 * time.Millisecond,
		RetryMaxDelay: time.Second, BreakerThreshold: 1000, ShutdownTimeout: 10 * time.Second, PollInterval: 20 * time.Millisecond}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	h, err := worker.NewHandler(client, rc, o, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = worker.New(rc, h, o, log).Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	// A lead of the CRM's own just before the burst: the CRM lists the
	// leads of one second in the order they were inserted, so it shares
	// the first delivered lead's second and is listed among them.
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := client.Add(ctx, crmclient.Lead{Lead: lead.Lead{Title: "Before", Email: "before-" + run + "@audit.test"}}); err != nil {
		t.Fatal(err)
	}
	enq := asynq.NewClientFromRedisClient(rc)
	t.Cleanup(func() { _ = enq.Close() })
	var ps []lead.Payload
	for i := range n {
		l := lead.Lead{Title: fmt.Sprintf("Audit %d", i), Email: fmt.Sprintf("audit%s-%02d@audit.test", run, i), Description: "audit lead " + run}
		p := lead.NewPayload("realcrm", fmt.Sprintf("audit-%s-%d", run, i), l, time.Now())
		task, err := lead.NewTask(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := enq.Enqueue(task, lead.TaskOptions(lead.DefaultQueue, 20, time.Hour)...); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	insp := asynq.NewInspectorFromRedisClient(rc)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		info, err := insp.GetQueueInfo(lead.DefaultQueue)
		if err == nil && info.Completed == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 2m: queue %+v (%v)", info, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	a := audit.New(h.CRM(), rc, audit.Options{Codec: lead.NewCodec(nil), Clock: h.Now})
	clean, err := a.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("clean audit: %s", clean.Line())
	if clean.Checked != n || clean.Read < n || len(clean.Duplicates) != 0 || len(clean.Missing) != 0 || clean.Settling != 0 {
		t.Errorf("clean audit %+v: want %d checked, at least %d read, nothing found", clean, n, n)
	}

	planted, err := client.Add(ctx, v2.Lead(ps[3]))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := a.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after planting CRM lead %d as %s: %s", planted, ps[3].ID, rep.Line())
	if len(rep.Duplicates) != 1 || rep.Duplicates[0].CRMID != planted || rep.Duplicates[0].LeadID != ps[3].ID || len(rep.Missing) != 0 {
		t.Errorf("after planting: %+v, want exactly CRM lead %d as a duplicate of %s", rep, planted, ps[3].ID)
	}
	summary := fmt.Sprintf("realcrm audit: delivered=%d clean: checked=%d read=%d duplicates=%d missing=%d; planted crm_id=%d: duplicates=%d missing=%d",
		n, clean.Checked, clean.Read, len(clean.Duplicates), len(clean.Missing), planted, len(rep.Duplicates), len(rep.Missing))
	t.Log(summary)
	fmt.Println(summary)
}
