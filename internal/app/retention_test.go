package app

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"leadrelay/deadletter"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
	"leadrelay/metrics"
	"leadrelay/notify"
	"leadrelay/notify/notifytest"
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
			ctx := t.Context()
			e := newDeadEnv(t)
			store, insp := e.store, e.insp
			ids := map[string]string{}
			for name, age := range ages {
				p := lead.NewPayload("shop", name, lead.Lead{Email: name + "@example.com"}, now.Add(-age))
				b, _ := json.Marshal(p)
				if err := store.Put(ctx, deadletter.Record{LeadID: p.ID, Site: "shop", Queue: "leads", Reason: delivery.Reason{Code: delivery.CRMRejected}, DeadAt: now.Add(-age), Payload: b}); err != nil {
					t.Fatal(err)
				}
				e.archive(t, p)
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

// TestSweepRecordsArchived is the chaos suite's missing dead lead: its
// dead-letter write failed while Redis was down, asynq archived it anyway,
// and operators, who read the dead-letter store, never heard of it. The
// sweep records every archived lead that has no record, with the reason
// its attempt record keeps, else RecordedLate; a lead that has a record
// keeps it, and sweeping twice (or from two processes) changes nothing.
// Each lead it records is notified as a dead lead, once: before, a late
// record told nobody.
func TestSweepRecordsArchived(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newDeadEnv(t)
	rds, store, insp := e.rds, e.store, e.insp
	kept := delivery.Reason{Code: delivery.CRMRejected, CRMCode: 7}
	tests := []struct {
		name     string
		attempt  *delivery.Reason // the attempt record's last reason; nil: no record
		recorded bool             // a dead-letter record exists already
		want     delivery.Reason
	}{
		{"reason in the attempt record", &kept, false, kept},
		{"transient reason: retries exhausted", &delivery.Reason{Code: delivery.CRMUnreachable}, false,
			delivery.Reason{Code: delivery.CRMUnreachable}.Exhausted()},
		{"no attempt record", nil, false, delivery.Reason{Code: delivery.RecordedLate}},
		{"recorded already", nil, true, delivery.Reason{Code: delivery.Unexpected}},
	}
	ids := map[string]string{}
	for i, tc := range tests {
		p := lead.NewPayload("shop", tc.name, lead.Lead{Email: "a@example.com"}, time.Now())
		ids[tc.name] = p.ID
		e.archive(t, p)
		if tc.attempt != nil {
			if err := rds.Client().HSet(ctx, rdb.AttemptKey(p.ID), "reason", tc.attempt.Encode(), "runs", i+2).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if tc.recorded {
			if err := store.Put(ctx, deadletter.Record{LeadID: p.ID, Site: "shop", Queue: "leads", Reason: tc.want}); err != nil {
				t.Fatal(err)
			}
		}
	}
	reg := prometheus.NewRegistry()
	met := metrics.New(reg)
	box := &notifytest.Recorder{}
	sweep := deadSweep{store: store, attempts: rdb.New(rds.Client()), insp: insp, queue: "leads", met: met, notify: box, log: zap.NewNop()}
	for round := range 2 {
		n, err := sweep.recordArchived(ctx)
		if want := []int{3, 0}[round]; err != nil || n != want {
			t.Fatalf("round %d: recordArchived = %d, %v; want %d", round, n, err, want)
		}
	}
	for _, tc := range tests {
		r, err := store.Get(ctx, ids[tc.name])
		if err != nil {
			t.Errorf("%s: no dead-letter record: %v", tc.name, err)
			continue
		}
		if r.Reason != tc.want || r.Site != "shop" {
			t.Errorf("%s: record's reason %+v, site %q; want %+v, shop", tc.name, r.Reason, r.Site, tc.want)
		}
		if !tc.recorded && len(r.Errors) != 1 {
			t.Errorf("%s: %d error entries after two sweeps, want 1", tc.name, len(r.Errors))
		}
	}
	if n, _ := store.Count(ctx); n != len(tests) {
		t.Errorf("store holds %d records, want %d", n, len(tests))
	}
	if got := counted(t, reg, "leadrelay_dead_letters_recorded_late_total"); got != 3 {
		t.Errorf("recorded-late metric = %v, want 3", got)
	}
	notified := map[string]delivery.Reason{}
	for _, ev := range box.Events() {
		if ev.Kind == notify.LeadDead && ev.Site == "shop" {
			notified[ev.LeadID] = ev.Reason
		}
	}
	for _, tc := range tests {
		if r, ok := notified[ids[tc.name]]; ok == tc.recorded || ok && r != tc.want {
			t.Errorf("%s: notified %v with %+v; want a notification with %+v unless it was recorded already", tc.name, ok, r, tc.want)
		}
	}
	if got := box.Events(); len(got) != 3 {
		t.Errorf("%d notifications after two sweeps, want 3: %+v", len(got), got)
	}
}

// deadEnv is where dead leads rest, on a real Redis of the test's own:
// the dead-letter store and asynq's archive, reached through its client
// and inspector.
type deadEnv struct {
	rds   *redistest.Server
	store *deadletter.Store
	cli   *asynq.Client
	insp  *asynq.Inspector
}

// TestSweepRaces (issue 18): the sweep reads an archived lead with no
// record, then writes its record. An erasure (which deletes the task,
// then the record) or a re-run from asynq's UI (which takes the task out
// of the archive) landing between the two must not leave a record: an
// erased person's sealed lead back in the store, or a dead record of a
// lead queued again. Before, the sweep wrote it whatever had happened.
// A lead left alone is still recorded.
func TestSweepRaces(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		between func(ctx context.Context, e *deadEnv, id string) error // what lands between the read and the write
		want    bool                                                   // a record stays
	}{
		{"erased", func(ctx context.Context, e *deadEnv, id string) error {
			if err := e.insp.DeleteTask("leads", id); err != nil {
				return err
			}
			return e.store.Forget(ctx, id)
		}, false},
		{"re-run", func(_ context.Context, e *deadEnv, id string) error { return e.insp.RunTask("leads", id) }, false},
		{"left alone", func(context.Context, *deadEnv, string) error { return nil }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			e := newDeadEnv(t)
			p := lead.NewPayload("shop", tc.name, lead.Lead{Email: "a@example.com"}, time.Now())
			e.archive(t, p)
			reg := prometheus.NewRegistry()
			sweep := deadSweep{store: e.store, attempts: rdb.New(e.rds.Client()), insp: e.insp, queue: "leads",
				met: metrics.New(reg), log: zap.NewNop(),
				between: func(ctx context.Context, id string) {
					if err := tc.between(ctx, e, id); err != nil {
						t.Error(err)
					}
				}}
			n, err := sweep.recordArchived(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, gerr := e.store.Get(ctx, p.ID)
			if got := gerr == nil; got != tc.want {
				t.Fatalf("a record stays: %v (%v), want %v", got, gerr, tc.want)
			}
			if c, _ := e.store.Count(ctx); c != map[bool]int{true: 1}[tc.want] || n != c {
				t.Errorf("store holds %d records, sweep counted %d; want %d", c, n, map[bool]int{true: 1}[tc.want])
			}
			if got := counted(t, reg, "leadrelay_dead_letters_recorded_late_total"); got != float64(n) {
				t.Errorf("recorded-late metric = %v, want %d", got, n)
			}
		})
	}
}

func newDeadEnv(t *testing.T) *deadEnv {
	t.Helper()
	rds := redistest.Start(t)
	cli := asynq.NewClientFromRedisClient(rds.Client())
	t.Cleanup(func() { _ = cli.Close() })
	return &deadEnv{rds: rds, store: deadletter.New(rds.Client()), cli: cli, insp: asynq.NewInspectorFromRedisClient(rds.Client())}
}

// archive puts p's task in asynq's archive of the "leads" queue, as asynq
// leaves a lead whose runs are spent.
func (e *deadEnv) archive(t *testing.T, p lead.Payload) {
	t.Helper()
	task, err := lead.NewTask(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.Enqueue(task, asynq.Queue("leads")); err != nil {
		t.Fatal(err)
	}
	if err := e.insp.ArchiveTask("leads", p.ID); err != nil {
		t.Fatal(err)
	}
}

// counted is the value of the counter name in reg (0 when absent).
func counted(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
