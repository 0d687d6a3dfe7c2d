package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"leadrelay/crmclient"
	"leadrelay/crmsim"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

// The tests in this file are the edges of the exactly-once promise that
// issue 8 lists, each as it was measured; every one failed before the
// delivery engine was made one explicit state machine.

var (
	lostConn = &crmclient.TransportError{Action: "add", Sent: true, Err: context.DeadlineExceeded}
	http500  = &crmclient.StatusError{Action: "add", StatusCode: 500}
)

// Case 1: the real v2 add stores the lead, then calls webhooks, then
// writes the uids stamp; a request killed in between leaves a stamp-less
// lead, which the look-up must still find (by content) instead of sending
// it again.
func TestEdgeV2StamplessAdd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, crmclient.V2, nil)
	task, p := newLeadTask(t)
	e.crm.NoStamp = true
	e.crm.SetFail(func(n int, _ crmclient.Lead) (bool, error) { return true, lostConn })
	if err := e.h.ProcessTask(ctx, task); judge(err).out != delivery.Uncertain {
		t.Fatalf("first run = %v, want uncertain", err)
	}
	// A genuine lead of other content, stamped by another relay lead, and
	// an unstamped one of other content: neither may be taken.
	fillOthers(e, 3)
	e.crm.SetFail(nil)
	e.clock.Advance(e.h.o.ReconcileAfter)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatalf("second run = %v", err)
	}
	if n := e.crm.PerCompany()[p.Lead.Company]; n != 1 {
		t.Fatalf("CRM holds the lead %d times, want 1", n)
	}
	if m := e.marker(p.ID); m == nil || m.Via != "reconcile" || m.CRMID != 101 {
		t.Fatalf("marker = %+v, want CRM lead 101 found by reconcile", m)
	}
}

// Case 2: a v1 CRM whose list ignores every parameter (as shipped) shows
// only the newest 200. A lead whose add was uncertain has scrolled off by
// the time the look-up may run; the journal of the CRM's newest page,
// refreshed every journalRefreshEvery sends by whichever worker sees the
// count first, still holds it. The worker that sent it need not be the one
// that refreshed the journal, and the CRM may have been empty at its send.
func TestEdgeV1ListIgnoresParameters(t *testing.T) {
	t.Parallel()
	for _, existing := range []int{0, 1} {
		t.Run(fmt.Sprintf("%d leads before", existing), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, crmclient.V1, nil)
			fillOthers(e, existing)
			quiet := newHandler(t, e.crm, e.rdb, e.o, nil) // sends the lead, refreshes no more than at start
			sctx, stop := context.WithCancel(ctx)
			t.Cleanup(stop)
			quiet.Start(sctx)
			task, p := newLeadTask(t)
			e.crm.SetFail(func(int, crmclient.Lead) (bool, error) { return true, lostConn })
			if err := quiet.ProcessTask(ctx, task); judge(err).out != delivery.Uncertain {
				t.Fatalf("first run = %v, want uncertain", err)
			}
			e.crm.SetFail(nil)
			// 300 more leads go through another worker meanwhile: the lead
			// scrolls off the CRM's newest 200.
			for range 300 {
				other, _ := newLeadTask(t)
				if err := e.h.ProcessTask(ctx, other); err != nil {
					t.Fatal(err)
				}
				waitJournal(t, e.h)
			}
			e.clock.Advance(e.h.o.ReconcileAfter)
			if err := quiet.ProcessTask(ctx, task); err != nil {
				t.Fatalf("look-up run = %v", err)
			}
			if n := e.crm.PerCompany()[p.Lead.Company]; n != 1 {
				t.Fatalf("CRM holds the lead %d times, want 1 (stats %+v)", n, quiet.Stats())
			}
			if s := quiet.Stats(); s.ReconcileFound != 1 || s.ReconcileJournal != 1 {
				t.Errorf("stats = %+v, want one look-up answered from the journal", s)
			}
		})
	}
}

// waitJournal waits (bounded) for a background journal refresh to end.
func waitJournal(t *testing.T, h *Handler) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	j, ok := h.api.(interface{ Refreshing() bool })
	for ok && j.Refreshing() {
		if time.Now().After(deadline) {
			t.Fatal("journal refresh did not end within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Case 3: an idempotency key reused, after the lead's admission record
// expired, for a lead of other content: the worker must deliver it, not
// skip it as a duplicate of the first.
func TestEdgeMarkerOfOtherContent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, crmclient.V2, nil)
	first := lead.NewPayload("shop", "order-7", lead.Lead{Title: "Ann", Company: "first-co"}, time.Now())
	second := lead.NewPayload("shop", "order-7", lead.Lead{Title: "Bob", Company: "second-co"}, time.Now())
	if first.ID != second.ID || first.Sum == second.Sum {
		t.Fatal("test leads must share an id and differ in content")
	}
	for _, p := range []lead.Payload{first, second} {
		task, _ := lead.NewTask(p)
		err := e.h.ProcessTask(ctx, task)
		var de *DelayError
		if errors.As(err, &de) { // the stale marker was dropped: run again
			err = e.h.ProcessTask(ctx, task)
		}
		if err != nil {
			t.Fatalf("%s: %v", p.Lead.Company, err)
		}
	}
	per := e.crm.PerCompany()
	if per["first-co"] != 1 || per["second-co"] != 1 {
		t.Fatalf("CRM leads = %v, want each lead once", per)
	}
	if m := e.marker(second.ID); m == nil || !lead.SameContent(m.Sum, second.Sum, &second.Lead) || lead.SameContent(m.Sum, first.Sum, &first.Lead) {
		t.Fatalf("marker = %+v, want the second lead's", m)
	}
	// A true repeat of the second is a duplicate.
	task, _ := lead.NewTask(second)
	if err := e.h.ProcessTask(ctx, task); err != nil || e.h.Stats().Duplicates != 1 {
		t.Fatalf("repeat = %v, stats %+v", err, e.h.Stats())
	}
}

// Case 4: asynq archives a task whenever Retried >= MaxRetry, whatever
// IsFailure says (TestSpareRun measures it). Backpressure on a lead's last
// counted attempt must not archive it behind LeadRelay's back: the run is
// not its last (tasks carry one spare run), and where the spare run is
// spent (asynq's recoverer counts an expired lease as a failure, which
// leaves Retried == MaxRetry; MaxRetry(0) starts there), it is
// dead-lettered with its reason.
func TestEdgeBackpressureOnLastAttempt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     []asynq.Option
		refusals int64
		want     string // delivered | dead
	}{
		{"budget of one retry, refused on the last", lead.TaskOptions(lead.DefaultQueue, 1, time.Hour), 3, "delivered"},
		{"spare run spent", []asynq.Option{asynq.Queue(lead.DefaultQueue), asynq.MaxRetry(0)}, 1, "dead"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			rc := srv.Client()
			crm := newFakeCRM(crmclient.V2)
			crm.SetFail(func(n int, _ crmclient.Lead) (bool, error) {
				if n == 1 {
					return false, &crmclient.StatusError{Action: "add", StatusCode: 503}
				}
				return true, nil
			})
			box := &deadBox{reasons: map[string]delivery.Reason{}}
			lim := &refuseAfterFirst{left: tc.refusals}
			if tc.want == "dead" {
				lim.first.Store(true) // refuse from the first run
			}
			o := Options{Concurrency: 1, RetryInitial: 10 * time.Millisecond, RetryMaxDelay: 20 * time.Millisecond,
				BreakerThreshold: 1000, PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second,
				Limiter: lim, DeadLetters: box}
			runWorkers(t, crm, rc, o, 1)
			task, p := newLeadTask(t)
			if _, err := asynq.NewClientFromRedisClient(rc).Enqueue(task, tc.opts...); err != nil {
				t.Fatal(err)
			}
			insp := asynq.NewInspectorFromRedisClient(rc)
			deadline := time.Now().Add(20 * time.Second)
			for {
				info, err := insp.GetTaskInfo(lead.DefaultQueue, p.ID)
				if err == nil && (info.State == asynq.TaskStateCompleted || info.State == asynq.TaskStateArchived) {
					reason, inBox := box.reason(p.ID)
					switch tc.want {
					case "delivered":
						if info.State != asynq.TaskStateCompleted || inBox {
							t.Fatalf("task %s, dead store %q; want delivered", info.State, reason)
						}
					case "dead":
						if info.State != asynq.TaskStateArchived || reason.Code != delivery.RetriesExhausted || reason.Last != delivery.RateLimit {
							t.Fatalf("task %s, dead store %+v (%v); want archived with its reason", info.State, reason, inBox)
						}
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("task not settled after 20s: %+v %v", info, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// refuseAfterFirst admits the first CRM request, then refuses left times.
type refuseAfterFirst struct {
	first atomic.Bool // set: the first request was admitted
	left  int64
	n     atomic.Int64
}

func (r *refuseAfterFirst) Acquire(context.Context) (func(), error) {
	if r.first.CompareAndSwap(false, true) {
		return func() {}, nil
	}
	if r.n.Add(1) <= r.left {
		return nil, &DelayError{Delay: 10 * time.Millisecond, Reason: delivery.Reason{Code: delivery.RateLimit}}
	}
	return func() {}, nil
}

// Case 5: a current SalesMan answers every v1 add (and info) with HTTP 500
// and an empty body, while stat works. That is a configuration problem:
// deliveries pause without spending attempts, readiness says "set
// LEADRELAY_CRM_API=v2", nothing is resent or dead-lettered.
func TestEdgeV1BrokenAnswers500(t *testing.T) {
	t.Parallel()
	for _, viaStart := range []bool{false, true} {
		t.Run(fmt.Sprintf("preflight at start %v", viaStart), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, crmclient.V1, nil)
			e.crm.SetFail(func(int, crmclient.Lead) (bool, error) { return false, http500 })
			e.crm.InfoErr = &crmclient.StatusError{Action: "info", StatusCode: 500}
			if viaStart {
				if problem, err := e.h.Preflight(ctx); err != nil || problem.Code != delivery.ConfigV1Broken {
					t.Fatalf("Preflight = %+v, %v; want the v1 add broken", problem, err)
				}
			}
			for range 3 {
				task, _ := newLeadTask(t)
				err := e.h.ProcessTask(ctx, task)
				if IsFailure(err) || judge(err).out != delivery.Paused {
					t.Fatalf("run = %v, want a pause that spends no attempt", err)
				}
			}
			if err := e.h.Ready(ctx); err == nil || !strings.Contains(err.Error(), "LEADRELAY_CRM_API=v2") {
				t.Fatalf("Ready = %v, want the v2 hint", err)
			}
			if adds, _ := e.crm.Counts(); adds > 1 {
				t.Errorf("adds = %d: a paused fleet kept calling the CRM", adds)
			}
		})
	}
}

// Case 6: a configuration problem seen by one worker is a fleet fact:
// another worker's readiness reports it within healthCacheFor (a second),
// without having hit it.
func TestEdgeConfigProblemIsFleetWide(t *testing.T) {
	t.Parallel()
	e := newEnv(t, crmclient.V2, nil)
	other := newHandler(t, newFakeCRM(crmclient.V2), e.rdb, e.o, nil)
	if err := other.Ready(ctx); err != nil {
		t.Fatalf("other worker not ready before: %v", err)
	}
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) {
		return false, &crmclient.APIError{Action: "add", Code: 401, Text: "Неизвестный пользователь"}
	})
	task, _ := newLeadTask(t)
	if err := e.h.ProcessTask(ctx, task); judge(err).out != delivery.Paused {
		t.Fatalf("run = %v, want a pause", err)
	}
	e.clock.Advance(healthCacheFor)
	if err := other.Ready(ctx); err == nil || !strings.Contains(err.Error(), "LEADRELAY_CRM_LOGIN") {
		t.Fatalf("other worker's Ready = %v, want the problem", err)
	}
	// The other worker's deliveries pause too, without calling its CRM.
	otherTask, _ := newLeadTask(t)
	if err := other.ProcessTask(ctx, otherTask); judge(err).out != delivery.Paused && judge(err).out != delivery.Backpressure {
		t.Fatalf("other worker's run = %v, want postponed", err)
	}
}

// Case 7: HTTP 500 (and 502, and a 200 error page) is a complete answer:
// the CRM's request is over, so the lead is looked up at once, in the same
// run, instead of after LEADRELAY_RECONCILE_AFTER.
func TestEdgeAnsweredLooksUpAtOnce(t *testing.T) {
	t.Parallel()
	for _, stored := range []bool{true, false} {
		t.Run(fmt.Sprintf("stored %v", stored), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, crmclient.V2, nil)
			e.crm.SetFail(func(n int, _ crmclient.Lead) (bool, error) {
				if n == 1 {
					return stored, http500
				}
				return true, nil
			})
			task, p := newLeadTask(t)
			err := e.h.ProcessTask(ctx, task)
			if stored {
				if err != nil || e.marker(p.ID) == nil {
					t.Fatalf("run = %v, want delivered in the same run", err)
				}
			} else {
				if judge(err).out != delivery.Uncertain {
					t.Fatalf("run = %v, want a counted retry", err)
				}
				if st := e.attempt(p.ID)["state"]; st != rdb.StateFailed {
					t.Fatalf("attempt state = %q, want failed (looked up: not stored)", st)
				}
				// No clock advance: the next run sends at once.
				if err := e.h.ProcessTask(ctx, task); err != nil {
					t.Fatalf("second run = %v", err)
				}
			}
			if n := e.crm.PerCompany()[p.Lead.Company]; n != 1 {
				t.Fatalf("CRM holds the lead %d times, want 1", n)
			}
		})
	}
}

// TestReconcileStopsAtWatermark: a v2 look-up pages newest first only down
// to the highest CRM id recorded before the lead's first send; a CRM full
// of older leads costs a page or two, not all of them.
func TestReconcileStopsAtWatermark(t *testing.T) {
	t.Parallel()
	e := newEnv(t, crmclient.V2, nil)
	for range 450 { // older leads, delivered through the relay
		other, _ := newLeadTask(t)
		if err := e.h.ProcessTask(ctx, other); err != nil {
			t.Fatal(err)
		}
	}
	task, p := newLeadTask(t)
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) { return false, lostConn })
	if err := e.h.ProcessTask(ctx, task); judge(err).out != delivery.Uncertain {
		t.Fatalf("first run = %v, want uncertain", err)
	}
	e.crm.SetFail(nil)
	listed := e.crm.Lists()
	e.clock.Advance(e.h.o.ReconcileAfter)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatalf("look-up run = %v", err)
	}
	lists := e.crm.Lists() - listed
	// The watermark is the top this worker saw at its previous run, so
	// one page more may be read; without it, all three pages are.
	if lists > 2 || e.h.Stats().ReconcileNotFound != 1 || e.crm.PerCompany()[p.Lead.Company] != 1 {
		t.Fatalf("lists = %d, stats %+v; want at most two of three pages, not found, then sent once", lists, e.h.Stats())
	}
}

// feedbackBox is a FeedbackLimiter that records the outcomes it is told.
type feedbackBox struct {
	mu  sync.Mutex
	got []CRMOutcome
}

func (f *feedbackBox) Acquire(context.Context) (func(), error) { return func() {}, nil }
func (f *feedbackBox) AcquireFeedback(context.Context) (func(CRMOutcome), error) {
	return func(o CRMOutcome) { f.mu.Lock(); f.got = append(f.got, o); f.mu.Unlock() }, nil
}

// TestHandlerFeedsTheLimiter: every add tells an adaptive limiter how the
// CRM coped, once: a success is an answer, a 503 a failure (judged by its
// share).
func TestHandlerFeedsTheLimiter(t *testing.T) {
	t.Parallel()
	box := &feedbackBox{}
	e := newEnv(t, crmclient.V2, func(o *Options) { o.Limiter = box })
	e.crm.SetFail(func(n int, _ crmclient.Lead) (bool, error) {
		if n == 1 {
			return false, &crmclient.StatusError{Action: "add", StatusCode: 503}
		}
		return true, nil
	})
	task, _ := newLeadTask(t)
	_ = e.h.ProcessTask(ctx, task)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	box.mu.Lock()
	defer box.mu.Unlock()
	if len(box.got) != 2 || box.got[0] != CRMFailed || box.got[1] != CRMAnswered {
		t.Fatalf("limiter told %v, want [failed answered]", box.got)
	}
}

// TestLookUpComparesWhatWasSent: the client changes a lead on its way (v2's
// ip line in the description, emoji stand-ins), and the CRM lists what it
// received; a look-up by content must compare that, or an unstamped lead
// is sent twice.
func TestLookUpComparesWhatWasSent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, crmclient.V2, nil)
	e.crm.NoStamp = true
	e.crm.Transform = func(l crmclient.Lead) crmclient.Lead {
		l.Description += "\nIP: 192.0.2.7"
		return l
	}
	task, p := newLeadTask(t)
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) { return true, lostConn })
	if err := e.h.ProcessTask(ctx, task); judge(err).out != delivery.Uncertain {
		t.Fatalf("first run = %v, want uncertain", err)
	}
	e.crm.SetFail(nil)
	e.clock.Advance(e.h.o.ReconcileAfter)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if n := e.crm.PerCompany()[p.Lead.Company]; n != 1 || e.h.Stats().ReconcileFound != 1 {
		t.Fatalf("CRM holds the lead %d times (stats %+v), want 1, found by the look-up", n, e.h.Stats())
	}
}

// TestAddWaitsForReplicas: with WaitReplicas, an add goes out only once a
// replica holds the lead's "sending" record, so a failover cannot forget
// that the add was sent (and let the next run add again without a look-up).
// Without enough replicas the run is postponed and nothing is sent.
func TestAddWaitsForReplicas(t *testing.T) {
	t.Parallel()
	primary := redistest.Start(t)
	e := newEnvOn(t, primary, crmclient.V2, func(o *Options) { o.WaitReplicas = 1; o.WaitTimeout = 200 * time.Millisecond })
	task, p := newLeadTask(t)
	err := e.h.ProcessTask(ctx, task)
	var de *DelayError
	if !errors.As(err, &de) || IsFailure(err) {
		t.Fatalf("run without a replica = %v, want postponed", err)
	}
	if adds, _ := e.crm.Counts(); adds != 0 || e.attempt(p.ID)["state"] != "" {
		t.Fatalf("adds = %d, attempt %v: sent without a replica, or left a record", adds, e.attempt(p.ID))
	}
	redistest.StartReplica(t, primary)
	deadline := time.Now().Add(20 * time.Second)
	for err = e.h.ProcessTask(ctx, task); err != nil; err = e.h.ProcessTask(ctx, task) {
		if time.Now().After(deadline) {
			t.Fatalf("run with a replica = %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the replica's first sync
	}
	if adds, _ := e.crm.Counts(); adds != 1 {
		t.Fatalf("adds = %d, want 1", adds)
	}
}

// circuitWatch is an Observer that remembers whether any worker saw the
// circuit open.
type circuitWatch struct {
	nopObserver
	opened atomic.Bool
}

func (c *circuitWatch) CRMCircuitOpen(open bool) {
	if open {
		c.opened.Store(true)
	}
}

// TestPoisonLeads (issue 17, point 4): a few leads that always make the
// CRM answer HTTP 500 with an empty body, among many ordinary ones, two
// workers (real asynq servers) on a real Redis, the simulator as the CRM,
// an adaptive limit. The poison leads spend their own attempts and die
// with their reason; the circuit never opens; the adaptive limit is never
// cut (its floor here is the limit itself); every ordinary lead is
// delivered once. Before, every retry of every poison lead counted toward
// the circuit and cut the limit (8 cuts, the limit down to 1, in 5.7 s),
// and once only poison leads were left, their retries opened the circuit.
func TestPoisonLeads(t *testing.T) {
	t.Parallel()
	const (
		ordinary = 200
		poison   = 5
		marker   = "POISON-PILL"
		apiKey   = "poison-test-key"
	)
	sim, client := startSim(t, crmsim.Config{APIKey: apiKey, API: "v2", Seed: 1,
		Faults: crmsim.Faults{PoisonMarker: marker}})
	rc := redistest.Start(t).Client()
	var cuts atomic.Int64
	lim := NewRedisLimiter(rc, 0, 8, 0, WithAdaptiveConcurrency(true), WithLimitReport(func(c AdaptiveChange) {
		if c.Verdict == AdaptiveCut {
			cuts.Add(1)
		}
	}))
	watch := &circuitWatch{}
	box := &deadBox{reasons: map[string]delivery.Reason{}}
	o := Options{
		Concurrency: 8, RetryInitial: 20 * time.Millisecond, RetryMaxDelay: 100 * time.Millisecond, MaxRetry: 3,
		CRMTimeout: 5 * time.Second, ShutdownTimeout: 5 * time.Second, PollInterval: 20 * time.Millisecond,
		DelayedPollInterval: 50 * time.Millisecond, Limiter: lim, Observer: watch, DeadLetters: box,
	}
	workers := runWorkers(t, client, rc, o, 2)

	enq := asynq.NewClientFromRedisClient(rc)
	var good, bad []lead.Payload
	for i := range ordinary + poison {
		l := lead.Lead{Title: "Ann", Email: "ann@example.com", Company: fmt.Sprintf("co-%d", i), Description: "call me"}
		isPoison := i%(ordinary/poison) == ordinary/poison/2 && len(bad) < poison
		if isPoison {
			l.Description = "call me " + marker
		}
		p := lead.NewPayload("shop", fmt.Sprintf("poison-test-%d", i), l, time.Now())
		task, err := lead.NewTask(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := enq.Enqueue(task, lead.TaskOptions(lead.DefaultQueue, o.MaxRetry, time.Hour)...); err != nil {
			t.Fatal(err)
		}
		if isPoison {
			bad = append(bad, p)
		} else {
			good = append(good, p)
		}
	}
	store := rdb.New(rc)
	deadline := time.Now().Add(90 * time.Second)
	for {
		delivered := 0
		for _, p := range good {
			if _, m, _ := store.Lead(ctx, p.ID); m != nil {
				delivered++
			}
		}
		dead := 0
		for _, p := range bad {
			if _, ok := box.reason(p.ID); ok {
				dead++
			}
		}
		if delivered == len(good) && dead == len(bad) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90s: %d of %d ordinary leads delivered, %d of %d poison leads dead",
				delivered, len(good), dead, len(bad))
		}
		time.Sleep(50 * time.Millisecond)
	}

	stored := map[string]int{}
	for _, l := range sim.Leads() {
		stored[l.Company]++
	}
	for _, p := range good {
		if n := stored[p.Lead.Company]; n != 1 {
			t.Errorf("ordinary lead %s is in the CRM %d times, want 1", p.ID, n)
		}
	}
	want := delivery.Reason{Code: delivery.RetriesExhausted, Last: delivery.CRMErrorPage, HTTPStatus: 500}
	for _, p := range bad {
		if n := stored[p.Lead.Company]; n != 0 {
			t.Errorf("poison lead %s is in the CRM %d times", p.ID, n)
		}
		if r, _ := box.reason(p.ID); r != want {
			t.Errorf("poison lead %s died of %+v, want %+v", p.ID, r, want)
		}
	}
	var faults int64
	for _, w := range workers {
		faults += w.h.Stats().LeadFaults
	}
	limit, _ := lim.(*redisLimiter).Limit(ctx)
	t.Logf("poison adds answered 500: %d; failures told apart as the lead's: %d; limit cuts: %d; limit now %.0f",
		sim.Stats().Faults["poison"], faults, cuts.Load(), limit)
	if watch.opened.Load() {
		t.Error("the circuit opened")
	}
	if n := cuts.Load(); n != 0 {
		t.Errorf("the adaptive limit was cut %d times, want never (an HTTP 500 is no load signal)", n)
	}
	if faults == 0 {
		t.Error("no failure was told apart as its lead's")
	}
}

// TestSkewedClock (issue 17, point 2): two workers on one Redis, one whose
// host clock runs 5 minutes ahead. An add of the other one times out (the
// CRM commits it later); the skewed worker must not look it up before the
// reconcile wait is over, so it neither misses the late commit nor sends
// the lead again. It logs its offset once. Before, the settle time written
// on one clock was read on the other: the skewed worker looked up at once,
// found nothing, and added the lead a second time.
func TestSkewedClock(t *testing.T) {
	t.Parallel()
	rc := redistest.Start(t).Client()
	fake := newFakeCRM(crmclient.V2)
	var late crmclient.Lead
	fake.SetFail(func(n int, l crmclient.Lead) (bool, error) {
		if n == 1 {
			late = l // the CRM commits it after the client gave up
			return false, lostConn
		}
		return true, nil
	})
	o := Options{CRMTimeout: time.Second, BreakerThreshold: 1000}
	core, logs := observer.New(zap.WarnLevel)
	skewed := o
	skewed.Clock = func() time.Time { return time.Now().Add(5 * time.Minute) }
	right := newHandler(t, fake, rc, o, nil)
	ahead := newHandler(t, fake, rc, skewed, zap.New(core))
	sctx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	right.Start(sctx)
	ahead.Start(sctx)

	task, p := newLeadTask(t)
	if err := right.ProcessTask(ctx, task); judge(err).out != delivery.Uncertain {
		t.Fatalf("first run = %v, want uncertain", err)
	}
	err := ahead.ProcessTask(ctx, task)
	var de *DelayError
	if !errors.As(err, &de) || de.Reason.Code != delivery.LookUpWait {
		t.Fatalf("the skewed worker's run = %v, want postponed until the reconcile wait is over", err)
	}
	if s := ahead.Stats(); s.ReconcileNotFound+s.ReconcileFound+s.ReconcileUnknown != 0 {
		t.Fatalf("the skewed worker looked the lead up early: %+v", s)
	}
	fake.Store(late)
	// Each worker measures its offset to Redis's clock within half a round
	// trip, so two workers may disagree by a few milliseconds: a wait is
	// right when it is the reconcile wait give or take ClockSkewWarn, and
	// wrong by the 5 minutes of skew this test is about.
	if de.Delay > right.o.ReconcileAfter+ClockSkewWarn {
		t.Fatalf("postponed %v, want about the reconcile wait %v", de.Delay, right.o.ReconcileAfter)
	}
	for range 3 { // the wait, then at most two rounding remainders
		time.Sleep(de.Delay) // bounded above: the reconcile wait and ClockSkewWarn
		err = ahead.ProcessTask(ctx, task)
		if !errors.As(err, &de) || de.Reason.Code != delivery.LookUpWait || de.Delay > ClockSkewWarn {
			break
		}
	}
	if err != nil {
		t.Fatalf("look-up run = %v", err)
	}
	if n := fake.PerCompany()[p.Lead.Company]; n != 1 {
		t.Fatalf("the CRM holds the lead %d times, want 1", n)
	}

	// The other way: the skewed worker's settle time does not hold the
	// right one back by its 5 minutes.
	task2, _ := newLeadTask(t)
	fake.SetFail(func(int, crmclient.Lead) (bool, error) { return false, lostConn })
	if err := ahead.ProcessTask(ctx, task2); judge(err).out != delivery.Uncertain {
		t.Fatalf("skewed worker's send = %v, want uncertain", err)
	}
	if err := right.ProcessTask(ctx, task2); !errors.As(err, &de) || de.Delay > right.o.ReconcileAfter+ClockSkewWarn {
		t.Fatalf("the right worker's run = %v, want postponed about %v", err, right.o.ReconcileAfter)
	}

	warned := logs.FilterMessageSnippet("clock differs from Redis's").All()
	if len(warned) != 1 {
		t.Fatalf("%d clock warnings, want 1", len(warned))
	}
	off, _ := warned[0].ContextMap()["offset"].(time.Duration)
	if off > -5*time.Minute+time.Second || off < -5*time.Minute-time.Second {
		t.Errorf("logged offset %v, want about -5m", off)
	}
}

// TestLookUpAgainWhenEarly (issue 17, point 3): an add timed out and the
// CRM commits it 8 s later. The record's settle time was written by a
// worker with LEADRELAY_RECONCILE_AFTER=2s; the fleet now runs with 10s
// (what the CRM may take). A look-up the old settle time lets run finds
// nothing: the lead is looked up again once 10 s since the send have
// passed, and found, not sent a second time. Before, it was resent at
// once, and the CRM held it twice.
func TestLookUpAgainWhenEarly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, crmclient.V2, func(o *Options) { o.CRMTimeout, o.ReconcileAfter = time.Second, 2*time.Second })
	var late crmclient.Lead
	e.crm.SetFail(func(n int, l crmclient.Lead) (bool, error) {
		if n == 1 {
			late = l
			return false, lostConn
		}
		return true, nil
	})
	task, p := newLeadTask(t)
	if err := e.h.ProcessTask(ctx, task); judge(err).out != delivery.Uncertain {
		t.Fatalf("first run = %v, want uncertain", err)
	}
	o := e.o
	o.ReconcileAfter = 10 * time.Second
	careful := newHandler(t, e.crm, e.rdb, o, nil)
	e.clock.Advance(2 * time.Second) // the old settle time has passed
	err := careful.ProcessTask(ctx, task)
	var de *DelayError
	if !errors.As(err, &de) || de.Reason.Code != delivery.LookUpWait || de.Delay != 8*time.Second {
		t.Fatalf("early look-up run = %v, want postponed 8s to look up again", err)
	}
	if adds, _ := e.crm.Counts(); adds != 1 {
		t.Fatalf("%d adds after the early look-up, want 1 (no resend)", adds)
	}
	e.crm.Store(late) // the CRM commits the first add
	e.clock.Advance(de.Delay)
	if err := careful.ProcessTask(ctx, task); err != nil {
		t.Fatalf("second look-up run = %v", err)
	}
	if n := e.crm.PerCompany()[p.Lead.Company]; n != 1 {
		t.Fatalf("the CRM holds the lead %d times, want 1", n)
	}
	if m := e.marker(p.ID); m == nil || m.Via != "reconcile" {
		t.Fatalf("marker = %+v, want found by the second look-up", m)
	}
}

// TestOldMarkerAcrossKeyedDigests (issue 18): a delivered marker written
// before digests were keyed (the plain v1 digest's first 64 bits) still
// stops a repeat whose task an upgraded intake digested under the id key:
// no second add. Another lead under the same id is still a new lead.
func TestOldMarkerAcrossKeyedDigests(t *testing.T) {
	t.Parallel()
	k, err := lead.NewIDKey([]byte(strings.Repeat("k", lead.IDKeySize)))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, crmclient.V2, func(o *Options) { o.IDKey = k })
	ann := lead.Lead{Title: "Ann", Company: "ann-co"}
	old := lead.NewPayload("shop", "order-8", ann, time.Now()) // v1 Sum: the previous version's
	task, _ := lead.NewTask(old)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	again := old
	again.Sum = string(k.Digest(ann))
	task, _ = lead.NewTask(again)
	if err := e.h.ProcessTask(ctx, task); err != nil || e.h.Stats().Duplicates != 1 {
		t.Fatalf("repeat digested under the key = %v, stats %+v; want a duplicate", err, e.h.Stats())
	}
	bob := lead.Lead{Title: "Bob", Company: "bob-co"}
	other := lead.NewPayload("shop", "order-8", bob, time.Now())
	other.Sum = string(k.Digest(bob))
	task, _ = lead.NewTask(other)
	for i := 0; i < 2; i++ { // the stale marker is dropped, then the lead goes
		err := e.h.ProcessTask(ctx, task)
		var de *DelayError
		if err != nil && !errors.As(err, &de) {
			t.Fatal(err)
		}
	}
	if per := e.crm.PerCompany(); per["ann-co"] != 1 || per["bob-co"] != 1 {
		t.Fatalf("CRM leads = %v, want each lead once", per)
	}
}
