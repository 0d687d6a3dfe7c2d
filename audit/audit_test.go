package audit_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"leadrelay/audit"
	v1 "leadrelay/crm/v1"
	v2 "leadrelay/crm/v2"
	"leadrelay/crmclient"
	"leadrelay/crmsim"
	"leadrelay/crmsim/crmsimtest"
	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
	"leadrelay/notify/notifytest"
	"leadrelay/worker"
)

const simKey = "audit-test-key"

// relay is a worker delivering to a simulator, for an audit to check.
type relay struct {
	sim    *crmsim.Sim
	client *crmclient.Client
	rc     redis.UniversalClient
	h      *worker.Handler
}

// startRelay runs a worker against a simulator of version v with faults f
// (a 1 s CRM timeout and reconcile wait: issue 17's late commits
// duplicate with them), and the simulator's clock, nil for the time.
func startRelay(t *testing.T, v crmclient.APIVersion, f crmsim.Faults, clock func() time.Time) *relay {
	t.Helper()
	sim, url := crmsimtest.Start(t, crmsim.Config{APIKey: simKey, API: string(v), Seed: 7, Faults: f, Clock: clock})
	client, err := crmclient.New(url, "admin@example.com", simKey, crmclient.WithAPIVersion(v), crmclient.WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rc := redistest.Start(t).Client()
	o := worker.Options{
		Concurrency: 4, CRMTimeout: time.Second, ReconcileAfter: time.Second, BreakerThreshold: 1000,
		RetryInitial: 20 * time.Millisecond, RetryMaxDelay: 200 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		PollInterval: 20 * time.Millisecond, DelayedPollInterval: 50 * time.Millisecond,
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	h, err := worker.NewHandler(client, rc, o, log)
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(rc, h, o, log)
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Run(t.Context()) })
	t.Cleanup(wg.Wait) // after t.Context is cancelled
	return &relay{sim: sim, client: client, rc: rc, h: h}
}

// deliver enqueues n leads and waits until every one is delivered and
// every add the simulator took has stored its lead (late commits too).
func (r *relay) deliver(t *testing.T, n int) []lead.Payload {
	t.Helper()
	var ps []lead.Payload
	enq := asynq.NewClientFromRedisClient(r.rc)
	t.Cleanup(func() { _ = enq.Close() })
	for i := range n {
		l := lead.Lead{Title: "Ann", Email: "ann@example.com", Company: fmt.Sprintf("%s-co-%d", t.Name(), i), Description: "call me"}
		p := lead.NewPayload("shop", fmt.Sprintf("audit-%d", i), l, time.Now())
		ps = append(ps, p)
		task, err := lead.NewTask(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := enq.Enqueue(task, lead.TaskOptions(lead.DefaultQueue, 20, time.Hour)...); err != nil {
			t.Fatal(err)
		}
	}
	insp := asynq.NewInspectorFromRedisClient(r.rc)
	deadline := time.Now().Add(60 * time.Second)
	for {
		info, err := insp.GetQueueInfo(lead.DefaultQueue)
		st := r.sim.Stats()
		adds := st.Requests["v1.add"] + st.Requests["v2.add"]
		if err == nil && info.Completed == n && int64(st.Leads) == adds {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: queue %+v (err %v), %d leads stored of %d adds", info, err, st.Leads, adds)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// extra is how many CRM leads the simulator holds beyond one per lead.
func (r *relay) extra(n int) int { return len(r.sim.Leads()) - n }

type figures struct{ checked, dups, missing int }

func (f *figures) Audited(_ time.Time, checked, dups, missing int) {
	f.checked, f.dups, f.missing = checked, f.dups+dups, f.missing+missing
}

// TestAuditFindsDuplicates (issue 17, point 3 and "the relay audits its
// own promise"): the simulator commits a share of adds 7 s after the
// client's 1 s timeout, and the reconcile wait is the least the worker allows (2 s), so the look-up
// runs before the commit and the lead is sent again: the CRM holds some
// leads twice. The audit finds every one of them (v2 by its stamp at
// once, v1 by its content once it stayed unexplained for Settle), counts
// and notifies each once, and keeps the report; with no fault it finds
// none, until a duplicate is planted straight into the CRM. Before the
// audit nothing noticed.
func TestAuditFindsDuplicates(t *testing.T) {
	t.Parallel()
	const n = 24
	late := crmsim.Faults{LateCommitRate: 0.3, LateCommitDelay: crmsim.Duration(8 * time.Second)}
	for _, tc := range []struct {
		name   string
		v      crmclient.APIVersion
		faults crmsim.Faults
		dups   bool
	}{
		{"v2 late commits", crmclient.V2, late, true},
		{"v1 late commits", crmclient.V1, late, true},
		{"v2 no fault", crmclient.V2, crmsim.Faults{}, false},
		{"v1 no fault", crmclient.V1, crmsim.Faults{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := startRelay(t, tc.v, tc.faults, nil)
			ps := r.deliver(t, n)
			want := r.extra(n)
			if tc.dups && want == 0 {
				t.Fatalf("no late commit duplicated a lead; the test needs one: sim %+v, worker %+v", r.sim.Stats(), r.h.Stats())
			}
			offset := time.Duration(0)
			box, fig := &notifytest.Recorder{}, &figures{}
			a := audit.New(r.h.CRM(), r.rc, audit.Options{Codec: lead.NewCodec(nil), Settle: time.Minute,
				Clock: func() time.Time { return r.h.Now().Add(offset) }, Notifier: box, Recorder: fig})
			ctx := t.Context()
			first, err := a.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			offset = time.Minute // content matches settle
			rep, err := a.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d extra CRM leads; first audit: %s (settling %d); second: %s", want, first.Line(), first.Settling, rep.Line())
			if rep.Checked != n || len(rep.Duplicates) != want || len(rep.Missing) != 0 || rep.Settling != 0 {
				t.Errorf("report %+v, want %d checked, %d duplicates, none missing or settling", rep, n, want)
			}
			if fig.dups != want || fig.checked != n || fig.missing != 0 {
				t.Errorf("recorded %+v, want %d new duplicates over both audits", *fig, want)
			}
			if len(box.Events()) != min(want, 10) {
				t.Errorf("%d notifications, want %d", len(box.Events()), min(want, 10))
			}
			again, err := a.Run(ctx)
			if err != nil || len(again.Duplicates) != want || again.NewDuplicates != 0 {
				t.Errorf("third audit %+v (%v): want the same %d duplicates, none new", again, err, want)
			}
			if b, err := r.rc.Get(ctx, rdb.AuditLastKey).Bytes(); err != nil || len(b) == 0 {
				t.Errorf("no report kept: %v", err)
			}
			if tc.dups {
				return
			}
			// A duplicate planted straight into the CRM: a lead made again
			// as the relay makes it (v2 stamped with its id).
			sent := v1.Lead(ps[3])
			if tc.v == crmclient.V2 {
				sent = v2.Lead(ps[3])
			}
			if _, err := r.client.Add(ctx, sent); err != nil {
				t.Fatal(err)
			}
			offset = 2 * time.Minute
			if _, err := a.Run(ctx); err != nil {
				t.Fatal(err)
			}
			offset = 3 * time.Minute
			planted, err := a.Run(ctx)
			if err != nil || len(planted.Duplicates) != 1 || planted.Duplicates[0].LeadID != ps[3].ID || fig.dups != 1 {
				t.Errorf("after planting a duplicate of %s: %+v (%v), %d counted", ps[3].ID, planted, err, fig.dups)
			}
		})
	}
}

// TestAuditOneSecond: the CRM's datum has whole seconds and its list,
// newest first by datum, gives the leads of one second in ascending ids
// (seen on the real CRM), so an audit paging by datum met the lead below
// the floor before the delivered leads of its second and stopped there:
// here it read none of 12 and would miss a duplicate planted in that
// second (on the real CRM it took two delivered leads for missing).
// Every lead is made in one second, after one the relay did not make.
func TestAuditOneSecond(t *testing.T) {
	t.Parallel()
	const n = 12
	at := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	r := startRelay(t, crmclient.V2, crmsim.Faults{}, func() time.Time { return at })
	ctx := t.Context()
	if _, err := r.client.Add(ctx, crmclient.Lead{Lead: lead.Lead{Title: "Before", Email: "before@example.com"}}); err != nil {
		t.Fatal(err)
	}
	ps := r.deliver(t, n)
	a := audit.New(r.h.CRM(), r.rc, audit.Options{Codec: lead.NewCodec(nil), Clock: r.h.Now})
	clean, err := a.Run(ctx)
	if err != nil || clean.Checked != n || clean.Read != n || len(clean.Duplicates)+len(clean.Missing) != 0 {
		t.Fatalf("clean audit %+v (%v): want %d checked and read, nothing found", clean, err, n)
	}
	planted, err := r.client.Add(ctx, v2.Lead(ps[3]))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := a.Run(ctx)
	if err != nil || len(rep.Duplicates) != 1 || rep.Duplicates[0].CRMID != planted || len(rep.Missing) != 0 {
		t.Errorf("after planting CRM lead %d: %+v (%v), want it as the one duplicate", planted, rep, err)
	}
}
