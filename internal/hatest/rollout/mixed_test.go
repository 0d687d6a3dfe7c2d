package rollout

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
)

// TestMixedVersions: a worker of the previous version and one of this tree
// drain the same queue, fed by intakes of both versions; then a lead the old
// version delivered is published again with its task gone, and the new
// worker must find the old version's delivered marker and not add it twice.
func TestMixedVersions(t *testing.T) {
	hatest.Short(t)
	prev := hatest.PreviousCommit(t)
	oldBin, newBin := hatest.BinaryAt(t, prev), hatest.Binary(t)
	rds := redistest.Start(t)
	sim, crmURL := hatest.StartSim(t, 10*time.Millisecond)
	env := hatest.Env(rds.URL(), crmURL, "LEADRELAY_CONCURRENCY=10")
	ctx := context.Background()

	// 1. The old version alone delivers set A.
	oldIn := hatest.Start(t, oldBin, "intake-old", env, "intake")
	oldW := hatest.Start(t, oldBin, "worker-old", env, "worker")
	pubA := &hatest.Publisher{URL: oldIn.URL, Rate: 100, Prefix: "mixed-a"}
	pubA.Run(ctx, 200, nil)
	resA := hatest.WaitDelivered(t, sim, pubA.Acked(), time.Minute)

	deliveredAlone := len(oldW.Lines(`"msg":"delivered"`))

	// 2. Both versions at once: old and new intake feed one queue that an old
	// and a new worker drain.
	newIn := hatest.Start(t, newBin, "intake-new", env, "intake")
	newW := hatest.Start(t, newBin, "worker-new", env, "worker")
	pubOld := &hatest.Publisher{URL: oldIn.URL, Rate: 50, Prefix: "mixed-b-old"}
	pubNew := &hatest.Publisher{URL: newIn.URL, Rate: 50, Prefix: "mixed-b-new"}
	done := make(chan struct{})
	go func() { defer close(done); pubOld.Run(ctx, 300, nil) }()
	pubNew.Run(ctx, 300, nil)
	<-done // Run returns within 90s of its last lead
	resB := hatest.WaitDelivered(t, sim, append(pubOld.Acked(), pubNew.Acked()...), time.Minute)
	byOld, byNew := len(oldW.Lines(`"msg":"delivered"`))-deliveredAlone, len(newW.Lines(`"msg":"delivered"`))

	// 3. The old version is gone; leads it delivered come again (their tasks
	// deleted, as after the dedup retention): the new worker must skip them.
	oldW.Terminate(20 * time.Second)
	oldIn.Terminate(20 * time.Second)
	insp := asynq.NewInspectorFromRedisClient(rds.Client())
	again := pubA.Acked()[:50]
	client := &http.Client{Timeout: 5 * time.Second}
	for _, a := range again {
		if err := insp.DeleteTask("leads", a.ID); err != nil {
			t.Fatalf("delete the task of %s: %v", a.ID, err)
		}
		if code, id, err := hatest.PostLead(ctx, client, newIn.URL(), a.Email, "ha lead"); err != nil || code != http.StatusAccepted || id != a.ID {
			t.Fatalf("publish %s again: %d %s %v", a.Email, code, id, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		qi, err := insp.GetQueueInfo("leads")
		if err == nil && qi.Pending+qi.Active+qi.Retry+qi.Scheduled == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	resAgain := hatest.Tally(sim, again)

	hatest.Summary(t, fmt.Sprintf("ha mixed versions: prev=%.12s old_only{%s} mixed{%s delivered_by_old=%d by_new=%d} rerun_of_old_deliveries{%s}",
		prev, resA, resB, byOld, byNew, resAgain))
	for name, r := range map[string]hatest.Result{"old version alone": resA, "both versions": resB, "re-run after upgrade": resAgain} {
		if len(r.Lost) > 0 || len(r.Duplicated) > 0 {
			t.Errorf("%s: %s%s", name, r, hatest.Explain(append(r.Lost, r.Duplicated...), oldW, newW))
		}
	}
	if p := pubOld.Problems() + pubNew.Problems() + pubA.Problems(); p != "" {
		t.Errorf("publishing: %s", p)
	}
}
