package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	v2 "leadrelay/crm/v2"
	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

var ctx = context.Background()

func TestHandlerDelivers(t *testing.T) {
	t.Parallel()
	for _, v := range []crmclient.APIVersion{crmclient.V1, crmclient.V2} {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, v, nil)
			task, p := newLeadTask(t)
			if err := e.h.ProcessTask(ctx, task); err != nil {
				t.Fatalf("ProcessTask = %v", err)
			}
			m := e.marker(p.ID)
			if m == nil || m.CRMID != 101 || m.LeadID != p.ID || !m.At.Equal(e.clock.Now()) {
				t.Fatalf("marker = %+v", m)
			}
			ttl := e.rdb.PTTL(ctx, rdb.DeliveredKey(p.ID)).Val()
			if ttl < 29*24*time.Hour {
				t.Errorf("marker TTL = %v, want about 30 days", ttl)
			}
			if n := e.rdb.Exists(ctx, rdb.LockKey(p.ID), rdb.AttemptKey(p.ID)).Val(); n != 0 {
				t.Errorf("lock/attempt keys left behind: %d", n)
			}
			uids := e.crm.Leads()[0].UIDs
			if v == crmclient.V2 && uids[v2.UIDKey] != p.ID {
				t.Errorf("v2 uids = %v, want %s=%s", uids, v2.UIDKey, p.ID)
			}
			if holder := e.rdb.HGet(ctx, rdb.ClaimsKey(101), "101").Val(); holder != p.ID {
				t.Errorf("CRM id 101 claimed by %q, want %s", holder, p.ID)
			}
			// A re-run after success (crash before ack, lease expiry,
			// manual re-run) must not post twice.
			for range 3 {
				if err := e.h.ProcessTask(ctx, task); err != nil {
					t.Fatalf("re-run = %v", err)
				}
			}
			if adds, _ := e.crm.Counts(); adds != 1 {
				t.Errorf("adds = %d, want 1", adds)
			}
			if s := e.h.Stats(); s.Delivered != 1 || s.Duplicates != 3 {
				t.Errorf("stats = %+v", s)
			}
			if n, _ := rdb.New(e.rdb).DeliveredOn(ctx, e.clock.Now()); n != 1 {
				t.Errorf("delivered today = %d, want 1 (re-runs do not count)", n)
			}
		})
	}
}

func TestHandlerMarkerSkipsCRM(t *testing.T) {
	t.Parallel()
	e := newEnv(t, crmclient.V2, nil)
	task, p := newLeadTask(t)
	e.rdb.Set(ctx, rdb.DeliveredKey(p.ID), `{"crm_id":7,"at":"2026-01-01T00:00:00Z","lead_id":"`+p.ID+`"}`, time.Hour)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if adds, _ := e.crm.Counts(); adds != 0 {
		t.Errorf("adds = %d, want 0", adds)
	}
}

func TestHandlerErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, crmclient.V1, nil)
	tests := []struct {
		name    string
		err     error
		stored  bool
		skip    bool // wraps asynq.SkipRetry
		failure bool // IsFailure
		state   string
		code    delivery.Code
	}{
		{"permanent", &crmclient.APIError{Action: "add", Code: 1, Text: "Ошибка добавления лида"}, false, true, true, rdb.StateFailed, delivery.CRMRejected},
		{"transient", &crmclient.StatusError{Action: "add", StatusCode: 503}, false, false, true, rdb.StateFailed, delivery.CRMUnreachable},
		{"rate limited", &crmclient.StatusError{Action: "add", StatusCode: 429, RetryAfter: time.Minute}, false, false, false, rdb.StateFailed, delivery.CRMRateLimited},
		{"ambiguous", &crmclient.TransportError{Action: "add", Sent: true, Err: io.ErrUnexpectedEOF}, true, false, true, rdb.StateUncertain, delivery.CRMTimeout},
		// Last: a configuration problem opens the circuit for everyone.
		{"config", &crmclient.APIError{Action: "add", Code: 400, Text: "Не верный API key"}, false, false, false, rdb.StateFailed, delivery.ConfigAPIKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: the cases share one fake CRM.
			task, p := newLeadTask(t)
			e.crm.SetFail(func(int, crmclient.Lead) (bool, error) { return tc.stored, tc.err })
			err := e.h.ProcessTask(ctx, task)
			if err == nil {
				t.Fatal("ProcessTask = nil")
			}
			if got := errors.Is(err, asynq.SkipRetry); got != tc.skip {
				t.Errorf("SkipRetry = %v, want %v (%v)", got, tc.skip, err)
			}
			if got := IsFailure(err); got != tc.failure {
				t.Errorf("IsFailure = %v, want %v (%v)", got, tc.failure, err)
			}
			if got := judge(err).reason.Code; got != tc.code {
				t.Errorf("reason %s, want %s (%v)", got, tc.code, err)
			}
			if got := delivery.ParseReason(e.attempt(p.ID)["reason"]); got.Code != tc.code {
				t.Errorf("recorded reason %+v, want %s", got, tc.code)
			}
			if st := e.attempt(p.ID)["state"]; st != tc.state {
				t.Errorf("attempt state = %q, want %q", st, tc.state)
			}
			if e.marker(p.ID) != nil {
				t.Error("marker written after a failure")
			}
			if e.rdb.Exists(ctx, rdb.LockKey(p.ID)).Val() != 0 {
				t.Error("lock not released")
			}
		})
	}
	if e.h.ConfigProblem(ctx).IsZero() || e.h.Ready(ctx) == nil {
		t.Error("ConfigProblem()/Ready() silent after a config failure")
	}
	// The probe after the cooldown succeeds and clears the problem.
	e.clock.Advance(e.h.o.BreakerCooldown)
	e.crm.SetFail(nil)
	task, _ := newLeadTask(t)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * healthCacheFor)
	if !e.h.ConfigProblem(ctx).IsZero() || e.h.Ready(ctx) != nil {
		t.Error("ConfigProblem()/Ready() not cleared by a success")
	}
}

// TestNewHandlerRefusesUnknownVersion: a CRM client of an API version
// LeadRelay has no look-up for is refused at start, never run as v1.
func TestNewHandlerRefusesUnknownVersion(t *testing.T) {
	t.Parallel()
	h, err := NewHandler(newFakeCRM("v3"), nil, Options{}, nil)
	if err == nil || h != nil || !strings.Contains(err.Error(), `"v3"`) {
		t.Fatalf("NewHandler(v3) = %v, %v; want refused", h, err)
	}
}

func TestHandlerBrokenPayload(t *testing.T) {
	t.Parallel()
	h := newHandler(t, newFakeCRM(crmclient.V1), nil, Options{}, nil)
	err := h.ProcessTask(ctx, asynq.NewTask(lead.TaskType, []byte(`{"id":`)))
	if !errors.Is(err, asynq.SkipRetry) || judge(err).reason.Code != delivery.PayloadBroken {
		t.Fatalf("ProcessTask = %v, want SkipRetry with reason", err)
	}
}

// TestHandlerSingleFlight runs one lead on many goroutines at once against a
// slow CRM: one add, the rest postponed or skipped.
func TestHandlerSingleFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t, crmclient.V2, func(o *Options) { o.LockTTL = 300 * time.Millisecond })
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) {
		time.Sleep(500 * time.Millisecond) // outlasts LockTTL: renewal must hold it
		return true, nil
	})
	task, p := newLeadTask(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			if i > 0 {
				time.Sleep(time.Duration(i) * 80 * time.Millisecond)
			}
			errs[i] = e.h.ProcessTask(ctx, task)
		})
	}
	wg.Wait()
	for i, err := range errs {
		var de *DelayError
		if err != nil && !errors.As(err, &de) {
			t.Errorf("run %d: %v", i, err)
		}
	}
	if adds, _ := e.crm.Counts(); adds != 1 {
		t.Errorf("adds = %d, want 1", adds)
	}
	if e.marker(p.ID) == nil {
		t.Error("no marker")
	}
}

func TestHandlerLockBusy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, crmclient.V2, nil)
	task, p := newLeadTask(t)
	e.rdb.Set(ctx, rdb.LockKey(p.ID), "someone-else", 10*time.Second)
	err := e.h.ProcessTask(ctx, task)
	var de *DelayError
	if !errors.As(err, &de) || IsFailure(err) || de.Delay <= 0 || de.Delay > 10*time.Second {
		t.Fatalf("ProcessTask = %v, want a DelayError of at most 10s", err)
	}
	if adds, _ := e.crm.Counts(); adds != 0 {
		t.Errorf("adds = %d", adds)
	}
	if e.rdb.Get(ctx, rdb.LockKey(p.ID)).Val() != "someone-else" {
		t.Error("someone else's lock was touched")
	}
}

// TestHandlerUnrecordedMarkerReconciles: the CRM stored the lead but the
// marker cannot be written (Redis refuses). The attempt stays "sending", so
// the next run reconciles instead of adding again; and when the marker of
// that reconcile cannot be written either, the run after it finds the lead
// again (on v1 its own claim on the CRM id must not hide it).
func TestHandlerUnrecordedMarkerReconciles(t *testing.T) {
	t.Parallel()
	for _, v := range []crmclient.APIVersion{crmclient.V1, crmclient.V2} {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, v, nil)
			var broken atomic.Bool
			e.rdb.AddHook(failFinish{&broken})
			task, p := newLeadTask(t)
			broken.Store(true)
			err := e.h.ProcessTask(ctx, task)
			var de *DelayError
			if !errors.As(err, &de) || IsFailure(err) || !strings.Contains(err.Error(), "marker could not be recorded") {
				t.Fatalf("first run = %v, want a postponed, unrecorded delivery", err)
			}
			if st := e.attempt(p.ID)["state"]; st != rdb.StateSending {
				t.Fatalf("attempt state = %q, want %q", st, rdb.StateSending)
			}
			// Let the lock left behind expire, as it would.
			e.rdb.Del(ctx, rdb.LockKey(p.ID))
			// Too early: the first request might still be in flight.
			err = e.h.ProcessTask(ctx, task)
			if !errors.As(err, &de) || IsFailure(err) {
				t.Fatalf("early run = %v, want a DelayError", err)
			}
			e.clock.Advance(e.o.CRMTimeout + reconcileSettle)
			// The reconcile finds the lead, but its marker is refused too.
			if err := e.h.ProcessTask(ctx, task); !errors.As(err, &de) || !strings.Contains(err.Error(), "marker could not be recorded") {
				t.Fatalf("unrecorded reconcile run = %v, want an unrecorded delivery", err)
			}
			broken.Store(false)
			e.rdb.Del(ctx, rdb.LockKey(p.ID))
			if err := e.h.ProcessTask(ctx, task); err != nil {
				t.Fatalf("reconcile run = %v", err)
			}
			m := e.marker(p.ID)
			if m == nil || m.Via != "reconcile" || m.CRMID != 101 {
				t.Fatalf("marker = %+v, want the reconciled CRM id 101", m)
			}
			if adds, stored := e.crm.Counts(); adds != 1 || stored != 1 {
				t.Errorf("adds = %d stored = %d, want 1 and 1", adds, stored)
			}
			if s := e.h.Stats(); s.ReconcileFound != 2 {
				t.Errorf("stats = %+v, want 2 found", s)
			}
		})
	}
}

// failFinish makes Redis refuse the delivery-recording command (the one
// that counts the day's deliveries: a pipeline on a Cluster, one script
// on a single primary) while on is set.
type failFinish struct{ on *atomic.Bool }

func (f failFinish) refuse(cmds []redis.Cmder) error {
	if !f.on.Load() {
		return nil
	}
	for _, c := range cmds {
		for _, a := range c.Args() {
			if k, ok := a.(string); ok && strings.Contains(k, "stats:delivered:") {
				err := errors.New("injected: redis refuses the marker")
				for _, c := range cmds {
					c.SetErr(err)
				}
				return err
			}
		}
	}
	return nil
}

func (failFinish) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f failFinish) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, c redis.Cmder) error {
		if err := f.refuse([]redis.Cmder{c}); err != nil {
			return err
		}
		return next(ctx, c)
	}
}
func (f failFinish) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if err := f.refuse(cmds); err != nil {
			return err
		}
		return next(ctx, cmds)
	}
}

func TestReconcile(t *testing.T) {
	t.Parallel()
	ambiguous := &crmclient.TransportError{Action: "add", Sent: true, Err: context.DeadlineExceeded}
	tests := []struct {
		name    string
		v       crmclient.APIVersion
		stored  bool // the ambiguous add stored the lead
		prep    func(e *env, p lead.Payload)
		policy  string
		want    string // found | resent | dead
		adds    int
		results func(s Stats) bool
	}{
		{name: "v2 found", v: crmclient.V2, stored: true, want: "found", adds: 1},
		{name: "v2 not stored", v: crmclient.V2, stored: false, want: "resent", adds: 2},
		{name: "v1 found", v: crmclient.V1, stored: true, want: "found", adds: 1},
		{name: "v1 not stored", v: crmclient.V1, stored: false, want: "resent", adds: 2},
		{name: "v1 identical lead claimed by another", v: crmclient.V1, stored: false, want: "resent", adds: 3,
			prep: func(e *env, p lead.Payload) {
				// A genuine identical lead, delivered normally: its CRM id
				// is claimed, so the reconcile must not take it.
				q := lead.NewPayload("shop", "twin-"+p.ID, p.Lead, time.Now())
				twin, _ := lead.NewTask(q)
				e.crm.SetFail(nil)
				if err := e.h.ProcessTask(ctx, twin); err != nil {
					e.t.Fatal(err)
				}
			}},
		{name: "v1 unknown resends", v: crmclient.V1, stored: false, policy: ReconcileResend, want: "resent", adds: 2 + crmclient.PageSize,
			prep: func(e *env, _ lead.Payload) { fillOthers(e, crmclient.PageSize) }},
		{name: "v1 unknown dead", v: crmclient.V1, stored: true, policy: ReconcileDead, want: "dead", adds: 1 + crmclient.PageSize,
			prep: func(e *env, _ lead.Payload) { fillOthers(e, crmclient.PageSize) }},
		{name: "v2 found beyond the first page", v: crmclient.V2, stored: true, want: "found", adds: 1 + 450,
			prep: func(e *env, _ lead.Payload) { fillOthers(e, 450) }},
		// Exactly a page of new leads arriving between two pages makes page
		// 1 start with page 0's first lead, as if the CRM ignored the
		// offset; the scan must not give up on a CRM that pages.
		{name: "v2 a page of new leads mid-scan", v: crmclient.V2, stored: true, want: "found", adds: 1 + 450,
			prep: func(e *env, _ lead.Payload) {
				fillOthers(e, 450)
				e.crm.BeforeList = func(o crmclient.ListOptions, lists int) []crmclient.Lead {
					var mid []crmclient.Lead
					if o.Page == 1 && lists == 2 {
						for i := range crmclient.PageSize {
							mid = append(mid, crmclient.Lead{Lead: lead.Lead{Title: "y", Company: fmt.Sprintf("mid-%d", i)}})
						}
					}
					return mid
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.v, func(o *Options) { o.ReconcileUnknown = tc.policy })
			task, p := newLeadTask(t)
			e.crm.SetFail(func(int, crmclient.Lead) (bool, error) { return tc.stored, ambiguous })
			if err := e.h.ProcessTask(ctx, task); judge(err).out != delivery.Uncertain {
				t.Fatalf("first run = %v", err)
			}
			if tc.prep != nil {
				tc.prep(e, p)
			}
			e.crm.SetFail(nil)
			e.clock.Advance(e.o.CRMTimeout + reconcileSettle)
			err := e.h.ProcessTask(ctx, task)
			m := e.marker(p.ID)
			switch tc.want {
			case "found":
				if err != nil || m == nil || m.Via != "reconcile" {
					t.Fatalf("run = %v, marker %+v; want found by reconcile", err, m)
				}
			case "resent":
				if err != nil || m == nil || m.Via != "" {
					t.Fatalf("run = %v, marker %+v; want a fresh add", err, m)
				}
			case "dead":
				if !errors.Is(err, asynq.SkipRetry) || m != nil {
					t.Fatalf("run = %v, marker %+v; want dead", err, m)
				}
			}
			if adds, _ := e.crm.Counts(); adds != tc.adds {
				t.Errorf("adds = %d, want %d", adds, tc.adds)
			}
			if per := e.crm.PerCompany()[p.Lead.Company]; tc.want != "dead" && tc.name != "v1 identical lead claimed by another" && per != 1 {
				t.Errorf("CRM holds the lead %d times, want 1", per)
			}
		})
	}
}

// fillOthers stores n unrelated, newer leads in the fake CRM.
func fillOthers(e *env, n int) {
	e.crm.SetFail(nil)
	for i := range n {
		if _, err := e.crm.Add(ctx, crmclient.Lead{Lead: lead.Lead{Title: "x", Company: fmt.Sprintf("other-%d", i)}}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// TestBreaker: the shared circuit opens at the threshold, postpones the
// whole fleet, probes once half-open, and closes when the CRM answers;
// operators are told (OnOutage) once when it opens and once when it
// closes, whichever worker sees it (issue 21: nothing said it closed).
func TestBreaker(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		outages []string
	)
	e := newEnv(t, crmclient.V2, func(o *Options) {
		o.BreakerThreshold = 3
		o.BreakerCooldown = time.Minute
		o.OnOutage = func(open bool, r delivery.Reason) {
			mu.Lock()
			defer mu.Unlock()
			outages = append(outages, fmt.Sprint(open, " ", r.Code))
		}
	})
	down := &crmclient.StatusError{Action: "add", StatusCode: 503}
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) { return false, down })
	for i := range 3 {
		task, _ := newLeadTask(t)
		if err := e.h.ProcessTask(ctx, task); !IsFailure(err) {
			t.Fatalf("failure %d = %v, want a counted failure", i, err)
		}
	}
	// Open: no CRM call, no attempt spent, for the whole fleet (a second
	// handler on the same Redis sees it too).
	other := newHandler(t, e.crm, e.rdb, e.o, nil)
	for _, h := range []*Handler{e.h, other} {
		task, _ := newLeadTask(t)
		err := h.ProcessTask(ctx, task)
		var de *DelayError
		if !errors.As(err, &de) || IsFailure(err) || de.Delay != time.Minute {
			t.Fatalf("while open = %v, want DelayError of 1m", err)
		}
	}
	if adds, _ := e.crm.Counts(); adds != 3 {
		t.Fatalf("adds = %d, want 3 (none while open)", adds)
	}
	// Half-open: one probe; it fails and reopens the circuit.
	e.clock.Advance(time.Minute)
	task, _ := newLeadTask(t)
	if err := e.h.ProcessTask(ctx, task); !IsFailure(err) {
		t.Fatalf("probe = %v, want a counted failure", err)
	}
	task, _ = newLeadTask(t)
	if err := e.h.ProcessTask(ctx, task); IsFailure(err) {
		t.Fatalf("after failed probe = %v, want postponed", err)
	}
	// Recovery: the next probe succeeds and closes the circuit.
	e.clock.Advance(time.Minute)
	e.crm.SetFail(nil)
	for range 3 {
		task, _ := newLeadTask(t)
		if err := e.h.ProcessTask(ctx, task); err != nil {
			t.Fatalf("after recovery = %v", err)
		}
	}
	if e.rdb.Exists(ctx, rdb.BreakerKey).Val() != 0 {
		t.Error("breaker state left after recovery")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"true crm_unreachable", "false "}; !slices.Equal(outages, want) {
		t.Errorf("operators were told %q, want %q: the outage's start and its end, once each", outages, want)
	}
}

// TestBreakerProbeExclusive: while a half-open probe is out, others wait.
func TestBreakerProbeExclusive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, crmclient.V2, func(o *Options) { o.BreakerCooldown = time.Second; o.BreakerThreshold = 1 })
	s := e.h.store
	if st, err := s.CircuitFailed(ctx, e.h.circuitArgs()); err != nil || st != rdb.CircuitOpened {
		t.Fatal(err)
	}
	if c, _ := s.Circuit(ctx, e.clock.Now()); c.Wait <= 0 {
		t.Fatalf("open breaker allowed a call: %+v", c)
	}
	e.clock.Advance(time.Second)
	if c, _ := s.Circuit(ctx, e.clock.Now()); c.Wait != 0 || !c.ProbeDue {
		t.Fatalf("after the cooldown: %+v, want a probe due", c)
	}
	first, _ := s.ClaimProbe(ctx, e.clock.Now(), time.Minute)
	second, _ := s.ClaimProbe(ctx, e.clock.Now(), time.Minute)
	if c, _ := s.Circuit(ctx, e.clock.Now()); !first || second || c.Wait <= 0 {
		t.Fatalf("probes = %v, %v (circuit %+v); want exactly one probe", first, second, c)
	}
}

// TestBreakerProbeWait: while another run's half-open probe is out, a
// lead waits about as long as the probe has been out, not the probe's
// whole lease (the CRM timeout). The leads an open circuit postponed all
// come due with the probe: before, each waited LEADRELAY_CRM_TIMEOUT more
// though the probe had answered in milliseconds, and a drain after an
// outage stood still that long (issue 20).
func TestBreakerProbeWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t, crmclient.V2, func(o *Options) {
		o.BreakerCooldown, o.BreakerThreshold, o.CRMTimeout = time.Second, 1, time.Minute
	})
	s := e.h.store
	if st, err := s.CircuitFailed(ctx, e.h.circuitArgs()); err != nil || st != rdb.CircuitOpened {
		t.Fatal(st, err)
	}
	e.clock.Advance(time.Second)
	if ok, err := s.ClaimProbe(ctx, e.clock.Now(), time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	// The cases run in order on one clock: the probe stays out.
	for _, tc := range []struct {
		name     string
		advance  time.Duration
		min, max time.Duration
	}{
		{"a probe just out", 0, probeRecheck, 2 * probeRecheck},
		{"a probe out for 10 s", 10 * time.Second, 10 * time.Second, 10*time.Second + probeRecheck},
		{"a probe near the end of its lease", 49 * time.Second, time.Second, time.Second + probeRecheck},
	} {
		e.clock.Advance(tc.advance)
		task, _ := newLeadTask(t)
		err := e.h.ProcessTask(ctx, task)
		var de *DelayError
		if !errors.As(err, &de) || IsFailure(err) || de.Reason.Code != delivery.CircuitOpen {
			t.Fatalf("%s: %v, want postponed for the open circuit", tc.name, err)
		}
		if de.Delay < tc.min || de.Delay > tc.max {
			t.Errorf("%s: postponed %s, want %s..%s", tc.name, de.Delay, tc.min, tc.max)
		}
	}
	if adds, _ := e.crm.Counts(); adds != 0 {
		t.Errorf("%d adds while the probe was out, want none", adds)
	}
}

// refuse is a Limiter that always refuses.
type refuse struct{}

func (refuse) Acquire(context.Context) (func(), error) {
	return nil, &DelayError{Delay: 3 * time.Second, Reason: delivery.Reason{Code: delivery.RateLimit}}
}

// deadBox is a DeadLetters store in memory.
type deadBox struct {
	mu      sync.Mutex
	reasons map[string]delivery.Reason
}

func (d *deadBox) Put(_ context.Context, p lead.Payload, death Death) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reasons[p.ID] = death.Reason
	return nil
}

func (d *deadBox) reason(id string) (delivery.Reason, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.reasons[id]
	return r, ok
}

func (d *deadBox) Forget(_ context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.reasons, id)
	return nil
}

func TestHandlerSeams(t *testing.T) {
	t.Parallel()
	t.Run("limiter refusal spends nothing", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, crmclient.V2, func(o *Options) { o.Limiter = refuse{} })
		task, p := newLeadTask(t)
		err := e.h.ProcessTask(ctx, task)
		var de *DelayError
		if !errors.As(err, &de) || de.Delay != 3*time.Second || IsFailure(err) {
			t.Fatalf("ProcessTask = %v, want the limiter's DelayError", err)
		}
		if adds, _ := e.crm.Counts(); adds != 0 {
			t.Errorf("adds = %d", adds)
		}
		if e.rdb.Exists(ctx, rdb.AttemptKey(p.ID), rdb.LockKey(p.ID)).Val() != 0 {
			t.Error("a refused delivery left an attempt record or a lock")
		}
	})
	t.Run("dead letters are kept", func(t *testing.T) {
		t.Parallel()
		box := &deadBox{reasons: map[string]delivery.Reason{}}
		e, task, p := runRejected(t, box, "Ошибка добавления лида")
		box.mu.Lock()
		reason := box.reasons[p.ID]
		box.mu.Unlock()
		if want := (delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1, Detail: "Ошибка добавления лида"}); reason != want {
			t.Errorf("dead store = %v", reason)
		}
		// An operator fixes the cause and re-runs it: delivered, forgotten.
		e.crm.SetFail(nil)
		if err := e.h.ProcessTask(ctx, task); err != nil {
			t.Fatalf("re-run: %v", err)
		}
		box.mu.Lock()
		defer box.mu.Unlock()
		if _, ok := box.reasons[p.ID]; ok {
			t.Errorf("delivered lead still in the dead store: %v", box.reasons)
		}
	})
}

// runRejected runs a lead once in a v1 env whose dead letters go to box
// and whose CRM rejects every add (error 1, text): the run must end the
// lead. It returns the env, with the CRM still rejecting, and the lead.
func runRejected(t *testing.T, box DeadLetters, text string) (*env, *asynq.Task, lead.Payload) {
	t.Helper()
	e := newEnv(t, crmclient.V1, func(o *Options) { o.DeadLetters = box })
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) {
		return false, &crmclient.APIError{Action: "add", Code: 1, Text: text}
	})
	task, p := newLeadTask(t)
	if err := e.h.ProcessTask(ctx, task); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("ProcessTask = %v, want SkipRetry", err)
	}
	return e, task, p
}

// failingBox is a deadBox whose first fails Puts fail, as during a Redis
// failover.
type failingBox struct {
	deadBox
	fails int
}

func (d *failingBox) Put(ctx context.Context, p lead.Payload, death Death) error {
	d.mu.Lock()
	if d.fails > 0 {
		d.fails--
		d.mu.Unlock()
		return errors.New("redis: connection refused")
	}
	d.mu.Unlock()
	return d.deadBox.Put(ctx, p, death)
}

// TestDeadPutRetried: a dead letter whose write fails once or twice (Redis
// failing over) is written on a later try, not left to the sweep; one
// that keeps failing still ends the lead (asynq archives it, the sweep
// records it).
func TestDeadPutRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fails int
		kept  bool
	}{
		{"no failure", 0, true},
		{"two failures", 2, true},
		{"every try fails", deadPutTries, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			box := &failingBox{deadBox: deadBox{reasons: map[string]delivery.Reason{}}, fails: tc.fails}
			_, _, p := runRejected(t, box, "rejected")
			if _, kept := box.reason(p.ID); kept != tc.kept {
				t.Errorf("dead letter kept: %v, want %v", kept, tc.kept)
			}
		})
	}
}
