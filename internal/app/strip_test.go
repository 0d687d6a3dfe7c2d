package app

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"leadrelay/crm/crmtest"
	"leadrelay/crmclient"
	"leadrelay/internal/redistest"
	"leadrelay/internal/seal"
	"leadrelay/lead"
	"leadrelay/metrics"
	"leadrelay/worker"
	"leadrelay/worker/workertest"
)

// TestStripSweep (issue 18): a delivered lead whose task asynq completed
// but whose worker never stripped it (killed in between: here a bare
// asynq server completes it, no worker's strip behind it) keeps its fields
// in Redis, for LEADRELAY_DEDUP_TTL. One strip sweep of the relay leaves
// its envelope alone, counted in leadrelay_delivered_stripped_late_total;
// a second changes nothing. Sealed leads too: the sweep needs no key to
// strip them, and with the fleet's keyring keeps their content hash as
// sent for the CRM audit.
func TestStripSweep(t *testing.T) {
	t.Parallel()
	sealed := lead.NewCodec(testKeyring(t))
	tests := []struct {
		name  string
		codec lead.Codec
	}{
		{"plaintext payloads", lead.Codec{}},
		{"sealed payloads", sealed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			rds := redistest.StartWith(t, "--rdbcompression", "no", "--aof-use-rdb-preamble", "no")
			rc := rds.Client()
			const queue, n = "leads", 3
			leads := make([]lead.Payload, n)
			client := asynq.NewClientFromRedisClient(rc)
			for i := range leads {
				l := lead.Lead{Title: fmt.Sprintf("Cy Swept%d", i), Email: fmt.Sprintf("cy.swept%d@example.org", i), Company: fmt.Sprintf("Sweepco %d", i)}
				leads[i] = lead.NewPayload("shop", fmt.Sprintf("key-%d", i), l, time.Now())
				task, err := tc.codec.NewTask(leads[i])
				if err != nil {
					t.Fatal(err)
				}
				if _, err := client.Enqueue(task, lead.TaskOptions(queue, 3, lead.DefaultDedupTTL)...); err != nil {
					t.Fatal(err)
				}
			}
			workertest.ServeQueue(t, rc, queue) // completes them, strips nothing
			insp := asynq.NewInspectorFromRedisClient(rc)
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if qi, err := insp.GetQueueInfo(queue); err == nil && qi.Completed == n {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("tasks not all completed after 30s")
				}
			}
			kept := func() []string {
				dump := rds.Dump(t)
				var found []string
				for _, p := range leads {
					for _, f := range []string{p.Lead.Title, p.Lead.Email, p.Lead.Company} {
						if bytes.Contains(dump, []byte(f)) {
							found = append(found, f)
						}
					}
				}
				return found
			}
			bare := func() int {
				b := 0
				for _, p := range leads {
					info, err := insp.GetTaskInfo(queue, p.ID)
					if err != nil {
						t.Fatal(err)
					}
					if env, err := lead.ReadEnvelope(info.Payload); err == nil && env.Bare {
						b++
					}
				}
				return b
			}
			if got := bare(); got != 0 {
				t.Fatalf("%d tasks bare before the sweep, want none (the crash is not simulated)", got)
			}
			if tc.codec == (lead.Codec{}) && len(kept()) != 3*n {
				t.Fatalf("before the sweep Redis holds %q; want all %d fields (the search is blind)", kept(), 3*n)
			}
			h, err := worker.NewHandler(crmtest.New(crmclient.V2), rc, worker.Options{Queue: queue, Codec: sealed}, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			sweep := stripSweep{h: h, retention: lead.DefaultDedupTTL, met: metrics.New(reg), log: zap.NewNop(),
				now: func() time.Time { return time.Now().Add(2 * time.Minute) }} // past the settle: the crash was minutes ago
			for round, want := range []int{n, 0} {
				if got := sweep.once(ctx); got != want {
					t.Errorf("sweep %d stripped %d, want %d", round+1, got, want)
				}
				if got := counted(t, reg, "leadrelay_delivered_stripped_late_total"); got != n {
					t.Errorf("after sweep %d leadrelay_delivered_stripped_late_total = %v, want %d", round+1, got, n)
				}
				if got := bare(); got != n {
					t.Errorf("after sweep %d, %d of %d tasks hold their envelope alone", round+1, got, n)
				}
				if found := kept(); len(found) > 0 {
					t.Errorf("after sweep %d Redis still holds %q", round+1, found)
				}
			}
			for _, p := range leads {
				info, _ := insp.GetTaskInfo(queue, p.ID)
				if env, _ := lead.ReadEnvelope(info.Payload); env.Sent == "" || env.ID != p.ID || env.Site != p.Site {
					t.Errorf("lead %s's envelope %+v keeps no content hash as sent, or not its id and site", p.ID, env)
				}
			}
		})
	}
}

// testKeyring is a keyring of one fixed test key.
func testKeyring(t *testing.T) *seal.Keyring {
	t.Helper()
	k, err := seal.Parse("k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, seal.KeySize)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
