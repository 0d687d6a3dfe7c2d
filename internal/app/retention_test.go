package app

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/deadletter"
	"leadrelay/delivery"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

// TestPruneDead is a low finding: the dead-letter store kept personal data
// forever. With LEADRELAY_DEAD_RETENTION set, dead leads older than it go,
// from the store and from asynq's archive; younger ones stay.
func TestPruneDead(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ages := map[string]time.Duration{"old": 40 * 24 * time.Hour, "middle": 10 * 24 * time.Hour, "new": time.Hour}
	tests := []struct {
		name      string
		retention time.Duration
		gone      []string
	}{
		{"30 days", 30 * 24 * time.Hour, []string{"old"}},
		{"7 days", 7 * 24 * time.Hour, []string{"old", "middle"}},
		{"a year", 365 * 24 * time.Hour, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			rds := redistest.Start(t)
			store := deadletter.New(rds.Client())
			cli := asynq.NewClientFromRedisClient(rds.Client())
			insp := asynq.NewInspectorFromRedisClient(rds.Client())
			ids := map[string]string{}
			for name, age := range ages {
				p := lead.NewPayload("shop", name, lead.Lead{Email: name + "@example.com"}, now.Add(-age))
				b, _ := json.Marshal(p)
				if err := store.Put(ctx, deadletter.Record{LeadID: p.ID, Site: "shop", Queue: "leads", Reason: delivery.Reason{Code: delivery.CRMRejected}, DeadAt: now.Add(-age), Payload: b}); err != nil {
					t.Fatal(err)
				}
				task, err := lead.NewTask(p)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := cli.Enqueue(task, asynq.Queue("leads")); err != nil {
					t.Fatal(err)
				}
				if err := insp.ArchiveTask("leads", p.ID); err != nil {
					t.Fatal(err)
				}
				ids[name] = p.ID
			}
			n, err := pruneDead(ctx, store, insp, "leads", now.Add(-tc.retention))
			if err != nil || n != len(tc.gone) {
				t.Fatalf("pruneDead = %d, %v; want %d", n, err, len(tc.gone))
			}
			gone := map[string]bool{}
			for _, g := range tc.gone {
				gone[g] = true
			}
			for name, id := range ids {
				_, err := store.Get(ctx, id)
				if inStore := err == nil; inStore == gone[name] {
					t.Errorf("%s lead in the store: %v, want %v", name, inStore, !gone[name])
				}
				_, err = insp.GetTaskInfo("leads", id)
				if archived := !errors.Is(err, asynq.ErrTaskNotFound); archived == gone[name] {
					t.Errorf("%s lead in asynq's archive: %v (%v), want %v", name, archived, err, !gone[name])
				}
			}
		})
	}
}
